"""The phone-facing TFTP server on asyncio.

It translates TFTP into `PhoneRequest`/`PhoneResponse` and nothing more: which files exist
and who may upload is the `PhoneHandler`'s business. This module holds the server (its
limits, and the decision of each request); the wire format is in `tftp_options`, the
per-transfer state machines in `tftp_transfer` (downloads, refusals) and `tftp_write`
(uploads), the sockets, the descriptor gauge and content opening in `tftp_sockets`.

- The listening socket (`_ListenerProtocol`) only parses RRQ/WRQ; every transfer gets its
  own ephemeral socket on the same local host (`TransferEndpoint`), whose port is the
  server's transfer ID: a packet from any other (host, port) gets ERROR 5 and never
  reaches the transfer. A request repeated by a client whose transfer runs is ignored.
- RRQ: `handler.handle(GET path)`; the body, or the file streamed from disk, is sent. A
  refusal ("not found", "access violation") of a RRQ with options starts like a served file:
  OACK, and the error only after ACK 0 (`RefusalTransfer`), so no answer before a round trip
  tells a refused name from a served one, and the refusal's `on_proven` (the pipeline's
  deferred count of an unknown MAC) runs only for a source that proved its address. Without
  options the error goes at once and `on_proven` is never called: one forged UDP packet
  bans no one.
- WRQ: `handler.admit_upload(PUT path)` decides before anything is sent or buffered (a
  refusal: its TFTP error, never an OACK or ACK 0; a tsize above the cap or the source's
  upload budget: ERROR 3); the data is then handed to `handler.handle(PUT path, body)` and
  the last ACK waits for its answer.
- Limits, decided by the listener before any socket is opened: `max_transfers` at once,
  `max_per_source` per source address, and a headroom of `fd_headroom` file descriptors
  below RLIMIT_NOFILE that TFTP never takes (phone HTTP and the admin API keep theirs).
  Beyond the headroom the answer is "server busy". When the table or the source's share of
  it is full, the oldest *unproven* transfer (its peer has sent nothing yet: a forged
  request never gets further) that has waited at least `unproven_grace` seconds is evicted
  (one ERROR "server busy" to its claimed address, its socket closed) and the new request
  takes its slot; a transfer whose peer answered is never evicted, and when no unproven
  transfer is old enough the answer is "server busy". So a flood of forged RRQs holds the
  slots for `unproven_grace` seconds, not `first_packet_timeout`; it must send
  `max_transfers / unproven_grace` packets a second to keep everyone out.
- Timers and budgets: a transfer whose peer stays silent `first_packet_timeout` seconds is
  dropped, a client's timeout option fixes the timer at most at `max_timeout`, an upload
  idle `upload_idle_timeout` seconds is dropped, upload buffers are capped per source and
  in total, and every transfer has an overall deadline. Requests over 1 KiB are
  refused; bad packets get an ERROR reply or are dropped and never raise out of a protocol
  callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from dataclasses import dataclass
from typing import Any

from provisiond.domain.phone import Outcome, PhoneHandler, PhoneRequest, PhoneResponse
from provisiond.frontends.tftp_options import (
    MAX_BLKSIZE,
    ErrorCode,
    Mode,
    OptionLimits,
    TftpError,
    TftpRequest,
    TimerPolicy,
    TransferParams,
    encode_error,
    negotiate,
    parse_request,
)
from provisiond.frontends.tftp_sockets import (
    FdGauge,
    ListenerProtocol,
    PeerKey,
    Slot,
    TransferEndpoint,
    TransferTable,
    open_content,
)
from provisiond.frontends.tftp_transfer import (
    BlockSource,
    ReadTransfer,
    RefusalTransfer,
    TftpStats,
    Transfer,
)
from provisiond.frontends.tftp_write import UploadBudget, WriteTransfer

__all__ = ["TftpConfig", "TftpServer", "TftpStats"]

log = logging.getLogger(__name__)

_OUTCOME_ERRORS: dict[Outcome, tuple[ErrorCode, str]] = {
    Outcome.NOT_FOUND: (ErrorCode.FILE_NOT_FOUND, "File not found"),
    Outcome.FORBIDDEN: (ErrorCode.ACCESS_VIOLATION, "Access violation"),
    Outcome.UNAUTHORIZED: (ErrorCode.ACCESS_VIOLATION, "Access violation"),
    Outcome.TOO_LARGE: (ErrorCode.DISK_FULL, "Disk full or allocation exceeded"),
    Outcome.NO_SPACE: (ErrorCode.DISK_FULL, "Disk full or allocation exceeded"),
    Outcome.BAD_REQUEST: (ErrorCode.ILLEGAL_OPERATION, "Illegal TFTP operation"),
    Outcome.NOT_ALLOWED: (ErrorCode.ACCESS_VIOLATION, "Access violation"),
}
# Refusals answered after ACK 0 when the RRQ had options: every "not for you" the gate gives.
_PROVEN_REFUSALS = frozenset({Outcome.NOT_FOUND, Outcome.FORBIDDEN, Outcome.UNAUTHORIZED})
BUSY = "server busy"


@dataclass(frozen=True, slots=True)
class TftpConfig:
    """Settings of the TFTP frontend (the composition root fills them from settings)."""

    host: str = "127.0.0.1"
    port: int = 6969
    max_blksize: int = MAX_BLKSIZE  # larger requests are lowered to this
    max_windowsize: int = 64
    max_window_bytes: int = 1 << 20  # caps blksize * windowsize per transfer
    max_transfers: int = 10_000
    max_per_source: int | None = None  # concurrent transfers per source address (None: no cap)
    fd_headroom: int = 256  # file descriptors below RLIMIT_NOFILE that TFTP never takes
    unproven_grace: float = 0.2  # age before a transfer with a silent peer may be evicted
    max_timeout: float = 10.0  # longest retransmission timer a client's timeout option fixes
    first_packet_timeout: float = 8.0  # silence allowed before the peer's first ACK/DATA
    upload_idle_timeout: float = 10.0  # silence allowed between DATA packets of an upload
    upload_bytes_per_source: int = 4 << 20  # upload bytes one source may buffer at once
    upload_bytes_total: int = 64 << 20  # upload bytes all sources may buffer at once
    retries: int = 5
    initial_rto: float = 1.0
    min_rto: float = 0.05
    max_rto: float = 5.0
    rcvbuf: int = 4 << 20  # listener SO_RCVBUF: absorbs a boot storm's burst of RRQs
    transfer_deadline: float = 900.0  # seconds for a whole transfer, handler included
    read_chunk: int = 1 << 16  # bytes per file read off the event loop
    dally: float = 1.0  # seconds an upload keeps re-ACKing a repeated last block


class TftpServer:
    """A TFTP server that answers phones through a `PhoneHandler`."""

    def __init__(self, handler: PhoneHandler, config: TftpConfig) -> None:
        self._handler = handler
        self._config = config
        self.stats = TftpStats()
        self._policy = TimerPolicy(
            config.initial_rto, config.min_rto, config.max_rto, config.retries
        )
        self._limits = OptionLimits(
            config.max_blksize, config.max_windowsize, config.max_window_bytes, config.max_timeout
        )
        self._transport: asyncio.DatagramTransport | None = None
        self._sockname: tuple[Any, ...] | None = None
        self._family = socket.AF_INET
        self._active = TransferTable(config.unproven_grace)
        self._tasks: set[asyncio.Task[None]] = set()
        self.uploads = UploadBudget(config.upload_bytes_per_source, config.upload_bytes_total)
        self.fds = FdGauge()

    @property
    def sockname(self) -> tuple[str, int]:
        """The bound (host, port) of the listening socket; the real port when 0 was asked."""
        if self._sockname is None:
            raise RuntimeError("TftpServer is not started")
        return str(self._sockname[0]), int(self._sockname[1])

    async def start(self) -> None:
        """Bind the listening socket and start serving."""
        loop = asyncio.get_running_loop()
        sock = await self._bind()
        self._family = socket.AddressFamily(sock.family)
        self._sockname = sock.getsockname()
        self._limits = self._socket_limits(sock)
        transport, _ = await loop.create_datagram_endpoint(
            lambda: ListenerProtocol(self._on_request), sock=sock
        )
        self._transport = transport
        log.info("TFTP listening on %s port %d", *self.sockname)

    async def _bind(self) -> socket.socket:
        cfg = self._config
        infos = await asyncio.get_running_loop().getaddrinfo(
            cfg.host, cfg.port, type=socket.SOCK_DGRAM, flags=socket.AI_PASSIVE
        )
        family, _, _, _, addr = infos[0]
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # Before bind, so the buffer is in place for the first burst (best effort:
            # the kernel caps it at net.core.rmem_max).
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, cfg.rcvbuf)
            sock.bind(addr)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _socket_limits(self, sock: socket.socket) -> OptionLimits:
        """Never negotiate a block that the socket's send buffer cannot hold."""
        # Linux reports twice the usable size; keep room for headers and bookkeeping.
        sndbuf = sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) // 2 - 512
        cap = max(512, min(self._config.max_blksize, MAX_BLKSIZE, sndbuf))
        limits = self._limits
        return OptionLimits(cap, limits.max_windowsize, limits.max_window_bytes, limits.max_timeout)

    async def stop(self) -> None:
        """Close the listener and end every running transfer."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the listening socket -------------------------------------------------------------

    def _on_request(self, data: bytes, addr: tuple[Any, ...]) -> None:
        if addr[1] == 0:
            return  # no reply can reach port 0, and answering it helps spoofers
        key: PeerKey = (str(addr[0]), int(addr[1]))
        if key in self._active:
            return  # a retransmitted request: the running transfer's timer answers it
        try:
            request = parse_request(data)
            self._check_room(key[0])
        except TftpError as exc:
            self.stats.requests_rejected += 1
            if data[:2] != b"\x00\x05":  # never answer an ERROR with an ERROR
                self._reply(exc.packet(), addr)
            return
        slot = self._active.take(key)
        self.fds.opening()
        task = asyncio.get_running_loop().create_task(self._serve(request, addr, slot))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_room(self, host: str) -> None:
        """Make room for a transfer of `host`, or refuse it ("server busy").

        The file-descriptor headroom is a hard limit. A full table, or a full share of
        `host`, takes back the slot of its oldest unproven transfer past the grace.
        """
        cfg = self._config
        left = self.fds.left()
        if left is not None and left <= cfg.fd_headroom:
            log.warning("TFTP refuses a transfer: %d file descriptors left", left)
            raise TftpError(ErrorCode.NOT_DEFINED, BUSY)
        table = self._active
        source_full = cfg.max_per_source is not None and table.count(host) >= cfg.max_per_source
        if not source_full and len(table) < cfg.max_transfers:
            return
        victim = table.evictable(host if source_full else None)
        if victim is None:
            raise TftpError(ErrorCode.NOT_DEFINED, BUSY)
        log.debug("TFTP evicts the unproven transfer for %s", victim.key)
        table.evict(victim)
        self.stats.transfers_evicted += 1

    def _reply(self, packet: bytes, addr: tuple[Any, ...]) -> None:
        if self._transport is not None:
            self._transport.sendto(packet, addr)

    def _phone_request(
        self, request: TftpRequest, key: PeerKey, body: bytes | None = None
    ) -> PhoneRequest:
        if request.is_write:
            return PhoneRequest("tftp", "PUT", request.path, None, key[0], body=body)
        return PhoneRequest("tftp", "GET", request.path, None, key[0])

    async def _admit_upload(self, request: TftpRequest, key: PeerKey) -> tuple[TransferParams, int]:
        """Decide a WRQ before accepting any data: the pipeline's admission, then tsize."""
        try:
            decided = await self._handler.admit_upload(self._phone_request(request, key))
        except Exception:  # the handler is not ours to trust with the listener
            log.exception("TFTP admit_upload failed for %r", request.path)
            raise TftpError(ErrorCode.NOT_DEFINED, "internal error") from None
        if isinstance(decided, PhoneResponse):
            _raise_unless_ok(decided)
            raise TftpError(ErrorCode.ACCESS_VIOLATION, "Access violation")
        limit = decided
        params = negotiate(request.options, self._limits, is_write=True)
        if params.tsize is not None and params.tsize > limit:
            raise TftpError(ErrorCode.DISK_FULL, "upload exceeds the size limit")
        budget = self.uploads
        if params.tsize is not None and params.tsize > budget.per_source - budget.held_by(key[0]):
            raise TftpError(ErrorCode.DISK_FULL, BUSY)
        return params, limit

    # -- one transfer ---------------------------------------------------------------------

    async def _serve(self, request: TftpRequest, addr: tuple[Any, ...], slot: Slot) -> None:
        """Run one transfer to its end; count it; always release its socket and slot."""
        key: PeerKey = (str(addr[0]), int(addr[1]))
        endpoint = TransferEndpoint(addr, self.stats)
        endpoint.on_heard = lambda: self._active.prove(slot)
        transfer: list[Transfer] = []  # filled by _transfer, closed here whatever happens
        failure: str | None = "not started"
        try:
            async with asyncio.timeout(self._config.transfer_deadline):
                failure = await self._transfer(request, endpoint, slot, transfer)
        except TimeoutError:
            failure = "transfer deadline exceeded"
            endpoint.send(encode_error(ErrorCode.NOT_DEFINED, failure))
        except asyncio.CancelledError:
            endpoint.send(encode_error(ErrorCode.NOT_DEFINED, "server shutting down"))
            raise
        except Exception:  # a bug in one transfer must not leak its socket or slot
            log.exception("TFTP transfer of %r for %s failed", request.path, key)
            endpoint.send(encode_error(ErrorCode.NOT_DEFINED, "internal error"))
        finally:
            if failure is not None:
                self.stats.transfers_failed += 1
                log.debug("TFTP %r for %s failed: %s", request.path, key, failure)
            for started in transfer:
                started.close()
            endpoint.close()
            self.fds.closed()
            self._active.release(slot)

    async def _transfer(
        self,
        request: TftpRequest,
        endpoint: TransferEndpoint,
        slot: Slot,
        started: list[Transfer],
    ) -> str | None:
        """Open the socket, start the transfer and wait for it; None on success.

        A WRQ is decided first: a refusal comes from the listener, before any socket of
        the transfer exists, so nothing is acknowledged or buffered for it. Once started,
        the transfer is unproven (evictable) until its peer's first packet.
        """
        key = slot.key
        upload: tuple[TransferParams, int] | None = None
        if request.is_write:
            try:
                upload = await self._admit_upload(request, key)
            except TftpError as exc:  # refused, not a failed transfer: none started
                self.stats.requests_rejected += 1
                self._reply(exc.packet(), key)
                log.debug("TFTP WRQ %r from %s refused: %s", request.path, key, exc.message)
                return None
        self.stats.transfers_started += 1
        if not await self._open_endpoint(endpoint, key):
            return "no socket"
        try:
            transfer = await self._start(request, endpoint, key, upload)
        except TftpError as exc:
            endpoint.send(exc.packet())
            return exc.message
        started.append(transfer)
        self._active.wait(slot, lambda: transfer.fail(ErrorCode.NOT_DEFINED, BUSY))
        failure = await transfer.done
        if failure is None:
            self.stats.transfers_completed += 1
            if isinstance(transfer, WriteTransfer):
                await transfer.dally(self._config.dally)
        return failure

    async def _open_endpoint(self, endpoint: TransferEndpoint, addr: PeerKey) -> bool:
        """Bind the transfer's ephemeral socket next to the listener."""
        host = self.sockname[0]
        try:
            await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: endpoint, local_addr=(host, 0), family=self._family
            )
        except OSError as exc:  # e.g. out of file descriptors
            log.warning("TFTP cannot open a transfer socket: %s", exc)
            self._reply(encode_error(ErrorCode.NOT_DEFINED, "server busy"), addr)
            return False
        return True

    async def _start(
        self,
        request: TftpRequest,
        endpoint: TransferEndpoint,
        key: PeerKey,
        upload: tuple[TransferParams, int] | None,
    ) -> Transfer:
        transfer: ReadTransfer | WriteTransfer | RefusalTransfer
        if upload is None:
            transfer = await self._start_read(request, endpoint, key)
        else:
            params, limit = upload

            async def store(body: bytes) -> None:
                upload = self._phone_request(request, key, body=body)
                _raise_unless_ok(await self._call_handler(upload))

            netascii = request.mode is Mode.NETASCII
            cfg = self._config
            transfer = WriteTransfer(
                endpoint.send,
                key[0],
                params,
                limit,
                netascii,
                store,
                self._policy,
                self.stats,
                budget=self.uploads,
                first_packet=cfg.first_packet_timeout,
                idle=cfg.upload_idle_timeout,
            )
        endpoint.transfer = transfer
        transfer.start()
        return transfer

    async def _start_read(
        self, request: TftpRequest, endpoint: TransferEndpoint, key: PeerKey
    ) -> ReadTransfer | RefusalTransfer:
        response = await self._call_handler(self._phone_request(request, key))
        if not response.ok:
            if request.options and response.outcome in _PROVEN_REFUSALS:
                return self._refusal(request, key, endpoint, response)
            _raise_unless_ok(response)
        netascii = request.mode is Mode.NETASCII
        data, file, size = await open_content(response, netascii)
        try:
            params = negotiate(request.options, self._limits, is_write=False, size=size)
        except TftpError:
            if file is not None:
                file.close()
            raise
        # Read ahead what the window needs (twice), not a fixed 64 KiB: a half-open lockstep
        # session then pins a few KiB, not 64 (2,000 of them stay within a few MB).
        chunk = min(self._config.read_chunk, max(4096, 2 * params.blksize * params.windowsize))
        source = BlockSource(params.blksize, data=data, file=file, netascii=netascii, chunk=chunk)
        first = self._config.first_packet_timeout
        return ReadTransfer(
            endpoint.send,
            key[0],
            source,
            params,
            self._policy,
            self.stats,
            first_packet=first,
            on_proven=response.on_proven,  # the pipeline's sighting waits for the first ACK
        )

    def _refusal(
        self, request: TftpRequest, key: PeerKey, endpoint: TransferEndpoint, refused: PhoneResponse
    ) -> RefusalTransfer:
        """A refused RRQ with options starts as a served file would: OACK, then (after ACK 0)
        the error. tsize is declined: only a served file has a size to answer."""
        code, message = _OUTCOME_ERRORS[refused.outcome]
        params = negotiate(request.options, self._limits, is_write=False)
        if not params.oack:  # no option accepted: a served file would start with DATA 1
            raise TftpError(code, message)
        return RefusalTransfer(
            endpoint.send,
            key[0],
            params,
            encode_error(code, message),
            refused.on_proven,
            self._policy,
            self.stats,
            first_packet=self._config.first_packet_timeout,
        )

    async def _call_handler(self, request: PhoneRequest) -> PhoneResponse:
        try:
            return await self._handler.handle(request)
        except Exception:  # a handler bug must not take the transfer machinery down
            log.exception("TFTP handler failed for %s %r", request.method, request.path)
            raise TftpError(ErrorCode.NOT_DEFINED, "internal error") from None


def _raise_unless_ok(response: PhoneResponse) -> None:
    """Map a refusal to its TFTP error with the code's standard message.

    The handler's detail ("unknown device", "banned"...) stays in our logs: on the wire it
    would tell a MAC walker which MACs exist.
    """
    if response.ok:
        return
    code, message = _OUTCOME_ERRORS.get(response.outcome, (ErrorCode.NOT_DEFINED, "refused"))
    raise TftpError(code, message)
