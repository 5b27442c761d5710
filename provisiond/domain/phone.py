"""The transport-neutral phone request and response.

Every phone-facing frontend (HTTP, HTTPS, TFTP) translates its wire format into a
`PhoneRequest`, hands it to one `PhoneHandler`, and translates the `PhoneResponse` back.
Block sizes, retries and headers never reach the handler; the handler never sees a socket.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

Protocol_ = Literal["http", "https", "tftp"]
Method = Literal["GET", "HEAD", "PUT", "POST"]


class Outcome(enum.Enum):
    """Why a response was given; used for counters, logs and the TFTP error code."""

    OK = "ok"
    NOT_FOUND = "not_found"  # unknown path or unknown MAC
    FORBIDDEN = "forbidden"  # policy refused (ban, network, consistency)
    UNAUTHORIZED = "unauthorized"  # credentials needed or wrong
    TOO_LARGE = "too_large"  # upload over the cap
    BAD_REQUEST = "bad_request"  # malformed path
    NOT_ALLOWED = "not_allowed"  # an upload to a name that takes none (HTTP 405)
    NOT_MODIFIED = "not_modified"
    NO_SPACE = "no_space"  # an upload the data directory could not take (HTTP 507)


@dataclass(slots=True, unsafe_hash=True)  # not frozen: built per request, frozen costs 1 us
class PhoneRequest:
    """One request from a phone, whatever the transport. Treat as immutable (hashed: the
    resolver keys admitted uploads by it; change one with `dataclasses.replace`).

    `path` is the decoded path without the configured prefix and without a leading slash
    (e.g. ``"001565aabbcc.cfg"``). `body` is set for uploads (HTTP PUT/POST, TFTP WRQ).
    `target` is the raw HTTP request target (digest authentication signs it);
    `client_cert_macs` the MACs named by a verified HTTPS client certificate.
    """

    protocol: Protocol_
    method: Method
    path: str
    user_agent: str | None
    client_ip: str
    body: bytes | None = None
    headers: tuple[tuple[str, str], ...] = ()
    target: str = ""
    client_cert_macs: frozenset[str] = frozenset()

    def header(self, name: str) -> str | None:
        """The first value of a header (names are matched lower-case)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key == wanted), None)


@dataclass(frozen=True, slots=True)
class PhoneResponse:
    """The answer to a `PhoneRequest`.

    Exactly one of `body` and `file` carries the content on success: `body` for rendered
    configuration files, `file` for firmware images that are streamed from disk.
    """

    outcome: Outcome
    body: bytes = b""
    file: Path | None = None
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: datetime | None = None
    detail: str = ""
    headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    vendor: str | None = None  # whose file it is, when known (for counters)
    # For a refusal over a transport whose source address is unproven (TFTP: one forged UDP
    # packet): what the pipeline would count against the source (a miss, a sighting). The
    # frontend calls it once the source has answered a packet of ours (RFC 2347 OACK -> ACK),
    # and never otherwise, so forged packets ban no one. None: already counted, or nothing.
    on_proven: Callable[[], None] | None = field(default=None, compare=False, repr=False)
    # Encodings of this answer, built by a frontend on first use ("http": its head and body
    # bytes); a cached answer keeps them, so a storm pays for them once per file.
    wire: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the phone gets content."""
        return self.outcome is Outcome.OK


class PhoneHandler(Protocol):
    """The single pipeline every phone-facing frontend calls."""

    async def handle(self, request: PhoneRequest) -> PhoneResponse:
        """Answer one phone request (GET/HEAD for files, PUT/POST for uploads)."""
        ...

    def respond(self, request: PhoneRequest) -> PhoneResponse | Awaitable[PhoneResponse]:
        """`handle`, answered at once when no I/O is needed (every rendered file, firmware,
        every refusal): a frontend then pays for no task. Else what to await."""
        ...

    async def admit_upload(self, request: PhoneRequest) -> PhoneResponse | int:
        """Decide an upload before any of its body is accepted (HTTP before reading the body,
        TFTP before answering the WRQ): the refusal to send, or the most bytes that may come.

        The same decisions as `handle` (path, ban, site, policy, device identity).
        """
        ...
