-- GET /api/data/{key} of a key that exists: a random seeded user, a
-- random one of its keys.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done, response = b.setup, b.init, b.done, b.response

function request()
  return b.request("GET", "/api/data/k" .. math.random(0, b.keys - 1), b.user())
end
