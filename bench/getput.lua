-- The overload mix: 80% GET of an existing key, 20% PUT of one (a new
-- value), per request at random.  Every answer is 2xx unless the target
-- sheds load.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done, response = b.setup, b.init, b.done, b.response
local n = 0

function request()
  n = n + 1
  if math.random(100) <= 80 then
    return b.request("GET", "/api/data/k" .. math.random(0, b.keys - 1), b.user())
  end
  return b.request("PUT", "/api/data/k" .. math.random(0, b.keys - 1), b.user(),
    '{"value":{"n":' .. n .. ',"s":"a benchmark value, updated by PUT"}}')
end
