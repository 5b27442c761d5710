-- wrk script of bench/http_storm.py and bench/http_workers.py: a random device's config per
-- request, every body checked; in "digest" mode every request answers the digest challenge.
--
--   wrk ... -s bench/http_storm.lua URL -- DEVICES_FILE NEEDLE SEED [MODE [BARE_UA_EVERY]]
--
-- DEVICES_FILE has one line per device, "<mac> <extension> <body length> <digest password>",
-- written per run by http_storm.py from the files provisiond's own pipeline rendered. NEEDLE
-- is the text that precedes the extension in a body ("account.1.user_name = " for a
-- Yealink). MODE is "plain" (default) or "digest". Every BARE_UA_EVERY-th device of the list
-- (default 10, 0: none) always sends a User-Agent without its MAC, as some phones do:
-- provisiond then consults its walk memory, which a User-Agent naming the requested MAC
-- skips. Per device, not per request: a phone's User-Agent does not change between requests
-- (and a changing one would make provisiond rewrite the device's last-seen row every time).
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
--
-- Digest mode (RFC 7616, MD5, qop=auth; bench/digest.lua on the pure-Lua bench/md5.lua).
-- provisiond refuses a nonce count that does not grow for its nonce, and a thread's
-- connections interleave, so a nonce shared by two requests in flight could reach the server
-- out of order. Hence a thread keeps a pool of nonces, each lent to one request at a time:
-- a request takes a free nonce, sends nc + 1 (so nc grows per nonce, as it does per
-- connection for a phone), and the nonce comes back when that request's 200 arrives. The
-- 200 names its device, and a device is never in flight twice on a thread in this mode, so
-- the answer identifies its request (and the body check is exact). With no free nonce the
-- request goes without credentials (a "probe"); its 401 challenge brings a fresh nonce into
-- the pool. The first request of every connection is such a probe, so the pool grows to
-- about one nonce per connection. A 401 when no probe is in flight is a refused login
-- (counted as a failure). Nonces are retired after 240 s, before provisiond's 300 s expiry.
-- done() runs in wrk's main Lua state and reads the threads' counters with thread:get().

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local digest = dofile(here .. "digest.lua")

local threads = {}

function setup(thread)
   table.insert(threads, thread)
   thread:set("thread_no", #threads)
end

local macs = {}         -- index -> mac
local by_ext = {}       -- extension -> { mac = ..., len = ..., password = ... }
local by_mac = {}       -- mac -> the same device (with .bare: its User-Agent has no MAC)
local outstanding = {}  -- plain mode: mac -> requests sent by this thread, not yet answered
local count = 0
local needle = ""
local user_agent = "Yealink SIP-T46S 66.86.0.15"
local mode = "plain"
local bare_every = 10

-- Digest state of this thread.
local realm = nil
local opaque = nil
local free = {}         -- nonces not in flight: { nonce =, nc =, cnonce =, born = }
local lent = {}         -- mac -> the nonce entry its request in flight carries
local probes = 0        -- requests without credentials in flight
local ha1 = {}          -- mac -> HA1 (computed once per device)
local ha2 = {}          -- mac -> HA2 of GET /<mac>.cfg (computed once per device)
local NONCE_LIFE_S = 240
local MAX_DRAWS = 50

-- Counters read by done(): globals of this thread's state.
checked_ok = 0
wrong_body = 0    -- no extension line, unknown extension, wrong MAC or wrong length
not_200 = 0       -- any other status (in digest mode: other than 401)
unpaired = 0      -- a right body for a device this thread had not asked for (or twice)
challenges = 0    -- 401s answering a probe (digest mode)
auth_refused = 0  -- 401s beyond the probes: requests whose credentials were refused

function init(args)
   for line in io.lines(args[1]) do
      local mac, ext, len, password = line:match("^(%x+) (%d+) (%d+) ?(%S*)$")
      if mac then
         count = count + 1
         macs[count] = mac
         local device = { mac = mac, len = tonumber(len), password = password }
         by_ext[ext] = device
         by_mac[mac] = device
      end
   end
   needle = args[2]
   math.randomseed(tonumber(args[3]) + 7919 * thread_no)
   mode = args[4] or "plain"
   bare_every = tonumber(args[5] or "10")
   if bare_every > 0 then
      for index = 1, count, bare_every do
         by_mac[macs[index]].bare = true
      end
   end
end

-- A random device; in digest mode one without a request in flight on this thread.
local function draw()
   local mac = macs[math.random(count)]
   if mode == "digest" then
      for _ = 1, MAX_DRAWS do
         if not lent[mac] then break end
         mac = macs[math.random(count)]
      end
   end
   return mac
end

local function take_nonce()
   local now = os.time()
   while #free > 0 do
      local entry = table.remove(free)
      if now - entry.born < NONCE_LIFE_S then return entry end
   end
   return nil
end

-- The Authorization for `mac`'s request, or nil (a probe) when no nonce is free.
local function credentials(mac, path)
   local entry = realm and not lent[mac] and take_nonce()
   if not entry then
      probes = probes + 1
      return nil
   end
   entry.nc = entry.nc + 1
   lent[mac] = entry
   local h1 = ha1[mac]
   if not h1 then
      h1 = digest.ha1(mac, realm, by_mac[mac].password)
      ha1[mac] = h1
   end
   local h2 = ha2[mac]
   if not h2 then
      h2 = digest.ha2("GET", path)
      ha2[mac] = h2
   end
   local nc = digest.nc(entry.nc)
   local response = digest.response(h1, entry.nonce, nc, entry.cnonce, h2)
   return digest.header(mac, realm, entry.nonce, path, response, nc, entry.cnonce, opaque)
end

function request()
   local mac = draw()
   -- A Yealink's User-Agent names its MAC; provisiond checks that it matches the path.
   if by_mac[mac].bare then
      wrk.headers["User-Agent"] = user_agent
   else
      wrk.headers["User-Agent"] = user_agent .. " " .. mac
   end
   local path = "/" .. mac .. ".cfg"
   if mode == "digest" then
      wrk.headers["Authorization"] = credentials(mac, path)
   else
      outstanding[mac] = (outstanding[mac] or 0) + 1
   end
   return wrk.format(nil, path)
end

local function challenged(headers)
   if probes > 0 then
      probes = probes - 1
      challenges = challenges + 1
   else
      auth_refused = auth_refused + 1
   end
   for name, value in pairs(headers) do
      if name:lower() == "www-authenticate" then
         local c = digest.parse_challenge(value)
         if c then
            realm, opaque = c.realm, c.opaque
            local cnonce = string.format("%08x%08x", math.random(0, 0x7fffffff), #free)
            table.insert(free, { nonce = c.nonce, nc = 0, cnonce = cnonce, born = os.time() })
         end
      end
   end
end

-- The device whose file `body` is, when the body is right for it; else nil.
local function identify(body)
   local _, stop = body:find(needle, 1, true)
   local ext = stop and body:match("^(%d+)", stop + 1)
   local want = ext and by_ext[ext]
   if not want or #body ~= want.len or not body:find(want.mac, 1, true) then
      return nil
   end
   return want
end

function response(status, headers, body)
   if status == 401 and mode == "digest" then
      challenged(headers)
      return
   end
   if status ~= 200 then
      not_200 = not_200 + 1
      return
   end
   local want = identify(body)
   if not want then
      wrong_body = wrong_body + 1
      return
   end
   if mode == "digest" then
      local entry = lent[want.mac]
      if not entry then
         unpaired = unpaired + 1
         return
      end
      lent[want.mac] = nil
      table.insert(free, entry)
   else
      local n = outstanding[want.mac]
      if not n then
         unpaired = unpaired + 1
         return
      end
      if n > 1 then outstanding[want.mac] = n - 1 else outstanding[want.mac] = nil end
   end
   checked_ok = checked_ok + 1
end

function done(summary, latency, requests)
   local sum = { checked_ok = 0, wrong_body = 0, not_200 = 0, unpaired = 0,
                 challenges = 0, auth_refused = 0 }
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
      '"checked_ok": %d, "wrong_body": %d, "not_200": %d, "unpaired": %d, ' ..
      '"challenges": %d, "auth_refused": %d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      sum.checked_ok, sum.wrong_body, sum.not_200, sum.unpaired,
      sum.challenges, sum.auth_refused))
end
