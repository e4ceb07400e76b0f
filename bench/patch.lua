-- PATCH /api/data/{key}: a JSON Merge Patch (RFC 7396) of one member of a
-- random existing key's value: a read and a write in one transaction.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local n = 0

function request()
  n = n + 1
  return b.request("PATCH", "/api/data/k" .. math.random(0, b.keys - 1), b.user(),
    '{"n":' .. n .. ',"p":"set by PATCH"}')
end
