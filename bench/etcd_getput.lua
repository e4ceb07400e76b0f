-- etcd: the overload mix of getput.lua, 80% range of an existing key,
-- 20% put of one, per request at random; also etcd's warm-up before the
-- rounds.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local e = require "etcd"
setup, init, done, response = e.setup, e.init, e.done, e.response
local n = 0

function request()
  n = n + 1
  if math.random(100) <= 80 then
    return e.range(e.user(), math.random(0, e.keys - 1))
  end
  return e.put(e.user(), math.random(0, e.keys - 1),
    '{"n":' .. n .. ',"s":"a benchmark value, updated by PUT"}')
end
