-- wrk script of bench/http_storm.py: a random device's config per request, every body checked.
--
--   wrk ... -s bench/http_storm.lua URL -- DEVICES_FILE NEEDLE SEED
--
-- DEVICES_FILE has one line per device, "<mac> <extension> <body length>", written per run
-- by http_storm.py from the files provisiond's own pipeline rendered. NEEDLE is the text that
-- precedes the extension in a body ("account.1.user_name = " for a Yealink).
--
-- Each wrk thread has its own Lua state, so every table and counter below is per thread.
-- wrk does not say which connection a response belongs to: a thread's connections interleave.
-- Responses are in request order per connection (no pipelining), but not across connections,
-- so a per-thread FIFO would pair the wrong request and response. Instead each thread keeps
-- a multiset of the MACs it asked for and has not been answered yet; a response must carry
-- the extension of a device in that multiset, that device's MAC, and exactly the length of
-- that device's file. A correct server never trips this; a server that answers with another
-- phone's file is flagged at its first such answer unless that phone is among the thread's
-- few requests in flight. The counts are lower bounds: a flagged response leaves its
-- request's MAC in the multiset, which may let a later wrong answer pass. Any flag fails the
-- run, and http_storm.py checks every file byte for byte by path before the load.
-- done() runs in wrk's main Lua state and reads the threads' counters with thread:get().

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_no", #threads)
end

local macs = {}         -- index -> mac
local by_ext = {}       -- extension -> { mac = ..., len = ... }
local outstanding = {}  -- mac -> requests sent by this thread and not yet answered
local count = 0
local needle = ""
local user_agent = "Yealink SIP-T46S 66.86.0.15 "

-- Counters read by done(): globals of this thread's state.
checked_ok = 0
wrong_body = 0    -- no extension line, unknown extension, wrong MAC or wrong length
not_200 = 0
unpaired = 0      -- a right body for a device this thread had not asked for (or twice)

function init(args)
   for line in io.lines(args[1]) do
      local mac, ext, len = line:match("^(%x+) (%d+) (%d+)$")
      if mac then
         count = count + 1
         macs[count] = mac
         by_ext[ext] = { mac = mac, len = tonumber(len) }
      end
   end
   needle = args[2]
   math.randomseed(tonumber(args[3]) + 7919 * thread_no)
end

function request()
   local mac = macs[math.random(count)]
   outstanding[mac] = (outstanding[mac] or 0) + 1
   -- A phone's User-Agent names its MAC; provisiond checks that it matches the path.
   wrk.headers["User-Agent"] = user_agent .. mac
   return wrk.format(nil, "/" .. mac .. ".cfg")
end

function response(status, headers, body)
   if status ~= 200 then
      not_200 = not_200 + 1
      return
   end
   local _, stop = body:find(needle, 1, true)
   local ext = stop and body:match("^(%d+)", stop + 1)
   local want = ext and by_ext[ext]
   if not want or #body ~= want.len or not body:find(want.mac, 1, true) then
      wrong_body = wrong_body + 1
      return
   end
   local n = outstanding[want.mac]
   if not n then
      unpaired = unpaired + 1
      return
   end
   if n > 1 then outstanding[want.mac] = n - 1 else outstanding[want.mac] = nil end
   checked_ok = checked_ok + 1
end

function done(summary, latency, requests)
   local sum = { checked_ok = 0, wrong_body = 0, not_200 = 0, unpaired = 0 }
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
      '"checked_ok": %d, "wrong_body": %d, "not_200": %d, "unpaired": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      sum.checked_ok, sum.wrong_body, sum.not_200, sum.unpaired))
end
