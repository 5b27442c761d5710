"""The client side of HTTP Digest (RFC 7616, qop=auth), written apart from provisiond's own.

The benchmarks check provisiond's digest with this independent implementation (hashlib only):
the in-process pre-render of a `digest` fleet, the byte-for-byte pass over every file, the
attack checks of http_checks.py, and bench/test_md5_lua.py (the reference the Lua MD5 of the
wrk script is compared with). Never provisiond.provisioning.digest: a bug shared by server
and client would cancel out.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

_PARAM = re.compile(r'([A-Za-z0-9_-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


@dataclass(frozen=True)
class Challenge:
    """One WWW-Authenticate: Digest challenge."""

    realm: str
    nonce: str
    algorithm: str  # "MD5" or "SHA-256" (upper case)
    opaque: str | None
    qop: str
    stale: bool


def parse_challenge(header: str) -> Challenge | None:
    """A Digest challenge, or None for another scheme or one without realm and nonce."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = {
        name.lower(): quoted if quoted or plain is None else plain
        for name, quoted, plain in _PARAM.findall(rest)
    }
    if "realm" not in params or "nonce" not in params:
        return None
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=params.get("algorithm", "MD5").upper(),
        opaque=params.get("opaque"),
        qop=params.get("qop", ""),
        stale=params.get("stale", "false").lower() == "true",
    )


def pick(headers: Iterable[str], algorithm: str) -> Challenge | None:
    """The challenge offering `algorithm` among a response's WWW-Authenticate values."""
    for header in headers:
        challenge = parse_challenge(header)
        if challenge is not None and challenge.algorithm == algorithm.upper():
            return challenge
    return None


def response_digest(
    algorithm: str,
    *,
    username: str,
    realm: str,
    password: str,
    method: str,
    uri: str,
    nonce: str,
    nc: int,
    cnonce: str,
) -> str:
    """The request-digest of RFC 7616 section 3.4.1 with qop=auth (not the -sess variants)."""
    new = _HASH[algorithm.upper()]

    def h(text: str) -> str:
        return new(text.encode()).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    return h(f"{ha1}:{nonce}:{nc:08x}:{cnonce}:auth:{ha2}")


def authorization(
    challenge: Challenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str:
    """The Authorization header answering `challenge` (nonce count `nc`)."""
    cnonce = cnonce or secrets.token_hex(8)
    digest = response_digest(
        challenge.algorithm,
        username=username,
        realm=challenge.realm,
        password=password,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        nc=nc,
        cnonce=cnonce,
    )
    parts = [
        f'username="{username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f"algorithm={challenge.algorithm}",
        f'response="{digest}"',
        "qop=auth",
        f"nc={nc:08x}",
        f'cnonce="{cnonce}"',
    ]
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)
