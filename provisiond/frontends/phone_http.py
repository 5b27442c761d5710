"""The phone-facing HTTP(S) frontend: an asyncio Protocol on httptools (llhttp) under uvloop.

It translates bytes into `PhoneRequest`s and `PhoneResponse`s back into bytes; the resolver
decides everything else. Chosen by measurement over aiohttp (docs/performance.md, "The phone
HTTP layer"): a boot storm is many tiny GETs, and aiohttp's request and response objects cost
more than our whole pipeline.

- GET and HEAD are answered as soon as their head is parsed; the resolver answers a rendered
  file without awaiting (`PhoneHandler.respond`), and the answer's bytes (status line aside,
  plus Date and Connection) are built once and kept with the answer in the render cache.
- Requests pipelined on one connection are answered in order; reading pauses when more than
  `PIPELINE` wait, or when the client does not read what we write.
- Uploads (PUT/POST) are admitted by the pipeline before `100 Continue` is sent; the body must
  arrive whole within the body timeout and stay under the smaller of the admitted size and
  the listener's ceiling, else 408/413 and the connection closes.
- Firmware (`PhoneResponse.file`) is streamed by `http_file` with Range and validators.
- Hostile networks (issue 12): a per-source connection cap (`SourceCounter`), a timeout for
  the first request head (and the TLS handshake), the idle timeout between requests and while
  a response is not being read, a ceiling on the head size, and a `Host` that is not ours
  (DNS rebinding) answered by a bare 421. Malformed requests get 400 and the connection closes;
  no per-request log line (phones are many: they are counted instead).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import ssl
from dataclasses import dataclass

from provisiond.domain.phone import PhoneHandler
from provisiond.frontends.http_common import BACKLOG, SourceCounter, request_logger
from provisiond.frontends.http_wire import DateLine
from provisiond.frontends.phone_conn import PhoneHttp


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Timeouts, caps and accepted Host names of a phone listener (settings.phone_limits).

    `allowed_hosts` None: any Host (tests and embedders); otherwise lower-case names, "*" for
    any; IP literals are always accepted (a rebinding attack needs a name).
    """

    header_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    max_connections_per_source: int = 256
    max_body: int = 1 << 20
    allowed_hosts: frozenset[str] | None = None
    max_head: int = 64 * 1024  # request line and headers


@dataclass(slots=True)
class PhoneSite:
    """What every connection of one listener shares."""

    handler: PhoneHandler
    prefix: str
    limits: HttpLimits
    counter: SourceCounter
    secure: bool
    logger: logging.Logger
    date: DateLine = dataclasses.field(default_factory=DateLine)
    connections: set[PhoneHttp] = dataclasses.field(default_factory=set)  # open ones


@dataclass
class PhoneListener:
    """A listening phone HTTP(S) socket."""

    server: asyncio.Server
    site: PhoneSite
    name: str

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        """Stop accepting, and close every connection (an answer being written is cut)."""
        self.server.close()
        for connection in list(self.site.connections):
            connection.abort()
        await self.server.wait_closed()


async def start_phone_listener(
    handler: PhoneHandler,
    host: str,
    port: int,
    *,
    counter: SourceCounter,
    limits: HttpLimits | None = None,
    prefix: str = "",
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> PhoneListener:
    """Serve `handler` on host:port with `limits` (defaults: no Host check). `counter` is the
    per-source connection cap, shared by the listeners of a process."""
    limits = limits or HttpLimits()
    name = "phone HTTPS" if tls is not None else "phone HTTP"
    site = PhoneSite(
        handler=handler,
        prefix=prefix.strip("/"),
        limits=limits,
        counter=counter,
        secure=tls is not None,
        logger=request_logger(name),
    )
    loop = asyncio.get_running_loop()
    # Over TLS a connection reaches `PhoneHttp` (and its per-source count) once its handshake
    # is done; until then the handshake timeout (the head timeout) bounds it. Counting it
    # before, with loop.start_tls, lost a ClientHello now and then under uvloop.
    server = await loop.create_server(
        lambda: PhoneHttp(site),
        host,
        port,
        ssl=tls,
        ssl_handshake_timeout=limits.header_timeout if tls is not None else None,
        backlog=BACKLOG,
        reuse_address=True,
        reuse_port=reuse_port or None,
    )
    return PhoneListener(server, site, name)


__all__ = ["HttpLimits", "PhoneListener", "start_phone_listener"]
