-- etcd: put of a random existing key with a new value (put.lua's request;
-- etcd's put also creates, so it stands for POST of a new key too).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local e = require "etcd"
setup, init, done = e.setup, e.init, e.done
local n = 0

function request()
  n = n + 1
  return e.put(e.user(), math.random(0, e.keys - 1),
    '{"n":' .. n .. ',"s":"a benchmark value, updated by PUT"}')
end
