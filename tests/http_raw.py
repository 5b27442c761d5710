"""Raw HTTP/1.1 over a blocking socket, for wire conformance tests.

Client libraries hide exactly what those tests must see: how many bytes a response really
occupies (so pipelined answers can be told apart), interim `100 Continue` lines, whether the
server closed the connection, and requests no library will send (a smuggling head, a NUL in
the target). Here a test writes the bytes itself and reads responses back strictly: a response
must start where the previous one ended, its body is framed by Content-Length or chunked
coding (or by the close, as RFC 9112 section 6.3 allows), and every read has a deadline.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NO_BODY_STATUSES = frozenset({204, 304})
MAX_HEAD = 1 << 20  # a response head larger than this is a server bug, not something to wait on


@dataclass(frozen=True)
class Response:
    """One parsed response: status line, header fields in order, decoded body."""

    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    framing: str  # "length", "chunked", "close" or "none" (HEAD, 1xx, 204, 304)

    def header(self, name: str) -> str | None:
        """The first value of `name` (case-insensitive), or None."""
        values = self.values(name)
        return values[0] if values else None

    def values(self, name: str) -> list[str]:
        """Every value of `name` (case-insensitive), in order."""
        wanted = name.lower()
        return [value for key, value in self.headers if key.lower() == wanted]

    def tokens(self, name: str) -> set[str]:
        """The comma-separated, lower-cased tokens of every `name` field (e.g. Connection)."""
        return {t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()}


def request(
    method: str,
    target: str,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    host: str | None = "127.0.0.1",
) -> bytes:
    """The bytes of one request; `host` None sends no Host field. Content-Length is added for a
    body unless `headers` frame it themselves (Content-Length or Transfer-Encoding)."""
    lines = [f"{method} {target} {version}"]
    if host is not None:
        lines.append(f"Host: {host}")
    lines.extend(f"{name}: {value}" for name, value in headers)
    framed = {name.lower() for name, _ in headers} & {"content-length", "transfer-encoding"}
    if body and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(parts: Iterable[bytes]) -> bytes:
    """`parts` in chunked transfer coding (RFC 9112 section 7.1), with the last chunk."""
    out = b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in parts if part)
    return out + b"0\r\n\r\n"


class Closed(Exception):
    """The server closed the connection before a whole response arrived."""


class RawClient:
    """One TCP connection to a server; every read waits at most `timeout` seconds."""

    def __init__(
        self, port: int, *, host: str = "127.0.0.1", source: str = "", timeout: float = 10.0
    ) -> None:
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0)
        )
        self.buffer = bytearray()
        self.eof = False

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close our side (idempotent)."""
        self.sock.close()

    def send(self, data: bytes) -> None:
        """Write all of `data` (one send call where the kernel allows: pipelining tests),
        within `timeout` (a read may have left a shorter one on the socket)."""
        self.sock.settimeout(self.timeout)
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> bool:
        """Read more into the buffer; False at EOF or reset. Raises TimeoutError at `deadline`."""
        if self.eof:
            return False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("no answer from the server before the deadline")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        except TimeoutError as exc:  # socket.timeout
            raise TimeoutError("no answer from the server before the deadline") from exc
        if not data:
            self.eof = True
            return False
        self.buffer += data
        return True

    def _take_until(self, marker: bytes, deadline: float, limit: int = MAX_HEAD) -> bytes:
        while (end := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit:
                raise AssertionError(f"no {marker!r} within {limit} bytes")
            if not self._fill(deadline):
                raise Closed(bytes(self.buffer[:200]))
        out = bytes(self.buffer[:end])
        del self.buffer[: end + len(marker)]
        return out

    def _take(self, size: int, deadline: float) -> bytes:
        while len(self.buffer) < size:
            if not self._fill(deadline):
                raise Closed(f"{len(self.buffer)} of {size} body bytes before the close")
        out = bytes(self.buffer[:size])
        del self.buffer[:size]
        return out

    def read_response(self, *, head: bool = False) -> Response:
        """The next response (interim 1xx ones included); `head`: the request was HEAD, so a
        Content-Length describes a body that is not sent."""
        deadline = time.monotonic() + self.timeout
        raw = self._take_until(b"\r\n\r\n", deadline)
        lines = raw.decode("latin-1").split("\r\n")
        version, _, rest = lines[0].partition(" ")
        code, _, reason = rest.partition(" ")
        assert re.fullmatch(r"HTTP/\d\.\d", version), f"not a status line: {lines[0]!r}"
        assert re.fullmatch(r"\d{3}", code), f"not a status line: {lines[0]!r}"
        status = int(code)
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(":")
            assert colon, f"no colon in header line {line!r}"
            assert name == name.strip(), f"bad field name in {line!r}"
            headers.append((name, value.strip(" \t")))
        response = Response(version, status, reason, tuple(headers), b"", "none")
        if head or status < 200 or status in NO_BODY_STATUSES:
            return response
        if "chunked" in response.tokens("Transfer-Encoding"):
            return _with(response, self._chunked_body(deadline), "chunked")
        lengths = response.values("Content-Length")
        if lengths:
            assert len(set(lengths)) == 1, f"conflicting Content-Length {lengths}"
            return _with(response, self._take(int(lengths[0]), deadline), "length")
        while self._fill(deadline):
            pass
        body = bytes(self.buffer)
        self.buffer.clear()
        return _with(response, body, "close")

    def _chunked_body(self, deadline: float) -> bytes:
        parts: list[bytes] = []
        for _ in range(1_000_000):
            size_line = self._take_until(b"\r\n", deadline, 1024)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while self._take_until(b"\r\n", deadline, 8192):  # trailers, then the blank line
                    pass
                return b"".join(parts)
            parts.append(self._take(size, deadline))
            assert self._take(2, deadline) == b"\r\n", "chunk data not followed by CRLF"
        raise AssertionError("more than a million chunks")

    def wait_closed(self, within: float) -> bytes:
        """Wait until the server closes (EOF or reset); what it sent meanwhile. Raises
        AssertionError when the connection is still open after `within` seconds."""
        deadline = time.monotonic() + within
        try:
            while self._fill(deadline):
                pass
        except TimeoutError as exc:
            raise AssertionError(f"the server kept the connection open {within} s") from exc
        rest = bytes(self.buffer)
        self.buffer.clear()
        return rest

    def is_open(self, within: float = 0.3) -> bool:
        """Whether the connection is still open and silent after `within` seconds (bytes the
        server sends meanwhile are kept for the next read)."""
        try:
            self.wait_closed(within)
        except AssertionError:
            return True
        return False


def _with(response: Response, body: bytes, framing: str) -> Response:
    return Response(
        response.version, response.status, response.reason, response.headers, body, framing
    )


def exchange(port: int, data: bytes, *, head: bool = False, timeout: float = 10.0) -> Response:
    """Send `data` on a fresh connection and read one response."""
    with RawClient(port, timeout=timeout) as client:
        client.send(data)
        return client.read_response(head=head)
