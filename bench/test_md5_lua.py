"""Check bench/md5.lua and bench/digest.lua against Python, inside wrk's own LuaJIT.

    .venv/bin/python bench/test_md5_lua.py

Not a pytest test (it needs wrk, bench/setup.sh): run it after changing the Lua files. wrk
loads its script before it connects anywhere, so a script that computes and exits at load
time runs the Lua code in exactly the interpreter the storm uses, and never sends a request
(the URL given to wrk is a closed loopback port). Compared:
- MD5 of RFC 1321's test suite, of every length 0..200 (random bytes: all the padding
  boundaries, 55/56/63/64 and so on), of every byte value, and of a few long strings;
- RFC 7616 responses: the RFC's own MD5 example (section 3.9.1) and random cases against
  bench/digest_client.py (hashlib);
- the challenge parser on a challenge as provisiond sends it.
Exit 0 when all match; prints the first mismatches otherwise.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import tempfile
from pathlib import Path

from digest_client import response_digest

HERE = Path(__file__).resolve().parent
RFC1321 = [
    b"",
    b"a",
    b"abc",
    b"message digest",
    b"abcdefghijklmnopqrstuvwxyz",
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    b"1234567890" * 8,
]
# RFC 7616 3.9.1, algorithm MD5: the expected response is the RFC's.
RFC7616 = {
    "username": "Mufasa",
    "realm": "http-auth@example.org",
    "password": "Circle of Life",
    "method": "GET",
    "uri": "/dir/index.html",
    "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
    "nc": 1,
    "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    "expected": "8ca523f5e9506fed4657c9700eebdbec",
}
CHALLENGE = (
    'Digest realm="provisiond", qop="auth", algorithm=MD5, nonce="AAABk-x_y", '
    'opaque="op4que", stale=false'
)

LUA = r"""
local digest = dofile(HERE .. "digest.lua")
local md5 = digest.md5
local function unhex(h)
   return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end))
end
local out = io.open(OUT, "w")
for line in io.lines(IN_MD5) do
   out:write("md5 ", md5.hex(unhex(line)), "\n")
end
for line in io.lines(IN_DIGEST) do
   local u, r, p, m, uri, nonce, nc, cnonce =
      line:match("^(%S+) (%S+) (%S+) (%S+) (%S+) (%S+) (%d+) (%S+)$")
   u, r, p = unhex(u), unhex(r), unhex(p)
   local h1, h2 = digest.ha1(u, r, p), digest.ha2(m, uri)
   local resp = digest.response(h1, nonce, digest.nc(tonumber(nc)), cnonce, h2)
   out:write("digest ", resp, "\n")
end
local c = digest.parse_challenge(CHALLENGE)
out:write("challenge ", c.realm, " ", c.nonce, " ", c.opaque, " ", c.algorithm, " ", c.qop, "\n")
out:close()
os.exit(0)
"""


def md5_inputs(rng: random.Random) -> list[bytes]:
    """The strings whose MD5 is compared."""
    cases = list(RFC1321)
    cases += [rng.randbytes(n) for n in range(201)]
    cases.append(bytes(range(256)))
    cases += [rng.randbytes(n) for n in (1000, 4095, 4096, 10_000)]
    cases += ["provisiond: é ü 日本".encode(), b"\x00" * 64, b"\xff" * 119]
    return cases


def digest_inputs(rng: random.Random) -> list[dict[str, object]]:
    """RFC 7616's example plus random ones (fields without spaces, as the Lua reader wants)."""
    cases: list[dict[str, object]] = [dict(RFC7616)]
    for n in range(50):
        cases.append(
            {
                "username": f"{rng.getrandbits(48):012x}",
                "realm": rng.choice(["provisiond", "phones@example.org"]),
                "password": rng.randbytes(rng.randrange(1, 40)).hex(),
                "method": rng.choice(["GET", "HEAD", "PUT"]),
                "uri": f"/{rng.getrandbits(48):012x}.cfg",
                "nonce": rng.randbytes(36).hex(),
                "nc": rng.randrange(1, 1 << 32) if n % 2 else n + 1,
                "cnonce": rng.randbytes(8).hex(),
            }
        )
    return cases


def run_lua(tmp: Path, md5_cases: list[bytes], digests: list[dict[str, object]]) -> list[str]:
    """Run the Lua side in wrk; its output lines."""
    md5_in, digest_in, out = tmp / "md5.txt", tmp / "digest.txt", tmp / "out.txt"
    md5_in.write_text("".join(c.hex() + "\n" for c in md5_cases))
    digest_in.write_text(
        "".join(
            f"{str(d['username']).encode().hex()} {str(d['realm']).encode().hex()} "
            f"{str(d['password']).encode().hex()} {d['method']} {d['uri']} {d['nonce']} "
            f"{d['nc']} {d['cnonce']}\n"
            for d in digests
        )
    )
    script = tmp / "check.lua"
    prelude = {
        "HERE": str(HERE) + "/",
        "OUT": str(out),
        "IN_MD5": str(md5_in),
        "IN_DIGEST": str(digest_in),
        "CHALLENGE": CHALLENGE,
    }
    lines = [f"local {name} = {json.dumps(value)}" for name, value in prelude.items()]
    script.write_text("\n".join(lines) + LUA)
    # Port 9 (discard) on loopback: nothing listens; wrk exits in the script before connecting.
    proc = subprocess.run(
        ["wrk", "-t", "1", "-c", "1", "-d", "1s", "-s", str(script), "http://127.0.0.1:9/"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"wrk/Lua failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return out.read_text().splitlines()


def expected_lines(md5_cases: list[bytes], digests: list[dict[str, object]]) -> list[str]:
    """What Python computes for the same inputs."""
    lines = [f"md5 {hashlib.md5(c).hexdigest()}" for c in md5_cases]
    for d in digests:
        lines.append(
            "digest "
            + response_digest(
                "MD5",
                username=str(d["username"]),
                realm=str(d["realm"]),
                password=str(d["password"]),
                method=str(d["method"]),
                uri=str(d["uri"]),
                nonce=str(d["nonce"]),
                nc=int(str(d["nc"])),
                cnonce=str(d["cnonce"]),
            )
        )
    lines.append("challenge provisiond AAABk-x_y op4que MD5 auth")
    return lines


def main() -> int:
    """Compare; exit status 0 when everything matches."""
    rng = random.Random(7616)
    md5_cases, digests = md5_inputs(rng), digest_inputs(rng)
    expected = expected_lines(md5_cases, digests)
    # The RFC's own vector checks the Python reference too, not only the Lua.
    rfc = expected[len(md5_cases)].split()[1]
    if rfc != RFC7616["expected"]:
        print(f"digest_client disagrees with RFC 7616: {rfc}")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-md5-") as tmp:
        got = run_lua(Path(tmp), md5_cases, digests)
    bad = [(i, e, g) for i, (e, g) in enumerate(zip(expected, got, strict=False)) if e != g]
    if len(got) != len(expected):
        print(f"Lua printed {len(got)} lines, expected {len(expected)}")
    for i, e, g in bad[:10]:
        print(f"case {i}: expected {e!r}, Lua gave {g!r}")
    ok = not bad and len(got) == len(expected)
    print(
        f"{len(md5_cases)} MD5 cases, {len(digests)} digest responses (RFC 7616 3.9.1 included), "
        f"1 challenge: {'all match' if ok else f'{len(bad)} MISMATCHES'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
