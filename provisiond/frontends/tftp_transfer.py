"""One TFTP transfer: the shared machinery, and the download side.

This module holds `TftpStats` (the server's counters), `Transfer` (what every transfer
shares: retransmission timer, retry budget, silence watchdog, completion future), and the
download side: `BlockSource`, `ReadTransfer` and `RefusalTransfer`. The upload side
(`WriteTransfer`, `UploadBudget`) is in `tftp_write`. Transfers are callback-driven state
machines on the event loop: no task per packet, only a file read off the loop (or the
handler call of an upload). The socket of a transfer and its transfer-ID check live in
`tftp_sockets.TransferEndpoint`, which feeds them the peer's packets.

Retransmission (RFC 1350 + RFC 6298 + RFC 7440):
- the timer is adaptive per transfer (`RttEstimator`), or fixed by the timeout option;
- a timeout resends the current window, with exponential backoff, at most `retries` times;
- a duplicate ACK never triggers a resend (Sorcerer's Apprentice, RFC 1123 4.2.3.1);
- an ACK for a block inside the window means "received up to here": the next window
  starts after it (RFC 7440); an ACK below the window is stale and ignored;
- block numbers are 16 bits on the wire and roll over to 0; internally they are absolute.

Silence limits (a watchdog beside the retransmission timer): a transfer whose peer has not
answered within `first_packet` seconds (ACK 0/1 of a download, the first DATA of an upload)
is dropped, so a forged or abandoned request holds its socket for seconds, not for
`retries` rounds of a client-chosen timeout; an upload is also dropped after `idle` seconds
without DATA. The bytes an upload buffers are taken from an `UploadBudget` (per source and
in total) and given back when the transfer ends.

`RefusalTransfer` answers a refused RRQ that had options exactly as a served one starts
(OACK, retransmitted, waiting for ACK 0), then sends the error: the refusal reaches only a
source that proved its address, and only then is `on_proven` (the pipeline's deferred
count) called.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

from provisiond.frontends.tftp_options import (
    OP_ACK,
    OP_ERROR,
    ErrorCode,
    RttEstimator,
    TftpError,
    TimerPolicy,
    TransferPacket,
    TransferParams,
    encode_data,
    encode_error,
    encode_oack,
    to_netascii,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class TftpStats:
    """Counters of one server (plain ints, exported by the metrics layer)."""

    transfers_started: int = 0
    transfers_completed: int = 0
    transfers_failed: int = 0
    retransmissions: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    requests_rejected: int = 0  # malformed, busy or refused before a transfer started
    transfers_evicted: int = 0  # unproven transfers ended to make room (also failed)
    unknown_tid: int = 0  # packets from a wrong (host, port) on a transfer socket


Send = Callable[[bytes], None]  # sends one packet to the peer (the transfer's socket)


class Transfer:
    """What both directions share: the timer, retry budget and the completion future.

    `done` resolves to None on success or to a short failure reason. A transfer never
    sees a socket: it gets a `send` function and is fed the peer's packets (`on_packet`).
    """

    def __init__(
        self,
        send: Send,
        peer: str,
        rtt: RttEstimator,
        policy: TimerPolicy,
        stats: TftpStats,
        *,
        first_packet: float | None = None,
        on_proven: Callable[[], None] | None = None,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._send = send
        self._peer = peer
        # The pipeline's deferred work, run once the peer answers from its address.
        self._on_proven = on_proven
        self._rtt = rtt
        self._max_retries = policy.retries
        self._retries = 0
        self.stats = stats
        self.done: asyncio.Future[str | None] = self._loop.create_future()
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        # The watchdog: the peer must be heard within `_silence` seconds of `_heard_at`.
        self._silence = first_packet
        self._heard_at = self._loop.time()
        self._watchdog: asyncio.TimerHandle | None = None
        if first_packet is not None:
            self._watchdog = self._loop.call_at(self._heard_at + first_packet, self._check_silence)

    def _prove(self) -> None:
        """The peer answered a packet of ours from its address: run `on_proven`, once."""
        proven, self._on_proven = self._on_proven, None
        if proven is not None:
            try:
                proven()
            except Exception:  # the pipeline's callback must not break the socket
                log.exception("TFTP on_proven for %s failed", self._peer)

    def on_packet(self, packet: TransferPacket) -> None:
        """Handle one packet from the peer."""
        raise NotImplementedError

    def _on_timeout(self) -> None:
        raise NotImplementedError

    def _arm(self) -> None:
        """(Re)start the retransmission timer; one TimerHandle is reused across packets."""
        self._deadline = self._loop.time() + self._rtt.rto
        if self._timer is not None and self._timer.when() > self._deadline:
            self._timer.cancel()
            self._timer = None
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline, self._tick)

    def _disarm(self) -> None:
        self._deadline = None

    def _watch(self, silence: float | None) -> None:
        """From now on, fail when the peer stays silent `silence` seconds (None: no limit)."""
        self._silence = silence
        self._heard()

    def _heard(self) -> None:
        """The peer moved the transfer on: restart its silence limit."""
        self._heard_at = self._loop.time()
        if self._silence is not None and self._watchdog is None:
            self._watchdog = self._loop.call_at(self._heard_at + self._silence, self._check_silence)

    def _check_silence(self) -> None:
        self._watchdog = None
        if self._silence is None or self.done.done():
            return
        due = self._heard_at + self._silence
        if self._loop.time() < due:
            self._watchdog = self._loop.call_at(due, self._check_silence)
            return
        self.fail(ErrorCode.NOT_DEFINED, "timeout")

    def _tick(self) -> None:
        self._timer = None
        if self._deadline is None or self.done.done():
            return
        if self._loop.time() < self._deadline:
            self._timer = self._loop.call_at(self._deadline, self._tick)
            return
        self._retries += 1
        if self._retries > self._max_retries:
            self.fail(ErrorCode.NOT_DEFINED, "timeout")
            return
        self._rtt.backoff()
        self._on_timeout()

    def _run(self, coro: Awaitable[None]) -> None:
        """Run the one background step (file read, handler call) the transfer may need."""

        async def guarded() -> None:
            try:
                await coro
            except TftpError as exc:
                self.fail(exc.code, exc.message)
            except OSError as exc:
                log.warning("TFTP transfer with %s: %s", self._peer, exc)
                self.fail(ErrorCode.NOT_DEFINED, "read error")
            except Exception:  # never leave a task with an unretrieved exception
                log.exception("TFTP transfer with %s failed", self._peer)
                self.fail(ErrorCode.NOT_DEFINED, "internal error")

        self._task = self._loop.create_task(guarded())

    def fail(self, code: ErrorCode, message: str, *, notify: bool = True) -> None:
        """End the transfer unsuccessfully, telling the peer (best effort)."""
        if self.done.done():
            return
        if notify:
            self._send(encode_error(code, message))
        self._finish(message)

    def _finish(self, failure: str | None) -> None:
        self._disarm()
        if not self.done.done():
            self.done.set_result(failure)

    def close(self) -> None:
        """Stop timers and background work; the server closes the endpoint."""
        self._finish("closed")
        if self._timer is not None:
            self._timer.cancel()
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._task is not None and not self._task.done():
            self._task.cancel()


class BlockSource:
    """The blocks of one download: from memory, or read from a file in big chunks.

    File reads run in the default executor so a 50 MB image never blocks the loop. Only
    the unacknowledged window plus one read chunk is kept in memory. Offsets are in the
    transferred stream (after netascii conversion, which works chunk by chunk).
    """

    def __init__(
        self,
        blksize: int,
        *,
        data: bytes = b"",
        file: BinaryIO | None = None,
        netascii: bool = False,
        chunk: int = 1 << 16,
    ) -> None:
        self._bs = blksize
        self._buf = data
        self._start = 0  # stream offset of self._buf[0]
        self._keep_from = 0  # bytes before this offset are acknowledged
        self._file = file
        self._eof = file is None
        self._netascii = netascii
        self._chunk = max(chunk, blksize)

    def covers(self, block: int) -> bool:
        """True when block `block` (1-based) can be sent without reading more."""
        return self._eof or self._start + len(self._buf) >= block * self._bs

    @property
    def last_block(self) -> int | None:
        """The number of the final (short, possibly empty) block once the end is known."""
        return (self._start + len(self._buf)) // self._bs + 1 if self._eof else None

    def block(self, block: int) -> bytes:
        """The payload of block `block`, which must be covered and not yet released."""
        offset = (block - 1) * self._bs - self._start
        return self._buf[offset : offset + self._bs]

    def release(self, acked: int) -> None:
        """Blocks up to `acked` are acknowledged; their bytes go at the next read."""
        self._keep_from = acked * self._bs

    async def fill(self, block: int) -> None:
        """Read chunks until `block` is covered or the file ends."""
        loop = asyncio.get_running_loop()
        while not self.covers(block) and self._file is not None:
            chunk = await loop.run_in_executor(None, self._file.read, self._chunk)
            if not chunk:
                self._eof = True
                self.close()
                break
            if self._netascii:
                chunk = to_netascii(chunk)
            cut = max(0, self._keep_from - self._start)
            self._buf = self._buf[cut:] + chunk
            self._start += cut

    def close(self) -> None:
        """Close the file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None


class ReadTransfer(Transfer):
    """Send a file (RRQ): windows of `windowsize` blocks, each window acknowledged once."""

    def __init__(
        self,
        send: Send,
        peer: str,
        source: BlockSource,
        params: TransferParams,
        policy: TimerPolicy,
        stats: TftpStats,
        *,
        first_packet: float | None = None,
        on_proven: Callable[[], None] | None = None,
    ) -> None:
        rtt = RttEstimator(policy, params.timeout)
        super().__init__(
            send, peer, rtt, policy, stats, first_packet=first_packet, on_proven=on_proven
        )
        self._source = source
        self._window = params.windowsize
        self._oack = encode_oack(params.oack) if params.oack else None
        self._base = 0  # highest block acknowledged
        self._sent = 0  # highest block sent
        self._sent_at = 0.0
        self._resent = False  # Karn: no RTT sample from a retransmitted window

    def start(self) -> None:
        """Send the OACK (and wait for ACK 0) or the first window."""
        if self._oack is not None:
            self._send(self._oack)
            self._mark_sent()
        else:
            self._send_window()

    def on_packet(self, packet: TransferPacket) -> None:
        """ACKs move the window; an ERROR from the client ends the transfer."""
        if self.done.done():
            return
        if packet.opcode == OP_ERROR:
            self.fail(ErrorCode.NOT_DEFINED, f"client error {packet.block}", notify=False)
        elif packet.opcode == OP_ACK:
            self._on_ack(packet.block)

    def _on_ack(self, wire: int) -> None:
        if self._oack is not None:
            if wire == 0:  # the client accepted the OACK
                self._oack = None
                self._progress(sample=True)
                self._send_window()
            return
        delta = (wire - self._base) & 0xFFFF
        if delta == 0 or delta > self._sent - self._base:
            return  # duplicate or stale ACK: never resend on it (RFC 1123 4.2.3.1)
        self._progress(sample=self._base + delta == self._sent)
        self._base += delta
        self._source.release(self._base)
        if self._base == self._source.last_block:
            self._source.close()
            self._finish(None)
        else:
            self._send_window()

    def _progress(self, *, sample: bool) -> None:
        self._prove()  # an ACK of ours: the source is real (last seen, first-boot lock)
        if sample and not self._resent:
            self._rtt.sample(self._loop.time() - self._sent_at)
        self._retries = 0
        self._watch(None)  # the peer answered: from here the retry budget decides

    def _send_window(self) -> None:
        first = self._base + 1
        want = first + self._window - 1
        if not self._source.covers(want):
            # Nothing counts as in flight while the file is read: an ACK arriving meanwhile
            # must not start a second read; the next window starts after the base anyway.
            self._sent = self._base
            self._disarm()
            self._run(self._fill_and_send(want))
            return
        last = self._source.last_block
        end = want if last is None else min(want, last)
        self._send_blocks(first, end)
        self._sent = end
        self._mark_sent()

    async def _fill_and_send(self, block: int) -> None:
        await self._source.fill(block)
        if not self.done.done():
            self._send_window()

    def _send_blocks(self, first: int, end: int) -> None:
        stats, send, block_of = self.stats, self._send, self._source.block
        for block in range(first, end + 1):
            payload = block_of(block)
            send(encode_data(block, payload))
            stats.bytes_sent += len(payload)

    def _mark_sent(self) -> None:
        self._sent_at = self._loop.time()
        self._resent = False
        self._arm()

    def _on_timeout(self) -> None:
        if self._oack is not None:
            self._send(self._oack)
            self.stats.retransmissions += 1
        else:
            self._send_blocks(self._base + 1, self._sent)
            self.stats.retransmissions += self._sent - self._base
        self._resent = True
        self._arm()

    def close(self) -> None:
        """Also release the file."""
        super().close()
        self._source.close()


class RefusalTransfer(Transfer):
    """A refused RRQ that had options: OACK (as if served), ACK 0, then the error.

    The error goes only to a source that answered our OACK from its address; `on_proven`
    runs then, once. An ERROR from the client, or silence, ends it without either.
    """

    def __init__(
        self,
        send: Send,
        peer: str,
        params: TransferParams,
        error: bytes,
        on_proven: Callable[[], None] | None,
        policy: TimerPolicy,
        stats: TftpStats,
        *,
        first_packet: float | None = None,
    ) -> None:
        rtt = RttEstimator(policy, params.timeout)
        super().__init__(
            send, peer, rtt, policy, stats, first_packet=first_packet, on_proven=on_proven
        )
        self._oack = encode_oack(params.oack)
        self._error = error

    def start(self) -> None:
        """Send the OACK and wait for ACK 0."""
        self._send(self._oack)
        self._arm()

    def on_packet(self, packet: TransferPacket) -> None:
        """ACK 0 proves the source: send the error and count; a client ERROR just ends."""
        if self.done.done():
            return
        if packet.opcode == OP_ERROR:
            self._finish(f"client error {packet.block}")
        elif packet.opcode == OP_ACK and packet.block == 0:
            self._send(self._error)
            self._finish("refused")
            self._prove()

    def _on_timeout(self) -> None:
        self._send(self._oack)
        self.stats.retransmissions += 1
        self._arm()
