-- check.lua: wrk script for bench/check.sh.
--
-- Every request is POST /v1/check with a JSON body naming a random account
-- among the `headroom demo-data` ids (acct_000001 .. acct_<BENCH_ACCOUNTS>)
-- and a random feature among boards, seats, private_boards and api_calls,
-- with the Authorization and Content-Type headers headroomd needs.
--
-- The requests are drawn once, in init(), into a pool of BENCH_POOL (default
-- 100000) pre-formatted requests that request() cycles through, so the Lua
-- cost per request is a table index and the wrk client (pinned to its own
-- core) stays cheap. check.sh sends the very same requests to nginx, whose
-- `return 200` discards the body: both servers see identical traffic.
--
-- Environment: BENCH_ACCOUNTS (default 100000), BENCH_POOL (default 100000),
-- HEADROOM_SECRET_KEY (the key headroomd was started with).

local accounts = tonumber(os.getenv("BENCH_ACCOUNTS") or "") or 100000
local pool_size = tonumber(os.getenv("BENCH_POOL") or "") or 100000
local key = os.getenv("HEADROOM_SECRET_KEY") or "sk_bench_0123456789"
local features = { "boards", "seats", "private_boards", "api_calls" }

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
   local headers = {
      ["Authorization"] = "Bearer " .. key,
      ["Content-Type"] = "application/json",
   }
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
