-- GET /api/data/{key} of a key its user does not have (404).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done

function request()
  return b.request("GET", "/api/data/missing" .. math.random(1, 1000000000), b.user())
end
