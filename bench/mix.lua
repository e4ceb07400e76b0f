-- A realistic mix, per request at random: 80% GET of an existing key,
-- 10% PUT of one, 5% POST of a new key, 5% DELETE of a key seeded for
-- it (as delete.lua: thread t deletes d<t>_0, d<t>_1, ... in turn; a
-- DELETE of a key this run POSTed could overtake its POST on another
-- connection).  Every answer is 2xx.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local n, c = 0, -1

function request()
  n = n + 1
  local r = math.random(100)
  if r <= 80 then
    return b.request("GET", "/api/data/k" .. math.random(0, b.keys - 1), b.user())
  elseif r <= 90 then
    return b.request("PUT", "/api/data/k" .. math.random(0, b.keys - 1), b.user(),
      '{"value":{"n":' .. n .. ',"s":"a benchmark value, updated by PUT"}}')
  elseif r <= 95 then
    return b.request("POST", "/api/data", b.user(),
      '{"key":"m' .. b.run .. "_" .. tid .. "_" .. n .. '","value":' .. b.value .. '}')
  end
  c = c + 1
  return b.request("DELETE", "/api/data/d" .. tid .. "_" .. c, b.user(c % b.nusers + 1))
end
