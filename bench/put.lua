-- PUT /api/data/{key}: replace the value of a random existing key.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local n = 0

function request()
  n = n + 1
  return b.request("PUT", "/api/data/k" .. math.random(0, b.keys - 1), b.user(),
    '{"value":{"n":' .. n .. ',"s":"a benchmark value, updated by PUT"}}')
end
