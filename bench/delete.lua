-- DELETE /api/data/{key} of keys seeded for it: thread t deletes
-- d<t>_0, d<t>_1, ... in turn, key d<t>_<c> belonging to the
-- (c mod users)-th seeded user (script/bench seeds them so).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local c = -1

function request()
  c = c + 1
  return b.request("DELETE", "/api/data/d" .. tid .. "_" .. c, b.user(c % b.nusers + 1))
end
