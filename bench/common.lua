-- What every wrk scenario of script/bench shares: the seeded users and
-- their tokens, request building, and one machine-readable result line.
--
-- Environment (set by script/bench; the same for every target):
--   BENCH_TOKENS   file of "user_id token" lines, the seeded users
--   BENCH_KEYS     keys k0 .. k<BENCH_KEYS-1> exist for every seeded user
--   BENCH_RUN      a word unique to this wrk run (for new keys)
--   BENCH_DELETE   d<thread>_0 .. d<thread>_<BENCH_DELETE-1> exist (delete.lua)
--   BENCH_LOGIN_USER, BENCH_LOGIN_PASSWORD   an account for token.lua
--   BENCH_STATUS   if 1, count the answers 503 and 429 (the overload
--                  runs): a scenario that sets `response = b.response`
--                  then has wrk parse every answer, which costs wrk CPU
--
-- Every request carries X-Bench-User: the user id, which only the
-- one-SELECT ceiling reads (it does no authentication).  The etcd
-- scenarios (bench/etcd.lua) read the same BENCH_TOKENS file, whose
-- tokens are then etcd's.
local M = {}

M.keys = tonumber(os.getenv("BENCH_KEYS") or "1")
M.run = os.getenv("BENCH_RUN") or tostring(os.time())
M.value = '{"n":1,"s":"a benchmark value of a realistic, modest size"}'

local users = {}

-- Per thread: read the tokens, seed the random generator apart from the
-- other threads.
function M.init()
  local path = assert(os.getenv("BENCH_TOKENS"), "BENCH_TOKENS not set")
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    local uid, tok = line:match("^(%d+)%s+(%S+)")
    if uid then
      users[#users + 1] = {uid = uid, token = tok, auth = "Bearer " .. tok}
    end
  end
  f:close()
  assert(#users > 0, "no users in " .. path)
  M.nusers = #users
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919 + math.floor(os.clock() * 1e6))
  s503, s429 = 0, 0
end

-- The i-th seeded user (1-based), or a random one.
function M.user(i)
  return users[i or math.random(#users)]
end

function M.request(method, path, u, body)
  local h = {["Authorization"] = u.auth, ["X-Bench-User"] = u.uid}
  if body then
    h["Content-Type"] = "application/json"
  end
  return wrk.format(method, path, h, body)
end

-- Number the threads (setup runs in the main Lua state, once a thread),
-- and keep them for done, which reads their status counts.
local threads = {}
function M.setup(thread)
  thread:set("tid", #threads)
  threads[#threads + 1] = thread
end

-- wrk's response callback, only with BENCH_STATUS: nil leaves it
-- undefined, and wrk then skips parsing the answers.  Runs in a thread's
-- Lua state, whose globals s503 and s429 init set.
if os.getenv("BENCH_STATUS") == "1" then
  function M.response(status)
    if status == 503 then
      s503 = s503 + 1
    elseif status == 429 then
      s429 = s429 + 1
    end
  end
end

-- One line for script/bench to parse; latencies in microseconds; the
-- 503 and 429 counts only when they were counted (BENCH_STATUS).
function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local status = ""
  if M.response then
    local n503, n429 = 0, 0
    for _, t in ipairs(threads) do
      n503 = n503 + (t:get("s503") or 0)
      n429 = n429 + (t:get("s429") or 0)
    end
    status = string.format(" s503=%d s429=%d", n503, n429)
  end
  io.write(string.format(
    "BENCHRESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d " ..
    "p99_us=%d max_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d%s\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, e.status, e.connect, e.read, e.write, e.timeout, status))
end

return M
