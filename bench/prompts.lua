-- prompts.lua: wrk script for bench/prompts.sh.
--
-- Every request is GET /v1/prompts?user=U&account=A&trigger=T&page=P with
-- the secret key (Authorization: Bearer), as the host app's server (or the
-- SDK, with the publishable key and an identity) asks on a page load:
--
--   U, A  a random (user, account) pair that exists in the database, drawn
--         from the file BENCH_USERS_FILE ("account user" per line; prompts.sh
--         writes BENCH_USERS pairs sampled from the `users` table there)
--   T     on_load 30%, page 25%, feature_denied:private_boards 15%,
--         limit_hit:boards 10%, event:E<1..25> 20% (the catalog has
--         campaigns for E1..E20: E21..E25 match none)
--   P     /p<1..25>/boards/<1..500> on every request (the catalog has page
--         campaigns for /p1/* .. /p20/*); with T on_load or page it selects
--         the page campaigns, otherwise it is ignored
--
-- Values are percent-encoded as a browser's encodeURIComponent would
-- ('/' as %2F, ':' as %3A).
--
-- As in check.lua, the requests are drawn once, in init(), into a pool of
-- BENCH_POOL (default 100000) pre-formatted requests that request() cycles
-- through, so the Lua cost per request is a table index. BENCH_SEED selects
-- the stream: prompts.sh gives the warm-up and the timed run different ones,
-- so that the timed run does not replay the warm-up's users (whom the
-- throttle has already served) in the same order.
--
-- Environment: BENCH_USERS_FILE (required), BENCH_POOL (default 100000),
-- BENCH_SEED (default 0), HEADROOM_SECRET_KEY (the key headroomd was
-- started with).

local file = os.getenv("BENCH_USERS_FILE")
local pool_size = tonumber(os.getenv("BENCH_POOL") or "") or 100000
local seed = tonumber(os.getenv("BENCH_SEED") or "") or 0
local key = os.getenv("HEADROOM_SECRET_KEY") or "sk_bench_0123456789"
local headers = { ["Authorization"] = "Bearer " .. key }

local counter = 0
function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

local function trigger()
   local r = math.random(1, 100)
   if r <= 30 then return "on_load" end
   if r <= 55 then return "page" end
   if r <= 70 then return "feature_denied%3Aprivate_boards" end
   if r <= 80 then return "limit_hit%3Aboards" end
   return string.format("event%%3AE%d", math.random(1, 25))
end

local pool = {}
local n = 0
local i = 0

function init(args)
   assert(file, "BENCH_USERS_FILE is not set")
   local accts, users = {}, {}
   for line in io.lines(file) do
      local a, u = line:match("^(%S+)%s+(%S+)")
      if a then
         accts[#accts + 1] = a
         users[#users + 1] = u
      end
   end
   assert(#accts > 0, "no (account, user) pairs in " .. file)
   -- a different but reproducible stream per wrk thread and BENCH_SEED
   math.randomseed(54321 + 1000 * seed + (id or 0))
   for k = 1, pool_size do
      local j = math.random(1, #accts)
      local path = string.format("/v1/prompts?user=%s&account=%s&trigger=%s&page=%%2Fp%d%%2Fboards%%2F%d",
                                 users[j], accts[j], trigger(), math.random(1, 25), math.random(1, 500))
      pool[k] = wrk.format("GET", path, headers)
   end
   n = pool_size
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return pool[i]
end
