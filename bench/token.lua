-- POST /api/token: a login with the right password (a bcrypt each).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, done = b.setup, b.done
local body

function init()
  b.init()
  body = '{"username":"' .. assert(os.getenv("BENCH_LOGIN_USER")) ..
    '","password":"' .. assert(os.getenv("BENCH_LOGIN_PASSWORD")) .. '"}'
end

function request()
  return wrk.format("POST", "/api/token", {["Content-Type"] = "application/json"}, body)
end
