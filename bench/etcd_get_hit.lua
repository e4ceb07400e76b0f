-- etcd: range of one key that exists (get_hit.lua's request): a random
-- seeded user's prefix, a random one of its keys.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local e = require "etcd"
setup, init, done, response = e.setup, e.init, e.done, e.response

function request()
  return e.range(e.user(), math.random(0, e.keys - 1))
end
