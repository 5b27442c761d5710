"""Digest answers to a phone's 401/407 challenge (RFC 3261 22, RFC 8760, RFC 7616 hashing).

Phones that guard their NOTIFY handler (Cisco SPA, Polycom with request validation) challenge
it with the line's SIP credentials. We answer once: `choose_challenge` picks the strongest
challenge we support among those offered, `authorization` computes the header value.

Algorithms: MD5, SHA-256 and SHA-512-256 (when the local OpenSSL has it), each also ``-sess``.
qop: ``auth`` preferred, ``auth-int`` (hashes the body) when it is all the phone offers, and
the qop-less RFC 2069 form when the challenge names no qop. ``userhash=true`` (RFC 7616) is
honoured. Other schemes (Basic, AKA) are not answered.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass


def _sha512_256(data: bytes) -> str:
    return hashlib.new("sha512_256", data).hexdigest()


def _has_sha512_256() -> bool:
    try:
        hashlib.new("sha512_256")
    except ValueError:
        return False
    return True


_Hasher = Callable[[bytes], str]
_HASHERS: dict[str, _Hasher] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}
if _has_sha512_256():
    _HASHERS["SHA-512-256"] = _sha512_256
# Strongest first: RFC 8760 asks the client to use the strongest challenge it understands.
_PREFERENCE = ("SHA-512-256", "SHA-256", "MD5")
# name=value pairs; an unquoted value never starts with a quote (so a broken quote fails).
_PARAM = re.compile(r'\s*([A-Za-z0-9_\-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s"]*)\s*(?:,|$)')
_ESCAPED = re.compile(r"\\(.)")


@dataclass(frozen=True, slots=True)
class DigestChallenge:
    """One parsed Digest challenge (a WWW-Authenticate or Proxy-Authenticate value)."""

    realm: str
    nonce: str
    algorithm: str = "MD5"  # the base algorithm, canonical case: MD5, SHA-256, SHA-512-256
    session: bool = False  # the "-sess" variant
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    userhash: bool = False

    @property
    def algorithm_name(self) -> str:
        """The algorithm as written in the Authorization header, e.g. ``SHA-256-sess``."""
        return f"{self.algorithm}-sess" if self.session else self.algorithm


def _params(text: str) -> dict[str, str] | None:
    params: dict[str, str] = {}
    text = text.strip()
    position = 0
    while position < len(text):
        match = _PARAM.match(text, position)
        if match is None or match.end() == position:
            return None
        value = match.group(2)
        if value.startswith('"'):
            value = _ESCAPED.sub(r"\1", value[1:-1])
        params[match.group(1).lower()] = value
        position = match.end()
    return params


def parse_challenge(value: str) -> DigestChallenge | None:
    """Parse a challenge header value; None when it is not a Digest challenge we can answer."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        return None
    params = _params(rest)
    if params is None or "realm" not in params or not params.get("nonce"):
        return None
    algorithm = params.get("algorithm", "MD5").upper()
    session = algorithm.endswith("-SESS")
    base = algorithm.removesuffix("-SESS")
    if base not in _HASHERS:
        return None
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    if qop and not {"auth", "auth-int"} & set(qop):
        return None
    return DigestChallenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=base,
        session=session,
        qop=qop,
        opaque=params.get("opaque"),
        userhash=params.get("userhash", "").lower() == "true",
    )


def choose_challenge(values: Iterable[str]) -> DigestChallenge | None:
    """The strongest answerable challenge among header values (RFC 8760 section 2.4)."""
    parsed = [c for c in (parse_challenge(v) for v in values) if c is not None]
    if not parsed:
        return None
    return min(parsed, key=lambda challenge: _PREFERENCE.index(challenge.algorithm))


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def digest_response(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    qop: str | None,
    cnonce: str,
    nc: str,
    body: bytes = b"",
) -> str:
    """The ``response`` value (RFC 7616 3.4.1; RFC 2069 form when `qop` is None)."""
    hasher = _HASHERS[challenge.algorithm]

    def h(text: str) -> str:
        return hasher(text.encode("utf-8"))

    a1 = f"{username}:{challenge.realm}:{password}"
    if challenge.session:
        a1 = f"{h(a1)}:{challenge.nonce}:{cnonce}"
    a2 = f"{method}:{uri}"
    if qop == "auth-int":
        a2 = f"{a2}:{hasher(body)}"
    if qop is None:
        return h(f"{h(a1)}:{challenge.nonce}:{h(a2)}")
    return h(f"{h(a1)}:{challenge.nonce}:{nc}:{cnonce}:{qop}:{h(a2)}")


def authorization(
    challenge: DigestChallenge,
    *,
    username: str,
    password: str,
    method: str,
    uri: str,
    body: bytes = b"",
    cnonce: str | None = None,
) -> str:
    """The Authorization / Proxy-Authorization value answering `challenge` (nonce count 1)."""
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else None)
    cnonce = cnonce or secrets.token_hex(16)
    nc = "00000001"  # one request per nonce: we answer a challenge once
    response = digest_response(
        challenge,
        username=username,
        password=password,
        method=method,
        uri=uri,
        qop=qop,
        cnonce=cnonce,
        nc=nc,
        body=body,
    )
    shown_user = username
    if challenge.userhash:
        shown_user = _HASHERS[challenge.algorithm](f"{username}:{challenge.realm}".encode())
    parts = [
        f"username={_quote(shown_user)}",
        f"realm={_quote(challenge.realm)}",
        f"nonce={_quote(challenge.nonce)}",
        f"uri={_quote(uri)}",
        f"response={_quote(response)}",
        f"algorithm={challenge.algorithm_name}",
    ]
    if qop is not None or challenge.session:
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts += [f"qop={qop}", f"nc={nc}"]
    if challenge.userhash:
        parts.append("userhash=true")
    return "Digest " + ", ".join(parts)
