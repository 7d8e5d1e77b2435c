-- Shared by the wrk scripts of infra/scripts/load.sh (loaded with dofile): numbers the threads, lets
-- each script count the requests it generates in the global `sent` (and set `exhausted` when
-- it ran out of distinct requests), and prints one machine-readable line at the end, read by
-- infra/scripts/load/check.py:
--   load-result requests=N status_errors=N socket_errors=N duration_us=N p50_us=N p99_us=N
--               max_us=N exhausted=N sent=S1,S2,...
-- `sent` counts every request a thread generated, including those still in flight when wrk
-- stopped and the one wrk generates once to check the script: an upper bound of what the
-- server may have processed.
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_id", #threads)
end

sent = 0
exhausted = 0

function done(summary, latency, requests)
  local per_thread, exhausted_any = {}, 0
  for _, thread in ipairs(threads) do
    per_thread[#per_thread + 1] = tostring(thread:get("sent"))
    exhausted_any = math.max(exhausted_any, thread:get("exhausted"))
  end
  local errors = summary.errors
  io.write(string.format(
    "load-result requests=%d status_errors=%d socket_errors=%d duration_us=%d "
      .. "p50_us=%d p99_us=%d max_us=%d exhausted=%d sent=%s\n",
    summary.requests, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    exhausted_any, table.concat(per_thread, ",")))
end

