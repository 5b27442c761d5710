-- MD5 (RFC 1321) in pure Lua for LuaJIT (wrk's Lua), written for bench/http_storm.lua's digest
-- mode: wrk has no hash function, and the digest storm must answer provisiond's challenges.
-- Checked against Python's hashlib by bench/test_md5_lua.py.
--
--   local md5 = dofile("bench/md5.lua")
--   md5.hex("abc")  --> "900150983cd24fb0d6963f7d28e17f72"
--
-- All arithmetic is on LuaJIT's 32-bit `bit` operations; sums of a few 32-bit values are
-- exact in a double and are brought back to 32 bits with bit.tobit.

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rol, tobit, bswap, tohex = bit.rol, bit.tobit, bit.bswap, bit.tohex
local byte, char, rep, floor = string.byte, string.char, string.rep, math.floor

-- RFC 1321 3.4: K[i] = floor(2^32 * |sin(i)|) for i = 1..64 (kept 0-based here).
local K = {}
for i = 0, 63 do
   K[i] = tobit(floor(math.abs(math.sin(i + 1)) * 4294967296))
end

-- Per-round left rotations, four per round.
local S = { [0] = 7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21 }

-- Message word index used by each of the 64 steps.
local G = {}
for i = 0, 63 do
   if i < 16 then
      G[i] = i
   elseif i < 32 then
      G[i] = (5 * i + 1) % 16
   elseif i < 48 then
      G[i] = (3 * i + 5) % 16
   else
      G[i] = (7 * i) % 16
   end
end

-- The padded message: a 0x80 byte, zeros up to 56 mod 64, then the length in bits as a
-- 64-bit little-endian number.
local function pad(message)
   local length = #message
   local zeros = (55 - length) % 64
   local bits = length * 8
   local low = bits % 4294967296
   local high = floor(bits / 4294967296)
   local function le32(n)
      return char(n % 256, floor(n / 256) % 256, floor(n / 65536) % 256, floor(n / 16777216) % 256)
   end
   return message .. "\128" .. rep("\0", zeros) .. le32(low) .. le32(high)
end

local M = {}  -- the current block's sixteen words (reused)

local function block(data, offset, a0, b0, c0, d0)
   for j = 0, 15 do
      local p = offset + 4 * j
      local w1, w2, w3, w4 = byte(data, p, p + 3)
      M[j] = tobit(w1 + w2 * 256 + w3 * 65536 + w4 * 16777216)
   end
   local a, b, c, d = a0, b0, c0, d0
   for i = 0, 63 do
      local f
      if i < 16 then
         f = bor(band(b, c), band(bnot(b), d))
      elseif i < 32 then
         f = bor(band(d, b), band(bnot(d), c))
      elseif i < 48 then
         f = bxor(b, c, d)
      else
         f = bxor(c, bor(b, bnot(d)))
      end
      local rotated = rol(tobit(a + f + K[i] + M[G[i]]), S[(floor(i / 16) * 4) + (i % 4)])
      a, d, c, b = d, c, b, tobit(b + rotated)
   end
   return tobit(a0 + a), tobit(b0 + b), tobit(c0 + c), tobit(d0 + d)
end

local md5 = {}

-- The digest of `message` (a Lua string of bytes) as 32 lowercase hex digits.
function md5.hex(message)
   local data = pad(message)
   local a, b, c, d = tobit(0x67452301), tobit(0xefcdab89), tobit(0x98badcfe), tobit(0x10325476)
   for offset = 1, #data, 64 do
      a, b, c, d = block(data, offset, a, b, c, d)
   end
   -- The state words are output little-endian; tohex prints big-endian: swap the bytes.
   return tohex(bswap(a)) .. tohex(bswap(b)) .. tohex(bswap(c)) .. tohex(bswap(d))
end

return md5
