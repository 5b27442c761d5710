"""HTTP/1.1 on the wire for the phone listener: status lines, dates, conditions, ranges, Host.

Pure functions and small caches, no sockets: `phone_http` parses with httptools and writes the
bytes these build. Everything that a boot storm would otherwise recompute per request is
cached here: the `Date` line (once per second), the Host verdict (per value), the refusal
responses (per status).
"""

from __future__ import annotations

import functools
import ipaddress
import time
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    206: "Partial Content",
    304: "Not Modified",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    416: "Range Not Satisfiable",
    417: "Expectation Failed",
    421: "Misdirected Request",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
    507: "Insufficient Storage",
}
# Refusals carry their reason as a short text body (as phones' logs show it); these do not
# (421: nothing for a rebinding page to read), and the first three carry no length either.
NO_BODY = frozenset({100, 204, 304, 421})
NO_LENGTH = frozenset({100, 204, 304})
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` (we answer HTTP/1.0 clients in 1.1, as RFC 9110
    section 6.2 allows: the version says what we support, not what the message uses)."""
    return f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}\r\n".encode("ascii")


class DateLine:
    """The ``Date:`` header line, formatted once per second (RFC 9110 IMF-fixdate)."""

    __slots__ = ("_line", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._line = b""

    def __call__(self) -> bytes:
        second = int(time.time())
        if second != self._second:
            stamp = datetime.fromtimestamp(second, UTC)
            self._line = b"Date: " + http_date(stamp).encode("ascii") + b"\r\n"
            self._second = second
        return self._line


def http_date(moment: datetime) -> str:
    """IMF-fixdate: ``Thu, 03 Dec 2026 09:47:15 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def parse_http_date(value: str) -> datetime | None:
    """An HTTP date (any of RFC 9110's three formats), or None when it is not one."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def not_modified(
    etag: str | None,
    last_modified: datetime | None,
    if_none_match: str | None,
    if_modified_since: str | None,
) -> bool:
    """Whether a conditional GET is answered 304 (RFC 9110 section 13.2.2: If-None-Match, when
    present, decides alone; If-Modified-Since only without it)."""
    if if_none_match is not None:
        if etag is None:
            return False
        tags = [tag.strip() for tag in if_none_match.split(",")]
        weak = etag if etag.startswith("W/") else "W/" + etag
        return "*" in tags or etag in tags or weak in tags
    if if_modified_since is None or last_modified is None:
        return False
    since = parse_http_date(if_modified_since)
    return since is not None and last_modified.replace(microsecond=0) <= since


class Unsatisfiable(Exception):
    """A Range header that selects nothing of the file (answered 416)."""


def byte_range(value: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``bytes=`` range over `size` bytes; None to send the
    whole file (no header, another unit, several ranges or one we cannot read: RFC 9110
    section 14.2 lets a server ignore Range); `Unsatisfiable` when no byte is selected."""
    if value is None:
        return None
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_text, dash, last_text = spec.strip().partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(), last_text.strip()
    if not (first_text.isdigit() or first_text == "") or not (
        last_text.isdigit() or last_text == ""
    ):
        return None
    if first_text == "":  # suffix: the last N bytes
        if last_text == "":
            return None
        length = int(last_text)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None  # invalid: ignore the header
    if first >= size:
        raise Unsatisfiable
    return first, min(last, size - 1)


def host_allowed(value: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a `Host` header value names us (absent or empty: HTTP/1.0 phones, allowed).

    `allowed` None: any Host (tests and embedders); otherwise lower-case names, "*" for any.
    IP literals are always accepted (a DNS rebinding attack needs a name)."""
    if allowed is None or not value or "*" in allowed:
        return True
    return _host_allowed(value, allowed)


@functools.lru_cache(maxsize=4096)  # a storm sends the same few Host values again and again
def _host_allowed(value: str, allowed: frozenset[str]) -> bool:
    host = value.strip().lower()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in allowed


def strip_prefix(path: str, prefix: str) -> str:
    """The path relative to the prefix (without leading slashes); the root and the prefix are
    both served."""
    if prefix:
        head = "/" + prefix + "/"
        if path.startswith(head):
            return path[len(head) :]
    return path.lstrip("/")


@functools.lru_cache(maxsize=64)
def refusal(status: int) -> bytes:
    """A refusal's status line, Content-Type and Content-Length (Date, Connection and any
    header of the answer, such as a digest challenge, are the caller's); its short text body
    (`refusal_body`) follows the blank line."""
    lines = [status_line(status)]
    body = refusal_body(status)
    if body:
        lines.append(b"Content-Type: text/plain; charset=utf-8\r\n")
    if status not in NO_LENGTH:  # a keep-alive client must know where the answer ends
        lines.append(b"Content-Length: %d\r\n" % len(body))
    return b"".join(lines)


def header_lines(headers: tuple[tuple[str, str], ...]) -> bytes:
    """``Name: value\r\n`` for each header (values come from our own pipeline)."""
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in headers)


def refusal_body(status: int) -> bytes:
    """The text body of a refusal (empty for statuses that carry none)."""
    if status in NO_BODY:
        return b""
    return (REASONS.get(status, "Error") + "\n").encode("ascii")
