-- RFC 7616 Digest responses (MD5, qop=auth) for bench/http_storm.lua's digest mode, on the
-- pure-Lua MD5 of bench/md5.lua. Checked against Python (hashlib and the RFC's own example)
-- by bench/test_md5_lua.py.
--
--   local digest = dofile("bench/digest.lua")
--   local ha1 = digest.ha1(user, realm, password)          -- once per device
--   local ha2 = digest.ha2("GET", uri)                      -- once per device and path
--   local response = digest.response(ha1, nonce, nc, cnonce, ha2)
--   local header = digest.header(user, realm, nonce, uri, response, nc, cnonce, opaque)

local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local md5 = dofile(here .. "md5.lua")

local digest = { md5 = md5 }

-- HA1 = MD5(username:realm:password) (the algorithm "MD5", not "MD5-sess").
function digest.ha1(username, realm, password)
   return md5.hex(username .. ":" .. realm .. ":" .. password)
end

-- HA2 = MD5(method:request-target) for qop=auth.
function digest.ha2(method, uri)
   return md5.hex(method .. ":" .. uri)
end

-- The nonce count as the 8 hex digits the header carries.
function digest.nc(count)
   return string.format("%08x", count)
end

-- response = MD5(HA1:nonce:nc:cnonce:qop:HA2), `nc` already formatted.
function digest.response(ha1, nonce, nc, cnonce, ha2)
   return md5.hex(ha1 .. ":" .. nonce .. ":" .. nc .. ":" .. cnonce .. ":auth:" .. ha2)
end

-- The Authorization header value.
function digest.header(username, realm, nonce, uri, response, nc, cnonce, opaque)
   local text = 'Digest username="' .. username .. '", realm="' .. realm ..
      '", nonce="' .. nonce .. '", uri="' .. uri .. '", algorithm=MD5, response="' ..
      response .. '", qop=auth, nc=' .. nc .. ', cnonce="' .. cnonce .. '"'
   if opaque then
      text = text .. ', opaque="' .. opaque .. '"'
   end
   return text
end

-- The parameters of a WWW-Authenticate: Digest challenge (nil for another scheme).
function digest.parse_challenge(value)
   if not value or not value:match("^%s*[Dd][Ii][Gg][Ee][Ss][Tt]%s") then
      return nil
   end
   local params = {}
   for name, quoted in value:gmatch('([%w_-]+)="([^"]*)"') do
      params[name:lower()] = quoted
   end
   for name, plain in value:gmatch('([%w_-]+)=([^",%s]+)') do
      params[name:lower()] = params[name:lower()] or plain
   end
   if not params.realm or not params.nonce then
      return nil
   end
   return params
end

return digest
