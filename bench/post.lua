-- POST /api/data of a new key: unique per request from the run, the
-- wrk thread id and a counter, so every POST is a 201.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local n = 0

function request()
  n = n + 1
  return b.request("POST", "/api/data", b.user(),
    '{"key":"p' .. b.run .. "_" .. tid .. "_" .. n .. '","value":' .. b.value .. '}')
end
