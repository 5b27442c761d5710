"""HTTP details shared by the phone and admin listeners."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import cast

import httptools
from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler, Middleware

log = logging.getLogger(__name__)

ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def make_expect_handler(refuse: Callable[[], web.StreamResponse]) -> ExpectHandler:
    """`Expect: 100-continue` as aiohttp does it, and `refuse()` (a 417) for anything else.

    aiohttp's own handler echoes the header value in its 417 text, and a value that is not
    UTF-8 then fails to encode: a 500. We never echo it; the admin side answers in JSON.
    (The phone listener is not aiohttp: phone_conn.py sends its 100 once an upload is
    admitted.)
    """

    async def expect_handler(request: web.Request) -> web.StreamResponse | None:
        if request.version != HttpVersion11:
            return None
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the body has not started yet
            return None
        return refuse()  # returned, not raised: aiohttp then answers with it directly

    return expect_handler


# -- connection limits of the admin listener (aiohttp) --------------------------------------------
#
# aiohttp bounds an idle keep-alive connection (`keepalive_timeout`, which also closes a
# connection whose next request head is still incomplete when it fires) but has no separate
# limit for the first request's head and none per source. `GuardedSite` listens like
# `web.TCPSite` and puts a thin protocol in front of aiohttp's: it refuses a connection over
# the per-source cap with a bare 503 before aiohttp sees it, and aborts a connection whose
# first request head is not complete within the header timeout (TLS: the handshake has the
# same bound). Later heads on a kept-alive connection are bounded by the idle timeout.

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
_HEAD_ENDS = (b"\r\n\r\n", b"\n\n")


@functools.lru_cache(maxsize=65536)  # per connection: a storm's sources connect again and again
def source_key(address: str) -> str:
    """What the per-source cap counts: an IPv4 address, or the /64 of an IPv6 address (one
    host owns a whole /64, so counting its addresses one by one would cap nothing)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


@dataclass
class SourceCounter:
    """Open connections per source, and in all, across the listeners of one process.

    `total_cap` bounds the connections of every source together: many sources each under
    `cap` (a /24 of attackers, 250 connections each) must not take every file descriptor
    of the process, and TFTP, the database and firmware files with them.
    """

    cap: int
    label: str = "phone HTTP"  # names the listeners in the log
    total_cap: int | None = None
    open: dict[str, int] = field(default_factory=dict)
    refused: int = 0  # connections refused over a cap, since start
    total: int = 0  # connections open now
    _warned: set[str] = field(default_factory=set)
    _warned_total_at: float = -1e9

    def acquire(self, key: str) -> bool:
        """Count a new connection from `key`, or False when the source or all are at a cap."""
        count = self.open.get(key, 0)
        if count >= self.cap:
            self.refused += 1
            if key not in self._warned and len(self._warned) < 1000:
                self._warned.add(key)
                log.warning("%s: %s holds %d connections, refusing more", self.label, key, count)
            return False
        if self.total_cap is not None and self.total >= self.total_cap:
            self.refused += 1
            now = time.monotonic()
            if now - self._warned_total_at > CLIENT_FAULT_INTERVAL_S:
                self._warned_total_at = now
                log.warning("%s: %d connections open, refusing more", self.label, self.total)
            return False
        self.open[key] = count + 1
        self.total += 1
        return True

    def release(self, key: str) -> None:
        """Forget one connection of `key`."""
        count = self.open.get(key, 0) - 1
        if count > 0:
            self.open[key] = count
        else:
            self.open.pop(key, None)
            self._warned.discard(key)
        self.total -= 1

    @property
    def connections(self) -> int:
        """Connections open now."""
        return self.total


class _Guarded(asyncio.Protocol):
    """In front of one aiohttp connection: the per-source cap and the first head's timeout."""

    __slots__ = ("_counter", "_header_timeout", "_inner", "_key", "_tail", "_timer", "_transport")

    def __init__(
        self, inner: asyncio.Protocol, counter: SourceCounter, header_timeout: float
    ) -> None:
        self._inner = inner
        self._counter = counter
        self._header_timeout = header_timeout
        self._key: str | None = None  # None: refused (never handed to aiohttp)
        self._timer: asyncio.TimerHandle | None = None
        self._tail = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        key = source_key(str(peer[0])) if peer else ""
        if not self._counter.acquire(key):
            transport.write(_BUSY)
            transport.close()
            return
        self._key = key
        self._transport = transport
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._header_timeout, self._head_expired)
        self._inner.connection_made(transport)

    def _head_expired(self) -> None:
        self._timer = None
        if self._transport is not None:
            self._transport.abort()  # nothing to flush; never wait on a silent peer

    def data_received(self, data: bytes) -> None:
        if self._key is None:
            return
        if self._timer is not None:
            seen = self._tail + data
            if any(end in seen for end in _HEAD_ENDS):
                self._timer.cancel()
                self._timer = None
                self._tail = b""
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        if self._key is None:
            return None
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._counter.release(self._key)
        self._transport = None
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        if self._key is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._key is not None:
            self._inner.resume_writing()


# Connections the kernel completes before we accept them. aiohttp's 128 overflows when a boot
# storm (or a test's 500 connections) arrives at once: the kernel then drops the handshake's
# last ACK, the client believes it is connected, and we never see the connection (nor time it
# out). Capped by net.core.somaxconn (4096 on current kernels).
BACKLOG = 1024


class GuardedSite(web.BaseSite):
    """A TCP listener like `web.TCPSite`, each connection behind `_Guarded`."""

    __slots__ = ("_bound", "_counter", "_header_timeout", "_host", "_port", "_reuse_port")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        counter: SourceCounter,
        header_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=BACKLOG)
        self._host = host
        self._port = port
        self._counter = counter
        self._header_timeout = header_timeout
        self._reuse_port = reuse_port
        self._bound: tuple[str, int] | None = None

    @property
    def name(self) -> str:
        """The listener's URL (as aiohttp names sites)."""
        scheme = "https" if self._ssl_context else "http"
        host, port = self._bound or (self._host, self._port)
        return f"{scheme}://{host}:{port}"

    @property
    def port(self) -> int:
        """The bound port (useful after binding port 0)."""
        return self._bound[1] if self._bound else self._port

    async def start(self) -> None:
        """Bind and listen."""
        await super().start()
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        aiohttp_server = server
        counter, timeout = self._counter, self._header_timeout

        def factory() -> asyncio.Protocol:
            return _Guarded(aiohttp_server(), counter, timeout)

        tls = self._ssl_context
        self._server = await loop.create_server(
            factory,
            self._host,
            self._port,
            ssl=tls,
            ssl_handshake_timeout=timeout if tls is not None else None,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )
        sockname = self._server.sockets[0].getsockname()
        self._bound = (str(sockname[0]), int(sockname[1]))


# -- what a client can make the listeners log ------------------------------------------------
#
# aiohttp reports a request it could not parse (bad bytes in the request line, an oversized
# header...) and an exception a handler let through with a traceback each, on the logger the
# runner is given. A client causes the first kind at will, and the second when it drops its
# connection while a handler reads the body: one small packet, one traceback. Our listeners log
# through `request_logger`, whose filter turns a client's fault into one INFO line at most
# every `CLIENT_FAULT_INTERVAL_S` per kind of fault (and a count of those left out); anything
# else (a server bug) passes with its traceback.

CLIENT_FAULT_INTERVAL_S = 60.0


class ClientFault(Exception):
    """A request a listener refused to read further (over a size limit, say)."""


CLIENT_FAULTS: tuple[type[BaseException], ...] = (
    HttpProcessingError,  # the request could not be parsed: answered 400 by aiohttp
    httptools.HttpParserError,  # the same, on the phone listener
    ClientFault,
    ConnectionResetError,  # the client reset or closed the connection mid-request
    BrokenPipeError,
)


class ClientFaultFilter(logging.Filter):
    """Keeps a client's faults out of the log but for a rate-limited line without traceback."""

    def __init__(self, label: str, interval_s: float = CLIENT_FAULT_INTERVAL_S) -> None:
        super().__init__()
        self.label = label
        self.interval_s = interval_s
        self._last: dict[str, float] = {}  # kind of fault -> when it was last logged
        self._left_out: dict[str, int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a client's fault (after logging its line, when one is due)."""
        fault = record.exc_info[1] if record.exc_info else None
        if not isinstance(fault, CLIENT_FAULTS):
            return True
        kind = type(fault).__name__
        now = time.monotonic()
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._left_out[kind] = self._left_out.get(kind, 0) + 1
            return False
        self._last[kind] = now
        left_out = self._left_out.pop(kind, 0)
        more = ""
        if last is not None and left_out:
            more = f" ({left_out} more in the last {now - last:.0f} s)"
        text = f"{record.getMessage()}: {kind}: {_one_line(fault)}{more}"
        log.info("%s: client fault: %s", self.label, text)
        return False


def _one_line(fault: BaseException) -> str:
    """The fault's text on one short line of printable ASCII (it quotes what the client sent)."""
    text = " ".join(str(fault).split())[:200]
    return "".join(c if c.isascii() and c.isprintable() else ascii(c)[1:-1] for c in text)


def request_logger(label: str) -> logging.Logger:
    """The logger aiohttp reports a listener's request errors to (`provisiond.http.<label>`),
    behind a `ClientFaultFilter`."""
    logger = logging.getLogger("provisiond.http." + "_".join(label.lower().split()))
    if not any(isinstance(f, ClientFaultFilter) for f in logger.filters):
        logger.addFilter(ClientFaultFilter(label))
    return logger


# -- starting a listener -------------------------------------------------------------------

LINGER_S = 2.0  # after a refused or cut-off body: how long unread body bytes are drained


async def start_guarded_listener(
    app: web.Application,
    host: str,
    port: int,
    *,
    counter: SourceCounter,
    header_timeout: float,
    idle_timeout: float,
    body_timeout: float,
    name: str,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> tuple[web.AppRunner, GuardedSite]:
    """Serve `app` on host:port behind `GuardedSite`: the per-source cap (`counter`, shared by
    the listeners it is given to), the first head's and the TLS handshake's timeout, aiohttp's
    keep-alive timeout as the idle limit, and unread body bytes drained for at most
    min(LINGER_S, body_timeout) before closing. Request errors are logged through
    `request_logger(name)`. The caller cleans up the runner."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        keepalive_timeout=idle_timeout,
        lingering_time=min(LINGER_S, body_timeout),
        logger=request_logger(name),
        # No handler_cancellation (a task of its own for every request): a handler that
        # waits on a client's body bounds that wait itself (`body_deadline`, or the phone
        # upload's own timeout).
    )
    await runner.setup()
    site = GuardedSite(
        runner,
        host,
        port,
        counter=counter,
        header_timeout=header_timeout,
        ssl_context=tls,
        reuse_port=reuse_port,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site


class BodyTimeout(Exception):
    """A request body did not arrive whole within its deadline."""


def body_deadline(timeout: float, refuse: Callable[[int, str], web.StreamResponse]) -> Middleware:
    """A middleware that bounds how long a handler may wait for a request's body.

    If the body has not arrived whole `timeout` seconds after the handler started, reading
    it fails and the request is answered `refuse(408, detail)`; a body whose chunked framing
    is broken `refuse(400, detail)`; both close the connection. A client that drops the
    connection mid-body ends the request without a log line. Placed after the authentication
    middleware, it never waits on the body of a refused request (aiohttp drains that for
    `LINGER_S` at most, then closes).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.body_exists:
            return await handler(request)
        payload = request.content

        def expire() -> None:
            if not payload.is_eof():
                payload.set_exception(BodyTimeout())

        timer = asyncio.get_running_loop().call_later(timeout, expire)
        try:
            return await handler(request)
        except BodyTimeout:
            detail = f"the request body did not arrive within {timeout:g} s"
            return _closing(refuse(408, detail))
        except HttpProcessingError:
            return _closing(refuse(400, "the request body is malformed"))
        except ConnectionResetError:
            transport = request.transport
            if transport is not None and not transport.is_closing():
                raise  # not the client's connection
            return _closing(web.Response(status=400))  # the client left: nobody reads this
        finally:
            timer.cancel()

    return middleware


def _closing(response: web.StreamResponse) -> web.StreamResponse:
    response.force_close()
    return response
