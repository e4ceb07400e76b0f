-- What the etcd scenarios of script/bench share, on top of
-- bench/common.lua (the users, the result line, the status counts):
-- etcd 3.4's JSON gateway, where every call is a POST of a JSON body to
-- /v3/kv/<op> with the auth token bare in Authorization (no "Bearer"),
-- and keys and values are base64.
--
-- The data mirrors kvapi's: user u's key k<n> is etcd key "kv/<u>/k<n>"
-- (one etcd user owns the prefix "kv/"; BENCH_TOKENS holds its tokens,
-- one a seeded user), with the same value; keys for etcd_delete.lua are
-- "kv/d<thread>_<c>".
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
local b = require "common"
local M = setmetatable({}, {__index = b})

local chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local b64c = {}
for i = 1, 64 do
  b64c[i - 1] = chars:sub(i, i)
end

-- Standard base64 with padding (RFC 4648), as etcd's gateway decodes it.
function M.b64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local x, y, z = s:byte(i, i + 2)
    local v = x * 65536 + (y or 0) * 256 + (z or 0)
    out[#out + 1] = b64c[math.floor(v / 262144)] .. b64c[math.floor(v / 4096) % 64] ..
      (y and b64c[math.floor(v / 64) % 64] or "=") .. (z and b64c[v % 64] or "=")
  end
  return table.concat(out)
end

-- A gateway call: op is "range", "put" or "deleterange".
function M.call(op, u, body)
  return wrk.format("POST", "/v3/kv/" .. op,
    {["Authorization"] = u.token, ["Content-Type"] = "application/json"}, body)
end

-- The key of user u's key k<n>, base64.
function M.key(u, n)
  return M.b64("kv/" .. u.uid .. "/k" .. n)
end

function M.range(u, n)
  return M.call("range", u, '{"key":"' .. M.key(u, n) .. '"}')
end

function M.put(u, n, value)
  return M.call("put", u, '{"key":"' .. M.key(u, n) .. '","value":"' .. M.b64(value) .. '"}')
end

return M
