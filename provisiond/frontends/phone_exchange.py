"""One HTTP request on a phone connection, as httptools hands it over, and its `PhoneRequest`.

The few headers the listener itself needs (Host, conditions, Range, Expect, Content-Length)
are picked out while the head is parsed; every header also goes to the pipeline as it came
(names lower-cased), for digest authentication and whatever a later check needs.
"""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import httptools

from provisiond.domain.phone import Method, PhoneRequest, Protocol_
from provisiond.frontends.http_file import Conditions
from provisiond.frontends.http_wire import strip_prefix


class Exchange:
    """A request being parsed or waiting for its answer."""

    # Defaults as class attributes, no __slots__: a request sets only the few it meets (a
    # storm's GET has two or three headers), and a new instance costs an empty dict.
    host: str | None = None
    user_agent: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None
    range: str | None = None
    if_range: str | None = None
    conditional = False  # any of the four above
    expects_continue = False
    expects_other = False  # an expectation we do not meet (417)
    content_length: int | None = None
    transfer_encoding: str | None = None  # every Transfer-Encoding field, joined
    method = ""
    http10 = False
    keep_alive = True
    head_done = False
    complete = False
    body: list[bytes] | None = None  # None: not an upload (a body is then ignored)
    body_size = 0
    body_limit = 0
    waiter: asyncio.Future[None] | None = None  # an upload waiting for its body
    cut = False  # refused mid-body: nothing more is answered on the connection
    head_size = 0  # request target and header fields, as received
    host_count = 0

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []

    def add_url(self, part: bytes) -> None:
        """A piece of the request target (httptools may split it)."""
        self.url += part
        self.head_size += len(part)

    def add_header(self, name: bytes, value: bytes) -> None:
        """One header line, complete."""
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers.append((key, text))
        self.head_size += len(name) + len(value) + 4
        if key == "host":
            self.host = text
            self.host_count += 1
        elif key == "user-agent":
            self.user_agent = text
        elif key == "if-none-match":
            self.if_none_match, self.conditional = text, True
        elif key == "if-modified-since":
            self.if_modified_since, self.conditional = text, True
        elif key == "range":
            self.range, self.conditional = text, True
        elif key == "if-range":
            self.if_range, self.conditional = text, True
        elif key == "expect":
            self.expects_continue = text.strip().lower() == "100-continue"
            self.expects_other = not self.expects_continue
        elif key == "content-length" and text.strip().isdigit():
            self.content_length = int(text)
        elif key == "transfer-encoding":
            te = self.transfer_encoding
            self.transfer_encoding = text if te is None else te + "," + text

    def framing_error(self, http10: bool) -> str | None:
        """Why the head must be refused with 400 (RFC 9112 sections 3.2 and 6.3), or None:
        an HTTP/1.1 request needs exactly one Host; a body's framing must end in chunked."""
        if self.host_count > 1 or (self.host_count == 0 and not http10):
            return "a request needs exactly one Host"
        te = self.transfer_encoding
        if te is None:
            return None
        if http10:
            return "Transfer-Encoding in an HTTP/1.0 request"  # RFC 9112 section 6.1
        codings = [c.strip().lower() for c in te.split(",")]
        if codings[-1] != "chunked":  # RFC 9112 section 6.3: the length is unknowable
            return "Transfer-Encoding must end in chunked"
        if codings != ["chunked"]:  # RFC 9112 section 6.1: 501 for a coding we do not decode
            return "only Transfer-Encoding: chunked is accepted"
        return None

    def authority(self) -> str | None:
        """The host to check: an absolute-form target's authority replaces Host (RFC 9112
        section 3.2.2)."""
        if self.url.startswith(b"/"):
            return self.host
        try:
            host = httptools.parse_url(self.url).host
        except httptools.HttpParserInvalidURLError:
            return self.host
        return host.decode("latin-1") if host else self.host

    def path(self) -> str:
        """The decoded path of the target, without query (origin or absolute form)."""
        raw = self.url
        if not raw.startswith(b"/"):
            try:
                raw = httptools.parse_url(raw).path or b"/"
            except httptools.HttpParserInvalidURLError:
                raw = b""
        raw = raw.partition(b"?")[0]
        text = raw.decode("latin-1")
        return unquote(text, errors="strict") if "%" in text else text

    def phone_request(
        self, protocol: Protocol_, prefix: str, ip: str, cert_macs: frozenset[str]
    ) -> PhoneRequest:
        """The transport-neutral request (without the body of an upload)."""
        try:
            path = strip_prefix(self.path(), prefix)
        except UnicodeDecodeError:
            path = "\x00"  # not UTF-8 once decoded: the pipeline refuses it as a bad path
        return PhoneRequest(
            protocol=protocol,
            method=self.method,  # type: ignore[arg-type]  # the listener checked it
            path=path,
            user_agent=self.user_agent,
            client_ip=ip,
            headers=tuple(self.headers),
            target=self.url.decode("latin-1"),
            client_cert_macs=cert_macs,
        )

    def conditions(self) -> Conditions:
        """What a file's answer depends on."""
        return Conditions(
            head_only=self.method == "HEAD",
            range=self.range,
            if_range=self.if_range,
            if_none_match=self.if_none_match,
            if_modified_since=self.if_modified_since,
        )


METHODS: frozenset[Method] = frozenset({"GET", "HEAD", "PUT", "POST"})
