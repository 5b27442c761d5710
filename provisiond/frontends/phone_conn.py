"""One phone HTTP(S) connection: an asyncio Protocol on httptools (llhttp).

See phone_http.py for what the listener promises; this is how a connection keeps it: requests
are parsed as bytes arrive, queued, and answered one at a time in order; one timer per
connection enforces the head, idle and body deadlines (a request only moves a float).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Awaitable, Coroutine
from typing import TYPE_CHECKING, Any, cast

import httptools

from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.frontends.http_common import LINGER_S, ClientFault, source_key
from provisiond.frontends.http_file import FileAnswer, FileSender, answer_file
from provisiond.frontends.http_wire import (
    BUSY,
    CONTINUE,
    header_lines,
    host_allowed,
    refusal,
    refusal_body,
)
from provisiond.frontends.phone_answer import (
    CLOSE,
    KEEP_10,
    OK_LINE,
    STATUS,
    prebuilt,
    unchanged,
    validators,
)
from provisiond.frontends.phone_exchange import METHODS, Exchange
from provisiond.frontends.tls import peer_macs

if TYPE_CHECKING:
    from provisiond.frontends.phone_http import PhoneSite

log = logging.getLogger("provisiond.frontends.phone_http")

ALLOW_ANY = b"Allow: GET, HEAD, PUT, POST\r\n"  # what the listener takes at all
ALLOW_READ = b"Allow: GET, HEAD\r\n"  # a name that takes no upload
PIPELINE = 32  # requests parsed ahead of their answers before reading pauses


class _Refuse(ClientFault):
    """Raised in a parser callback to stop parsing and answer `status`, then close."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status


class PhoneHttp(asyncio.Protocol):
    """One phone connection: parse, answer in order, enforce the limits.

    Requests are queued as they are parsed and answered one at a time; `_busy` is set while
    an answer is awaited (an upload, a stored file) or streamed (firmware). The connection
    ends after an answer that says `Connection: close`, or once the input is over (EOF,
    Upgrade, a malformed request) and every parsed request is answered.
    """

    __slots__ = (
        "_body_deadline",
        "_busy",
        "_cert_macs",
        "_current",
        "_deadline",
        "_fault_status",
        "_input_done",
        "_ip",
        "_key",
        "_last_sent",
        "_loop",
        "_message_bytes",
        "_parser",
        "_paused_reading",
        "_paused_writing",
        "_pumping",
        "_queue",
        "_sender",
        "_site",
        "_tasks",
        "_timer",
        "_transport",
    )

    def __init__(self, site: PhoneSite) -> None:
        self._site = site
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._key: str | None = None  # counted source; None: refused or gone
        self._ip = ""
        self._cert_macs: frozenset[str] = frozenset()
        self._current: Exchange | None = None  # the request being parsed
        self._queue: deque[Exchange] = deque()  # parsed, waiting for their turn
        self._busy = False  # an answer is being awaited or streamed
        self._paused_reading = False
        self._paused_writing = False
        self._sender: FileSender | None = None
        self._pumping = False  # the file is being written from `_send_file` itself
        self._message_bytes = 0  # bytes of the request in progress (head, body, trailers)
        self._input_done = False  # no more requests will be parsed
        self._last_sent = False  # an answer said `Connection: close`
        self._fault_status = 0  # a malformed request: answered after the queue, then close
        self._deadline: float | None = None  # when the connection is cut, if still waiting
        self._body_deadline = False  # the deadline is an upload's: answer 408
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # -- connection -----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        self._ip = str(peer[0]) if peer else ""
        key = source_key(self._ip) if peer else ""
        if not self._site.counter.acquire(key):  # over its source's share, or the total
            transport.write(BUSY)
            transport.close()
            return
        self._key = key
        self._site.connections.add(self)
        self._transport = transport
        if self._site.secure:
            self._cert_macs = peer_macs(transport)
        self._set_deadline(self._site.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is not None:
            self._site.counter.release(self._key)
            self._site.connections.discard(self)
            self._key = None
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._sender is not None:
            self._sender.close()
            self._sender = None
        for task in list(self._tasks):
            task.cancel()

    def abort(self) -> None:
        """Drop the connection now (the listener is closing)."""
        if self._transport is not None:
            self._transport.abort()

    def pause_writing(self) -> None:
        self._paused_writing = True
        if self._sender is not None:
            self._sender.paused = True
        self._pause_reading()  # a client that does not read gets no more answers queued

    def resume_writing(self) -> None:
        self._paused_writing = False
        if self._sender is not None:
            self._sender.paused = False
            # The phone read what we sent: a slow download is not a stalled one.
            self._set_deadline(self._site.limits.idle_timeout)
            self._sender.pump()
        elif not self._busy and len(self._queue) < PIPELINE:
            self._resume_reading()

    def data_received(self, data: bytes) -> None:
        if self._transport is None or self._input_done:
            return  # refused, or draining before the close
        # Bytes of the message in progress (reset when one completes): bounds what a request
        # can make us hold before its end, head, body and trailer fields alike.
        self._message_bytes += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._input_done = True  # Upgrade or CONNECT: answer what came, then close
        except httptools.HttpParserError as exc:
            cause = exc.__context__
            if isinstance(cause, _Refuse):
                self._fault(cause.status, cause)
            else:
                self._fault(400, exc)
            return
        current = self._current
        if current is not None:
            limits = self._site.limits
            if not current.head_done and self._message_bytes > limits.max_head:
                self._fault(431, _Refuse(431, "request head too large"))
                return
            # (twice the body: chunked framing of small chunks adds its size lines)
            if self._message_bytes > limits.max_head + 2 * max(current.body_limit, limits.max_body):
                self._fault(413, _Refuse(413, "request over its limits (trailer fields?)"))
                return
        if self._input_done:
            self._run()

    def eof_received(self) -> bool | None:
        self._input_done = True
        if not self._busy and not self._queue:
            return None  # nothing owed: close now
        return True  # keep the write side until the queued answers are out

    # -- parser callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._current = Exchange()

    def on_url(self, url: bytes) -> None:
        current = self._current
        assert current is not None
        current.add_url(url)
        if current.head_size > self._site.limits.max_head:
            raise _Refuse(431, "request head too large")

    def on_header(self, name: bytes, value: bytes) -> None:
        current = self._current
        assert current is not None
        current.add_header(name, value)
        if current.head_size > self._site.limits.max_head:
            raise _Refuse(431, "request head too large")

    def on_headers_complete(self) -> None:
        current = self._current
        assert current is not None
        parser = self._parser
        current.head_done = True
        current.method = parser.get_method().decode("ascii", "replace")
        version = parser.get_http_version()
        if version[:2] != "1.":
            raise _Refuse(505, "HTTP/1.x only")
        current.http10 = version == "1.0"
        current.keep_alive = parser.should_keep_alive()
        wrong = current.framing_error(current.http10)
        if wrong is not None:
            raise _Refuse(501 if "only" in wrong else 400, wrong)
        if not self._busy:
            # The head is in: the head and idle timeouts are over, and whatever follows (a
            # body on a GET, trailer fields) must be whole within the body timeout. (While an
            # answer is being streamed or awaited, its own deadline stands; `_run` sets this
            # one once it is done.)
            self._set_deadline(self._site.limits.body_timeout, body=True)
        if current.method in ("PUT", "POST"):
            current.body = []
            current.body_limit = self._site.limits.max_body
            self._enqueue(current)  # admitted in turn; its body keeps arriving meanwhile

    def on_body(self, chunk: bytes) -> None:
        current = self._current
        assert current is not None
        current.body_size += len(chunk)
        if current.body is None:
            if current.body_size > self._site.limits.max_body:
                raise _Refuse(413, "a body on a GET or HEAD over the ceiling")
            return  # a body on a GET or HEAD is read and ignored
        if current.body_size > current.body_limit:
            current.cut = True
            raise _Refuse(413, "upload body over its limit")
        current.body.append(chunk)

    def on_message_complete(self) -> None:
        current = self._current
        assert current is not None
        self._current = None
        self._message_bytes = 0
        current.complete = True
        if current.body is None:
            if self._busy or self._queue:
                self._enqueue(current)
                return
            self._deadline, self._body_deadline = None, False
            self._start(current)  # the usual case: nothing ahead of it, answered at once
            if not self._busy:
                self._run()
        elif current.waiter is not None and not current.waiter.done():
            current.waiter.set_result(None)

    # -- answering in order ---------------------------------------------------------------

    def _enqueue(self, exchange: Exchange) -> None:
        self._queue.append(exchange)
        if len(self._queue) >= PIPELINE:
            self._pause_reading()
        if not self._busy:
            self._run()

    def _run(self) -> None:
        """Answer queued requests in order until one must wait; then wait for the next
        request, or end the connection."""
        while self._queue and not self._busy and not self._last_sent:
            if self._transport is None:
                return
            self._start(self._queue.popleft())
        if self._busy or self._transport is None:
            return
        if self._fault_status and not self._last_sent:
            self._send_fault()
            return
        if self._last_sent or (self._input_done and self._current is None):
            self._end()
            return
        if not self._paused_writing and len(self._queue) < PIPELINE:
            self._resume_reading()
        current = self._current
        if current is not None and current.head_done:  # its body or trailers still to come
            self._set_deadline(self._site.limits.body_timeout, body=True)
        else:  # the next request's head
            self._set_deadline(self._site.limits.idle_timeout)

    def _start(self, exchange: Exchange) -> None:
        site = self._site
        if not host_allowed(exchange.authority(), site.limits.allowed_hosts):
            self._write(exchange, refusal(421), b"")  # no body: nothing for a rebinding page
            return
        if exchange.method not in METHODS:
            self._write(exchange, refusal(405) + ALLOW_ANY, refusal_body(405))
            return
        if exchange.expects_other and not exchange.http10:  # RFC 9110 section 10.1.1
            if exchange.body is not None and not exchange.complete:
                exchange.cut = True  # its body is not read: the connection ends
                self._input_done = True
            self._write(exchange, refusal(417), refusal_body(417))
            return
        request = exchange.phone_request(
            "https" if site.secure else "http", site.prefix, self._ip, self._cert_macs
        )
        if exchange.body is not None:
            self._begin(self._upload(exchange, request))
            return
        try:
            answer = site.handler.respond(request)
        except Exception:  # a server bug (a template that fails): 500, with its traceback
            log.exception("answering %s from %s failed", request.path, self._ip)
            self._server_error(exchange)
            return
        if isinstance(answer, PhoneResponse):
            self._answer(exchange, answer)
        else:
            self._begin(self._later(exchange, answer))

    def _begin(self, work: Coroutine[Any, Any, None]) -> None:
        self._busy = True
        task = self._loop.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # a server fault: logged with its traceback, the phone gets 500
            log.error("phone request from %s failed", self._ip, exc_info=error)
            if self._transport is not None:
                self._transport.write(refusal(500) + self._site.date() + CLOSE + refusal_body(500))
                self._transport.close()
            return
        if self._sender is None:
            self._busy = False
            self._run()

    def _server_error(self, exchange: Exchange) -> None:
        exchange.keep_alive = False  # what state the failure left behind is unknown: close
        self._write(exchange, refusal(500), refusal_body(500))

    async def _later(self, exchange: Exchange, answer: Awaitable[PhoneResponse]) -> None:
        self._answer(exchange, await answer)

    # -- writing --------------------------------------------------------------------------

    def _answer(self, exchange: Exchange, answer: PhoneResponse) -> None:
        if not answer.ok:
            status = STATUS.get(answer.outcome, 400)
            extra = header_lines(answer.headers) if answer.headers else b""
            if status == 405:  # RFC 9110 section 15.5.6: say what the name takes
                extra += ALLOW_READ
            self._write(exchange, refusal(status) + extra, refusal_body(status))
            return
        if answer.file is not None:
            self._send_file(exchange, answer)
            return
        if exchange.method in ("PUT", "POST"):
            line = b"HTTP/1.1 201 Created\r\n" if exchange.method == "PUT" else OK_LINE
            self._write(exchange, line + b"Content-Length: 0\r\n", b"")
            return
        headers, body = prebuilt(answer)
        if exchange.conditional and unchanged(exchange, answer):
            self._write(exchange, b"HTTP/1.1 304 Not Modified\r\n" + validators(answer), b"")
            return
        self._write(exchange, OK_LINE + headers, b"" if exchange.method == "HEAD" else body)

    def _tail(self, exchange: Exchange) -> bytes:
        """The Connection header and the blank line; notes when this is the last answer."""
        keep = (
            exchange.keep_alive and not exchange.cut and not (self._input_done and not self._queue)
        )
        if not keep:
            self._last_sent = True
            return CLOSE
        return KEEP_10 if exchange.http10 else b"\r\n"

    def _write(self, exchange: Exchange, head: bytes, body: bytes) -> None:
        """Send one answer (its head without Date and Connection)."""
        if self._transport is not None:
            if exchange.method == "HEAD":
                body = b""  # the head says what a GET would carry; nothing follows it
            self._transport.write(b"".join((head, self._site.date(), self._tail(exchange), body)))

    def _send_file(self, exchange: Exchange, answer: PhoneResponse) -> None:
        assert answer.file is not None
        planned: FileAnswer = answer_file(answer.file, answer.content_type, exchange.conditions())
        if planned.file is None:
            body = refusal_body(416) if planned.head.startswith(b"HTTP/1.1 416") else b""
            self._write(exchange, planned.head, body)
            return
        transport = self._transport
        assert transport is not None
        transport.write(planned.head + self._site.date() + self._tail(exchange))
        self._busy = True
        sender = FileSender(planned, transport, self._file_sent)
        sender.paused = self._paused_writing
        self._sender = sender
        # A reader that stops reading for the idle timeout is cut off (`resume_writing`
        # moves the deadline whenever it has read).
        self._set_deadline(self._site.limits.idle_timeout)
        self._pumping = True
        sender.pump()
        self._pumping = False

    def _file_sent(self, whole: bool) -> None:
        self._sender = None
        if not whole and self._transport is not None:  # the file shrank: our length was a lie
            self._transport.abort()
            return
        self._deadline = None
        self._busy = False
        if not self._pumping and not self._tasks:  # else `_run` or the task's end goes on
            self._run()

    def _end(self) -> None:
        """Close, draining first when the client may still be sending (a refused body)."""
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        self._input_done = True
        if self._current is None and not self._fault_status:
            transport.close()
            return
        self._resume_reading()  # read and drop: closing on unread bytes resets our answer
        if transport.can_write_eof():
            transport.write_eof()
        self._loop.call_later(min(LINGER_S, self._site.limits.body_timeout), transport.close)

    # -- uploads --------------------------------------------------------------------------

    async def _upload(self, exchange: Exchange, request: PhoneRequest) -> None:
        site = self._site
        self._pause_reading()  # nothing more of the body until the pipeline has decided
        decided = await site.handler.admit_upload(request)
        if exchange.cut or self._transport is None:
            return
        if isinstance(decided, PhoneResponse):
            self._refuse_body(exchange, decided)
            return
        exchange.body_limit = min(decided, site.limits.max_body)
        announced = exchange.content_length or 0
        if max(announced, exchange.body_size) > exchange.body_limit:
            self._refuse_body(exchange, PhoneResponse(Outcome.TOO_LARGE))
            return
        if not exchange.complete:
            if exchange.expects_continue and not exchange.http10:
                self._transport.write(CONTINUE)  # admitted: now the client may send
            exchange.waiter = self._loop.create_future()
            self._set_deadline(site.limits.body_timeout, body=True)
            self._resume_reading()
            await exchange.waiter
            self._body_deadline = False
            self._deadline = None
        if exchange.cut or self._transport is None:
            return
        body = b"".join(exchange.body or ())
        self._answer(exchange, await site.handler.handle(dataclasses.replace(request, body=body)))

    def _refuse_body(self, exchange: Exchange, answer: PhoneResponse) -> None:
        """Answer an upload whose body we will not read; the connection then ends."""
        if not exchange.complete:
            exchange.cut = True
            self._input_done = True
        self._answer(exchange, answer)

    # -- limits ---------------------------------------------------------------------------

    def _fault(self, status: int, exc: Exception) -> None:
        """A request we refuse to parse further: answer `status` once the requests before it
        are answered, then close."""
        self._site.logger.error("malformed request from %s", self._ip, exc_info=exc)
        self._input_done = True
        self._fault_status = status
        current = self._current
        if current is not None and current.waiter is not None and not current.waiter.done():
            current.cut = True  # an upload broke its limit while arriving: its task ends
            current.waiter.set_result(None)
        if not self._busy:
            self._run()

    def _send_fault(self) -> None:
        status = self._fault_status
        transport = self._transport
        assert transport is not None
        self._last_sent = True
        transport.write(refusal(status) + self._site.date() + CLOSE + refusal_body(status))
        self._end()

    def _set_deadline(self, seconds: float, *, body: bool = False) -> None:
        self._deadline = self._loop.time() + seconds
        self._body_deadline = body
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._on_timer)

    def _on_timer(self) -> None:
        """One timer per connection, re-armed lazily: a request only moves `_deadline`."""
        self._timer = None
        deadline, transport = self._deadline, self._transport
        if deadline is None or transport is None:
            return
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            return
        self._deadline = None
        if self._body_deadline:  # an admitted upload whose body stopped coming
            for task in list(self._tasks):
                task.cancel()
            transport.write(refusal(408) + self._site.date() + CLOSE + refusal_body(408))
            transport.close()
            return
        transport.abort()  # nothing owed to a silent or stalled peer; never wait on it

    def _pause_reading(self) -> None:
        if not self._paused_reading and self._transport is not None:
            self._paused_reading = True
            self._transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._paused_reading and self._transport is not None:
            self._paused_reading = False
            self._transport.resume_reading()
