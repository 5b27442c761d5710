"""The bytes of a phone answer: status, the prebuilt head and body of a rendered file, 304s.

A rendered file's head (everything but the status line, Date and Connection) and body are
built once per answer and kept in `PhoneResponse.wire`: the render cache keeps the answer, so a
storm pays for them once per file.
"""

from __future__ import annotations

from typing import cast

from provisiond.domain.phone import Outcome, PhoneResponse
from provisiond.frontends.http_wire import http_date, not_modified
from provisiond.frontends.phone_exchange import Exchange

STATUS = {
    Outcome.NOT_FOUND: 404,
    Outcome.FORBIDDEN: 403,
    Outcome.UNAUTHORIZED: 401,
    Outcome.TOO_LARGE: 413,
    Outcome.BAD_REQUEST: 400,
    Outcome.NOT_ALLOWED: 405,
    Outcome.NOT_MODIFIED: 304,
    Outcome.NO_SPACE: 507,
}
OK_LINE = b"HTTP/1.1 200 OK\r\n"
CLOSE = b"Connection: close\r\n\r\n"
KEEP_10 = b"Connection: keep-alive\r\n\r\n"  # an HTTP/1.0 client that asked to keep it
_WIRE = "http"  # this frontend's entry in PhoneResponse.wire


def prebuilt(answer: PhoneResponse) -> tuple[bytes, bytes]:
    """(headers after the status line and Date, body) of a successful rendered file, built
    once per answer: the render cache keeps the answer, and with it these bytes."""
    wire = answer.wire.get(_WIRE)
    if wire is None:
        lines = [
            f"Content-Type: {answer.content_type}\r\n",
            f"Content-Length: {len(answer.body)}\r\n",
        ]
        lines += [f"{name}: {value}\r\n" for name, value in answer.headers]
        if answer.etag:
            lines.append(f"ETag: {answer.etag}\r\n")
        if answer.last_modified is not None:
            lines.append(f"Last-Modified: {http_date(answer.last_modified)}\r\n")
        lines.append("Cache-Control: no-cache\r\n")
        wire = ("".join(lines).encode("latin-1"), answer.body)
        answer.wire[_WIRE] = wire
    return cast(tuple[bytes, bytes], wire)


def unchanged(exchange: Exchange, answer: PhoneResponse) -> bool:
    return not_modified(
        answer.etag, answer.last_modified, exchange.if_none_match, exchange.if_modified_since
    )


def validators(answer: PhoneResponse) -> bytes:
    lines = b""
    if answer.etag:
        lines += f"ETag: {answer.etag}\r\n".encode("latin-1")
    if answer.last_modified is not None:
        lines += f"Last-Modified: {http_date(answer.last_modified)}\r\n".encode("ascii")
    return lines + b"Cache-Control: no-cache\r\n"
