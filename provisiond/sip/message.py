"""SIP messages for the resync NOTIFY (RFC 3261): building the request, parsing responses.

No I/O here: `provisiond.sip.notify` owns the socket and the timers.

The request is an out-of-dialog NOTIFY, the form PBXs have sent to desk phones for years::

    NOTIFY sip:<user>@<phone>:<port> SIP/2.0
    Via: SIP/2.0/UDP <us>:<port>;branch=z9hG4bK<random>;rport
    Max-Forwards: 70
    From: <sip:provisiond@<us>>;tag=<random>
    To: <sip:<user>@<phone>:<port>>
    Call-ID: <random>@<us>
    CSeq: <n> NOTIFY
    Contact: <sip:provisiond@<us>:<port>>
    Event: check-sync
    Subscription-State: terminated
    User-Agent: provisiond
    Content-Length: 0

Choices, with the reason for each:

- Request-URI user: the SIP account the phone registers (the caller passes it). Gigaset acts on
  a check-sync only when it names one of its accounts, and phones that challenge the NOTIFY
  (Cisco SPA, Polycom with request validation) check it against that line's credentials. The
  MAC (12 lowercase hex digits) is the fallback; with neither, the URI has no user part.
- Subscription-State: RFC 6665 requires it in every NOTIFY. No subscription exists, so the
  truthful value is ``terminated``; Cisco's ``service-control`` is sent ``active`` because that
  is what the working PBX recipes for those phones send.
- ``rport`` (RFC 3581) so the answer comes back to the socket we sent from, NAT or not.

Responses are parsed leniently (header names in any case, compact forms, folded lines, bare LF
line ends) but a datagram that is not a well-formed response raises `SipParseError`; the
client drops it, as RFC 3261 18.1.2 asks.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass

USER_AGENT = "provisiond"
FROM_USER = "provisiond"
BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 8.1.1.7: marks a branch that is unique per transaction
MAX_FORWARDS = 70
MAX_DATAGRAM = 65_535
MAX_HEADERS = 128

# RFC 3261 7.3.3 plus the compact forms of RFC 3265/6665 (o, u).
_COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "e": "content-encoding",
    "k": "supported",
    "s": "subject",
    "o": "event",
    "u": "allow-events",
}
_WORD = r"[A-Za-z0-9!%'*+\-.^_`~]+"
_EVENT = re.compile(rf"{_WORD}(?:;{_WORD}(?:={_WORD})?)*")
# RFC 3261 25.1 user part: unreserved and user-unreserved characters (escapes not needed here).
_USER = re.compile(r"[A-Za-z0-9\-_.!~*'()&=+$,;?/]{1,64}")
_HEADER_NAME = re.compile(_WORD)
_STATUS_LINE = re.compile(r"SIP/2\.0[ \t]+([1-6][0-9]{2})(?:[ \t]+(.*))?", re.IGNORECASE)
_CSEQ = re.compile(r"([0-9]{1,10})[ \t]+(" + _WORD + r")[ \t]*")
_MAC = re.compile(r"[0-9a-f]{12}")
_MAC_SEPARATORS = str.maketrans("", "", ":-.")
_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class SipParseError(ValueError):
    """A datagram that is not a well-formed SIP response."""


def new_branch() -> str:
    """A fresh Via branch: the RFC 3261 magic cookie and 96 random bits."""
    return BRANCH_MAGIC + secrets.token_hex(12)


def new_tag() -> str:
    """A fresh From tag (64 random bits)."""
    return secrets.token_hex(8)


def new_call_id(local_host: str) -> str:
    """A fresh Call-ID: 128 random bits at our address."""
    return f"{secrets.token_hex(16)}@{uri_host(local_host)}"


def uri_host(host: str) -> str:
    """The host as it appears in a SIP URI or Via: IPv6 literals go in brackets."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    return f"[{address.compressed}]" if address.version == 6 else address.compressed


def uri_user(user: str | None, mac: str | None) -> str | None:
    """The Request-URI user part: `user` if given, else the MAC as 12 lowercase hex digits.

    Raises ValueError for a user with characters a SIP URI cannot carry unescaped, or a MAC
    that is not 12 hex digits (separators ``:``, ``-`` and ``.`` are dropped).
    """
    if user is not None:
        if not _USER.fullmatch(user):
            raise ValueError(f"{user!r} cannot be the user part of a SIP URI")
        return user
    if mac is not None:
        digits = mac.translate(_MAC_SEPARATORS).lower()
        if not _MAC.fullmatch(digits):
            raise ValueError(f"{mac!r} is not a MAC address")
        return digits
    return None


def check_event(event: str) -> str:
    """Return `event` if it is a valid Event header value (package;param=value...)."""
    if not _EVENT.fullmatch(event):
        raise ValueError(f"{event!r} is not a valid SIP Event value")
    return event


def _check_value(name: str, value: str) -> str:
    # Header injection guard: a value never carries a line break or a control character.
    if _VALUE_FORBIDDEN.search(value):
        raise ValueError(f"{name} value contains a control character")
    return value


@dataclass(frozen=True, slots=True)
class NotifyRequest:
    """One NOTIFY request, everything that goes on the wire; `encode` gives the datagram.

    `authorization` is ``(header name, value)``: ``Authorization`` after a 401,
    ``Proxy-Authorization`` after a 407. `body` is sent with `content_type` when not empty.
    """

    target_host: str
    target_port: int
    local_host: str
    local_port: int
    user: str | None
    event: str
    call_id: str
    from_tag: str
    cseq: int
    branch: str
    subscription_state: str = "terminated"
    content_type: str | None = None
    body: str = ""
    authorization: tuple[str, str] | None = None

    @property
    def uri(self) -> str:
        """The Request-URI (also the To URI and the digest ``uri``)."""
        user = f"{self.user}@" if self.user else ""
        return f"sip:{user}{uri_host(self.target_host)}:{self.target_port}"

    def header_lines(self) -> list[str]:
        """The header lines in sending order (without the request line and the blank line)."""
        local = uri_host(self.local_host)
        body = self.body.encode("utf-8")
        lines = [
            f"Via: SIP/2.0/UDP {local}:{self.local_port};branch={self.branch};rport",
            f"Max-Forwards: {MAX_FORWARDS}",
            f"From: <sip:{FROM_USER}@{local}>;tag={self.from_tag}",
            f"To: <{self.uri}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {self.cseq} NOTIFY",
            f"Contact: <sip:{FROM_USER}@{local}:{self.local_port}>",
            f"Event: {check_event(self.event)}",
            f"Subscription-State: {self.subscription_state}",
            f"User-Agent: {USER_AGENT}",
        ]
        if self.authorization is not None:
            name, value = self.authorization
            lines.append(f"{name}: {_check_value(name, value)}")
        if body:
            lines.append(f"Content-Type: {self.content_type or 'text/plain'}")
        lines.append(f"Content-Length: {len(body)}")
        return [_check_value("header", line) for line in lines]

    def encode(self) -> bytes:
        """The datagram: request line, headers, blank line, body; every line ends in CRLF."""
        if not self.branch.startswith(BRANCH_MAGIC):
            raise ValueError("the Via branch must start with z9hG4bK (RFC 3261 8.1.1.7)")
        head = [f"NOTIFY {self.uri} SIP/2.0", *self.header_lines()]
        return ("\r\n".join(head) + "\r\n\r\n").encode("utf-8") + self.body.encode("utf-8")


@dataclass(frozen=True, slots=True)
class SipResponse:
    """A parsed response. Header names are lowercase full names (compact forms expanded);
    a Via header carrying several values is split so that ``via`` lists them top first."""

    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of header `name` (any case, compact or full form), or None."""
        values = self.header_values(name)
        return values[0] if values else None

    def header_values(self, name: str) -> list[str]:
        """Every value of header `name`, in message order."""
        key = _canonical(name)
        return [value for header, value in self.headers if header == key]

    @property
    def top_via_branch(self) -> str | None:
        """The branch parameter of the topmost Via (what identifies our transaction)."""
        via = self.header("via")
        return None if via is None else via_param(via, "branch")

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, METHOD) of the CSeq header."""
        value = self.header("cseq") or ""
        match = _CSEQ.fullmatch(value.strip())
        if match is None:  # parse_response guarantees a valid CSeq
            raise SipParseError("no valid CSeq")
        return int(match.group(1)), match.group(2).upper()


def _canonical(name: str) -> str:
    lower = name.strip().lower()
    return _COMPACT.get(lower, lower)


def via_param(via: str, name: str) -> str | None:
    """A parameter of one Via value (``branch``, ``rport``...), compared by name in any case."""
    for part in via.split(";")[1:]:
        key, _, value = part.partition("=")
        if key.strip().lower() == name:
            return value.strip()
    return None


def _split_commas(value: str) -> list[str]:
    """Split a list header on commas outside quoted strings (Via may hold several values)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def _unfold(lines: list[str]) -> list[str]:
    """Join continuation lines (starting with SP or HT) to the header line they continue."""
    joined: list[str] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not joined:
                raise SipParseError("continuation line before any header")
            joined[-1] = f"{joined[-1]} {line.strip()}"
        else:
            joined.append(line)
    return joined


def _parse_headers(lines: list[str]) -> list[tuple[str, str]]:
    headers: list[tuple[str, str]] = []
    for line in _unfold(lines):
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not _HEADER_NAME.fullmatch(name):
            raise SipParseError(f"malformed header line {line[:40]!r}")
        key = _canonical(name)
        values = _split_commas(value) if key == "via" else [value.strip()]
        headers.extend((key, item) for item in values)
        if len(headers) > MAX_HEADERS:
            raise SipParseError("too many headers")
    return headers


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, found, rest = data.partition(separator)
        if found:
            return head, rest
    return data, b""  # no blank line: no body (tolerated on UDP, the datagram ends the message)


def _body(headers: list[tuple[str, str]], rest: bytes) -> bytes:
    lengths = [value for name, value in headers if name == "content-length"]
    if not lengths:
        return rest  # UDP: the body runs to the end of the datagram (RFC 3261 18.3)
    if not lengths[0].isdigit():
        raise SipParseError("bad Content-Length")
    length = int(lengths[0])
    if length > len(rest):
        raise SipParseError("datagram shorter than its Content-Length")  # RFC 3261 18.3
    return rest[:length]


def parse_response(data: bytes) -> SipResponse:
    """Parse one datagram as a SIP response, or raise SipParseError.

    Required: a ``SIP/2.0 <code>`` status line, a Via and a valid CSeq (what a response is
    matched by). A request, a truncated body, or a malformed header line is refused.
    """
    if not data or len(data) > MAX_DATAGRAM:
        raise SipParseError("empty or oversized datagram")
    head, rest = _split_head(data.lstrip(b"\r\n"))
    lines = head.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    status = _STATUS_LINE.fullmatch(lines[0].strip())
    if status is None:
        raise SipParseError("not a SIP/2.0 status line")
    headers = _parse_headers([line for line in lines[1:] if line.strip()])
    response = SipResponse(
        status=int(status.group(1)),
        reason=(status.group(2) or "").strip(),
        headers=tuple(headers),
        body=_body(headers, rest),
    )
    if response.top_via_branch is None:
        raise SipParseError("no Via branch")
    if not _CSEQ.fullmatch((response.header("cseq") or "").strip()):
        raise SipParseError("no valid CSeq")
    return response
