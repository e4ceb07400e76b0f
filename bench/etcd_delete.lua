-- etcd: deleterange of one key seeded for it (delete.lua's request):
-- thread t deletes kv/d<t>_0, kv/d<t>_1, ... in turn.  etcd answers 200
-- whether or not the key existed, so script/bench seeds them before
-- every run and checks afterwards that each answer deleted one.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local e = require "etcd"
setup, init, done = e.setup, e.init, e.done
local c = -1

function request()
  c = c + 1
  return e.call("deleterange", e.user(), '{"key":"' .. e.b64("kv/d" .. tid .. "_" .. c) .. '"}')
end
