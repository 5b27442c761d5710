"""HTTP Digest authentication (RFC 7616, qop=auth) for phone requests.

The server keeps no state per challenge: a nonce carries its own expiry and an HMAC over it
(a per-process random secret unless one is configured, which instances behind one load
balancer must share), so a forged or altered nonce is refused and an expired but genuine one
is answered `stale=true` after the response has been checked (RFC 7616 3.3: stale only when
the client knows the password). Replays are refused: per nonce the nonce-count must grow;
used nonces sit in a bounded table (oldest evicted; a nonce older than anything evicted is
treated as stale, so eviction cannot reopen a replay window).

Supported: MD5, MD5-sess, SHA-256, SHA-256-sess; qop "auth" only. Not supported: userhash,
the RFC 8187 ``username*`` form, auth-int and the qop-less RFC 2069 mode; each is refused
with a reason. `verify` never raises on what a client sends.

The challenges list SHA-256 first, then MD5 (RFC 7616 3.7: preferred first). A client that
reads only the first challenge and lacks SHA-256 (Python's urllib does exactly that) needs a
server offering MD5 alone: `DigestAuth(..., algorithms=("MD5",))`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MAX_HEADER = 4096  # a real Authorization header is a few hundred bytes
MAX_PARAMS = 24
MAX_NONCES = 50_000
_PRUNE_PER_CALL = 8
_HASHES: dict[str, Callable[[bytes], hashlib._Hash]] = {
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
}
_CANONICAL = {
    "MD5": "MD5",
    "MD5-SESS": "MD5-sess",
    "SHA-256": "SHA-256",
    "SHA-256-SESS": "SHA-256-sess",
}
_REQUIRED = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[^\s,\"\\\x00-\x1f\x7f]+")  # unquoted values: lenient, like most servers
_QUOTED = re.compile(r'"((?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[^\x00-\x08\x0a-\x1f\x7f])*)"')
_ESCAPE = re.compile(r"\\(.)")
_NC = re.compile(r"[0-9a-fA-F]{8}")
_HEX = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{64}")
_NONCE_BYTES = 8 + 12 + 16  # expiry in ms, random, truncated HMAC-SHA-256
NO_CREDENTIALS = "no credentials"


@dataclass(frozen=True, slots=True)
class DigestResult:
    """The outcome of checking one Authorization header.

    `reason` is for logs, never for the client. `stale` means the client knows the password
    but must retry with a fresh nonce: answer 401 with `challenges(stale=True)` and do not
    count it as a failed authentication.
    """

    ok: bool
    username: str | None
    stale: bool
    reason: str
    algorithm: str | None = None

    @property
    def failed(self) -> bool:
        """True when credentials were presented and are wrong (count it against the source)."""
        return not self.ok and not self.stale and self.reason != NO_CREDENTIALS


class _Malformed(ValueError):
    """The header cannot be parsed; the message is the reason."""


def compute_response(
    algorithm: str,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: str,
    cnonce: str,
    qop: str = "auth",
) -> str:
    """The request-digest of RFC 7616 3.4.1 for qop=auth, as lowercase hex."""
    new = _HASHES[algorithm.upper()]

    def hexdigest(text: str) -> str:
        return new(text.encode("utf-8")).hexdigest()

    ha1 = hexdigest(f"{username}:{realm}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = hexdigest(f"{ha1}:{nonce}:{cnonce}")
    ha2 = hexdigest(f"{method}:{uri}")
    return hexdigest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def parse_authorization(header: str) -> dict[str, str]:
    """The auth-params of a ``Digest`` Authorization header, names lowercased.

    Raises ValueError (with the reason) on anything that is not a well-formed Digest header.
    """
    if len(header) > MAX_HEADER:
        raise _Malformed("header too long")
    text = header.strip(" \t")
    scheme = _TOKEN.match(text)
    if scheme is None:
        raise _Malformed("no scheme")
    if scheme.group().lower() != "digest":
        raise _Malformed(f"scheme {scheme.group()[:16]!r} is not Digest")
    rest = text[scheme.end() :]
    if rest and rest[0] not in " \t":
        raise _Malformed("no space after the scheme")
    return _parse_params(rest)


def _parse_params(text: str) -> dict[str, str]:
    """Comma-separated ``name=value`` pairs; values are tokens or quoted strings."""
    params: dict[str, str] = {}
    i, end = 0, len(text)
    while True:
        while i < end and text[i] in " \t,":  # empty list elements are allowed (RFC 9110 5.6.1)
            i += 1
        if i >= end:
            return params
        name = _TOKEN.match(text, i)
        if name is None:
            raise _Malformed(f"expected a parameter name at {i}")
        key = name.group().lower()
        i = _skip_space(text, name.end())
        if i >= end or text[i] != "=":
            raise _Malformed(f"parameter {key[:16]!r} has no value")
        value, i = _parse_value(text, _skip_space(text, i + 1))
        if key in params:
            raise _Malformed(f"parameter {key[:16]!r} given twice")
        params[key] = value
        if len(params) > MAX_PARAMS:
            raise _Malformed("too many parameters")
        i = _skip_space(text, i)
        if i < end and text[i] != ",":
            raise _Malformed(f"expected a comma at {i}")


def _parse_value(text: str, i: int) -> tuple[str, int]:
    if text.startswith('"', i):
        quoted = _QUOTED.match(text, i)
        if quoted is None:
            raise _Malformed("unterminated or invalid quoted string")
        return _ESCAPE.sub(r"\1", quoted.group(1)), quoted.end()
    token = _VALUE.match(text, i)
    if token is None:
        raise _Malformed(f"expected a value at {i}")
    return token.group(), token.end()


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i] in " \t":
        i += 1
    return i


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _refuse(reason: str, username: str | None = None, stale: bool = False) -> DigestResult:
    return DigestResult(False, username, stale, reason)


class DigestAuth:
    """Issues Digest challenges and verifies Authorization headers for one realm."""

    def __init__(
        self,
        realm: str,
        secret: bytes | None = None,
        nonce_ttl_s: float = 300,
        clock: Callable[[], float] = time.time,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        max_nonces: int = MAX_NONCES,
    ) -> None:
        if not realm or any(ord(c) < 0x20 or ord(c) == 0x7F for c in realm):
            raise ValueError("the realm must be non-empty, without control characters")
        unknown = [a for a in algorithms if a.upper() not in _HASHES]
        if unknown or not algorithms:
            raise ValueError(f"unsupported digest algorithms: {unknown or 'none given'}")
        self.realm = realm
        self.nonce_ttl_s = nonce_ttl_s
        self.algorithms = tuple(_CANONICAL[a.upper()] for a in algorithms)
        self._accepted = {a.upper() for a in algorithms} | {
            a.upper() + "-SESS" for a in algorithms if not a.upper().endswith("-SESS")
        }
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._clock = clock
        self._opaque = self._b64(self._mac(b"opaque", b"")[:18])
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()  # nonce -> (nc, expiry)
        self._max_nonces = max_nonces
        self._floor = float("-inf")  # latest expiry among nonces evicted from `_seen`

    # -- challenges --------------------------------------------------------------------

    def challenges(self, stale: bool = False) -> list[str]:
        """WWW-Authenticate values, one per algorithm, preferred first; one fresh nonce."""
        nonce = self.new_nonce()
        flag = "true" if stale else "false"
        return [
            f'Digest realm={_quote(self.realm)}, qop="auth", algorithm={algorithm}, '
            f'nonce="{nonce}", opaque="{self._opaque}", stale={flag}'
            for algorithm in self.algorithms
        ]

    def new_nonce(self) -> str:
        """A signed nonce that expires `nonce_ttl_s` seconds from now."""
        expires = int((self._clock() + self.nonce_ttl_s) * 1000)
        payload = struct.pack(">Q", expires) + secrets.token_bytes(12)
        return self._b64(payload + self._mac(b"nonce", payload)[:16])

    # -- verification ------------------------------------------------------------------

    def verify(
        self,
        method: str,
        authorization: str | None,
        password_for: Callable[[str], str | None],
        *,
        uri: str,
    ) -> DigestResult:
        """Check an Authorization header for a request `method` on request target `uri`.

        `password_for(username)` returns the user's password or None for an unknown user;
        `uri` is the request target exactly as received (path and query, undecoded).
        """
        if not authorization or not authorization.strip():
            return _refuse(NO_CREDENTIALS)
        try:
            params = parse_authorization(authorization)
        except ValueError as error:
            return _refuse(f"malformed: {error}")
        problem = self._field_problem(params, uri)
        username = params.get("username")
        if problem is not None:
            return _refuse(problem, username)
        assert username is not None  # _field_problem checked the required fields
        expiry = self._nonce_expiry(params["nonce"])
        if expiry is None:
            return _refuse("nonce not issued by this server", username)
        if not self._response_matches(method, params, password_for):
            return _refuse("wrong credentials", username)
        return self._freshness(params, expiry)

    def _field_problem(self, params: dict[str, str], uri: str) -> str | None:
        """Why the parameters cannot be checked, or None when they are complete and ours."""
        if "username*" in params or params.get("userhash", "false").lower() == "true":
            return "userhash and username* are not supported"
        missing = [name for name in _REQUIRED if name not in params]
        if missing:
            return f"missing {', '.join(missing)}"
        if params["realm"] != self.realm:
            return "wrong realm"
        if params["qop"].lower() != "auth":
            return f"qop {params['qop'][:16]!r} is not supported"
        if params.get("algorithm", "MD5").upper() not in self._accepted:
            return f"algorithm {params.get('algorithm', '')[:16]!r} is not offered"
        if not _NC.fullmatch(params["nc"]):
            return "nc is not 8 hex digits"
        if not params["cnonce"]:
            return "empty cnonce"
        if not _HEX.fullmatch(params["response"]):
            return "response is not a hex digest"
        if params["uri"] != uri:
            return "uri differs from the request target"
        if "opaque" in params and params["opaque"] != self._opaque:
            return "wrong opaque"
        return None

    def _response_matches(
        self, method: str, params: dict[str, str], password_for: Callable[[str], str | None]
    ) -> bool:
        password = password_for(params["username"])
        algorithm = params.get("algorithm", "MD5")
        expected = compute_response(
            algorithm,
            params["username"],
            self.realm,
            password if password is not None else "",  # same work for unknown users
            method,
            params["uri"],
            params["nonce"],
            params["nc"],
            params["cnonce"],
            params["qop"],
        )
        same = hmac.compare_digest(expected.encode(), params["response"].lower().encode())
        return same and password is not None

    def _freshness(self, params: dict[str, str], expiry: float) -> DigestResult:
        """The result for a correct response: stale when the nonce expired or is replayed."""
        nonce, username = params["nonce"], params["username"]
        algorithm = _CANONICAL[params.get("algorithm", "MD5").upper()]
        now = self._clock()
        self._prune(now)
        if now >= expiry:
            return _refuse("nonce expired", username, stale=True)
        count = int(params["nc"], 16)
        seen = self._seen.get(nonce)
        if seen is None and expiry <= self._floor:
            return _refuse("nonce forgotten (table full)", username, stale=True)
        if seen is not None and count <= seen[0]:
            return _refuse("nonce count did not increase (replay)", username, stale=True)
        self._seen[nonce] = (count, expiry)
        self._seen.move_to_end(nonce)
        while len(self._seen) > self._max_nonces:
            _, (_, evicted) = self._seen.popitem(last=False)
            self._floor = max(self._floor, evicted)
        return DigestResult(True, username, False, "ok", algorithm)

    # -- nonces ------------------------------------------------------------------------

    def _nonce_expiry(self, nonce: str) -> float | None:
        """The expiry (clock seconds) of a nonce we issued, None for anything else."""
        try:
            raw = base64.b64decode(nonce.encode("ascii"), altchars=b"-_", validate=True)
        except (ValueError, binascii.Error):
            return None
        if len(raw) != _NONCE_BYTES:
            return None
        payload, tag = raw[:20], raw[20:]
        if not hmac.compare_digest(tag, self._mac(b"nonce", payload)[:16]):
            return None
        (expires_ms,) = struct.unpack(">Q", payload[:8])
        return float(expires_ms) / 1000

    def _prune(self, now: float) -> None:
        """Forget a few expired nonces: an expired nonce is refused as stale anyway."""
        for _ in range(_PRUNE_PER_CALL):
            if not self._seen:
                return
            nonce, (_, expiry) = next(iter(self._seen.items()))
            if expiry > now:
                return
            del self._seen[nonce]

    def _mac(self, purpose: bytes, data: bytes) -> bytes:
        message = purpose + b"\0" + self.realm.encode("utf-8") + b"\0" + data
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    @staticmethod
    def _b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
