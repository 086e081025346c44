-- Appended to each script by benchmarks/wrk.py: the run's figures as one JSON line, with a
-- count of the answers by status.
local threads = {}
statuses = {}

function setup(thread)
  thread:set("first", #threads)
  table.insert(threads, thread)
end

function response(status, _, _)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, _)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(counts) do
    parts[#parts + 1] = string.format('"%d":%d', status, count)
  end
  local errors = summary.errors
  io.write(string.format(
    '\n{"requests":%d,"duration_us":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,'
      .. '"statuses":{%s}}\n',
    summary.requests, summary.duration,
    errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), table.concat(parts, ",")))
end
