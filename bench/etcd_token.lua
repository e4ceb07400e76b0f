-- etcd: POST /v3/auth/authenticate with the right password (a bcrypt
-- each, at the run's cost: token.lua's request).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local e = require "etcd"
setup, done = e.setup, e.done
local body

function init()
  e.init()
  body = '{"name":"' .. assert(os.getenv("BENCH_LOGIN_USER")) ..
    '","password":"' .. assert(os.getenv("BENCH_LOGIN_PASSWORD")) .. '"}'
end

function request()
  return wrk.format("POST", "/v3/auth/authenticate", {["Content-Type"] = "application/json"}, body)
end
