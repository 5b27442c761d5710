-- wrk script of bench/http_layers.py: one path, every response checked byte for byte.
--
--   wrk ... -s bench/http_layers.lua URL -- BODY_FILE
--
-- The servers compared all answer with the bytes of BODY_FILE; a 200 with any other body is
-- counted as wrong. No request() function: wrk sends its one static request, the cheapest
-- client there is. done() prints the same BENCH_RESULT line as bench/http_storm.lua.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

local expected = nil

checked_ok = 0
wrong_body = 0
not_200 = 0

function init(args)
   local file = assert(io.open(args[1], "rb"))
   expected = file:read("*a")
   file:close()
end

function response(status, headers, body)
   if status ~= 200 then
      not_200 = not_200 + 1
   elseif body ~= expected then
      wrong_body = wrong_body + 1
   else
      checked_ok = checked_ok + 1
   end
end

function done(summary, latency, requests)
   local sum = { checked_ok = 0, wrong_body = 0, not_200 = 0 }
   for _, thread in ipairs(threads) do
      for name, _ in pairs(sum) do
         sum[name] = sum[name] + (thread:get(name) or 0)
      end
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}, ' ..
      '"checked_ok": %d, "wrong_body": %d, "not_200": %d, "unpaired": 0}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      sum.checked_ok, sum.wrong_body, sum.not_200))
end
