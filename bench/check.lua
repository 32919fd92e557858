-- check.lua: wrk script for bench/check.sh.
--
-- Every request is POST /v1/check with a JSON body naming a random account
-- among the `headroom demo-data` ids (acct_000001 .. acct_<BENCH_ACCOUNTS>)
-- and a random feature among boards, seats, private_boards and api_calls,
-- with the Authorization and Content-Type headers headroomd needs.
--
-- The requests are drawn once, in init(), into a pool of BENCH_POOL (default
-- 100000) pre-formatted requests that request() cycles through, so the Lua
-- cost per request is a table index.
--
-- With BENCH_STATIC=1 it sends one fixed request of the same shape instead
-- (same method, path, headers and body size; account acct_000042) with no
-- Lua call per request, the cheapest wrk can do. check.sh uses that for the
-- nginx reference, whose answer does not depend on the request, so that
-- the reference is never limited by the client.
--
-- Environment: BENCH_ACCOUNTS (default 100000), BENCH_POOL (default 100000),
-- BENCH_STATIC, HEADROOM_SECRET_KEY (the key headroomd was started with).

local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "") or 100000
local pool_size = tonumber(os.getenv("BENCH_POOL") or "") or 100000
local key = os.getenv("HEADROOM_SECRET_KEY") or "sk_bench_0123456789"
local features = { "boards", "seats", "private_boards", "api_calls" }

local static = os.getenv("BENCH_STATIC") == "1"
local headers = {
   ["Authorization"] = "Bearer " .. key,
   ["Content-Type"] = "application/json",
}

if static then
   -- one fixed request, sent by wrk itself with no Lua call per request
   wrk.method = "POST"
   wrk.path = "/v1/check"
   wrk.headers = headers
   wrk.body = '{"account":"acct_000042","feature":"boards"}'
   return
end

local counter = 0
function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
end

local pool = {}
local n = 0
local i = 0

function init(args)
   -- a different but reproducible stream per wrk thread
   math.randomseed(12345 + (id or 0))
   for k = 1, pool_size do
      local body = string.format('{"account":"acct_%06d","feature":"%s"}',
                                 math.random(1, accounts), features[math.random(1, #features)])
      pool[k] = wrk.format("POST", "/v1/check", headers, body)
   end
   n = pool_size
end

function request()
   i = i + 1
   if i > n then i = 1 end
   return pool[i]
end
