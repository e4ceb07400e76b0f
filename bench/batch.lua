-- POST /api/batch: ten PUTs of random existing keys of one user in one
-- transaction (the report counts keys written: ten a request).
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
setup, init, done = b.setup, b.init, b.done
local n = 0

function request()
  n = n + 1
  local ops = {}
  for i = 1, 10 do
    ops[i] = '{"op":"put","key":"k' .. math.random(0, b.keys - 1) ..
      '","value":{"n":' .. n .. ',"s":"a benchmark value, put by a batch"}}'
  end
  return b.request("POST", "/api/batch", b.user(), '{"ops":[' .. table.concat(ops, ",") .. ']}')
end
