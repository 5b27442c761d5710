"""The upload side of TFTP (WRQ): `WriteTransfer` and the `UploadBudget` it draws on.

`WriteTransfer` is a `tftp_transfer.Transfer` (same timer, retry budget, silence watchdog
and completion future) that receives a file into memory, up to a size limit:
- it answers the request with OACK or ACK 0, ACKs once per window (RFC 7440) and once on a
  gap or duplicate, so the sender restarts from the right block;
- the peer must send its first DATA within `first_packet` seconds and then keep sending:
  `idle` seconds without an in-order DATA end the upload;
- every byte kept is first taken from an `UploadBudget` (per source and in total) and given
  back when the transfer ends, whatever the outcome;
- the final ACK goes only after `on_complete` (the handler) accepted the data; it raises
  `TftpError` to refuse. After success the transfer dallies, re-ACKing a repeated last
  DATA whose ACK was lost (RFC 1350).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from provisiond.frontends.tftp_options import (
    OP_DATA,
    OP_ERROR,
    ErrorCode,
    RttEstimator,
    TimerPolicy,
    TransferPacket,
    TransferParams,
    encode_ack,
    encode_oack,
    from_netascii,
)
from provisiond.frontends.tftp_transfer import Send, TftpStats, Transfer

UploadDone = Callable[[bytes], Awaitable[None]]


class UploadBudget:
    """The bytes uploads may buffer at once: per source address, and in total.

    A `WriteTransfer` takes each payload before keeping it and gives everything back when
    it ends, so many small uploads from one NAT fit while one source cannot pin more than
    `per_source` bytes, nor all sources together more than `total`.
    """

    def __init__(self, per_source: int, total: int) -> None:
        self.per_source = per_source
        self.total = total
        self.held = 0
        self._by_source: dict[str, int] = {}

    def take(self, source: str, size: int) -> bool:
        """Reserve `size` bytes for `source`; False (nothing reserved) when over a cap."""
        mine = self._by_source.get(source, 0)
        if mine + size > self.per_source or self.held + size > self.total:
            return False
        self._by_source[source] = mine + size
        self.held += size
        return True

    def give(self, source: str, size: int) -> None:
        """Release bytes taken for `source`."""
        if size <= 0:
            return
        left = self._by_source.get(source, 0) - size
        if left > 0:
            self._by_source[source] = left
        else:
            self._by_source.pop(source, None)
        self.held -= size

    def held_by(self, source: str) -> int:
        """Bytes `source` holds now."""
        return self._by_source.get(source, 0)


class WriteTransfer(Transfer):
    """Receive a file (WRQ) into memory, up to `limit` bytes.

    The final ACK is sent only after `on_complete` (the handler) accepted the data; it
    raises `TftpError` to refuse. With windowsize the receiver ACKs once per window, and
    once on a gap or duplicate so the sender restarts from the right block (RFC 7440).
    Every byte kept is first taken from `budget`; the sender must keep sending: `idle`
    seconds without an in-order DATA end the upload.
    """

    def __init__(
        self,
        send: Send,
        peer: str,
        params: TransferParams,
        limit: int,
        netascii: bool,
        on_complete: UploadDone,
        policy: TimerPolicy,
        stats: TftpStats,
        *,
        budget: UploadBudget | None = None,
        first_packet: float | None = None,
        idle: float | None = None,
    ) -> None:
        rtt = RttEstimator(policy, params.timeout)
        super().__init__(send, peer, rtt, policy, stats, first_packet=first_packet)
        self._budget = budget
        self._held = 0  # bytes taken from the budget
        self._idle = idle
        self._params = params
        self._limit = limit
        self._netascii = netascii
        self._on_complete = on_complete
        self._data = bytearray()
        self._received = 0  # highest block received in order
        self._in_window = 0
        self._reacked = False  # one extra ACK per stall, not one per stray packet
        self._acked_at: float | None = None
        self._finishing = False
        self._final_ack: bytes | None = None

    def start(self) -> None:
        """Accept the request: OACK, or ACK 0."""
        self._send_ack()

    def _current_ack(self) -> bytes:
        if self._received == 0 and self._params.oack:
            return encode_oack(self._params.oack)
        return encode_ack(self._received)

    def _send_ack(self) -> None:
        self._send(self._current_ack())
        self._acked_at = self._loop.time()
        self._arm()

    def on_packet(self, packet: TransferPacket) -> None:
        """DATA fills the buffer; an ERROR from the client ends the transfer."""
        if self.done.done():
            # Dallying after success: a repeated last DATA means our final ACK was lost.
            final = self._final_ack
            if (
                final is not None
                and packet.opcode == OP_DATA
                and packet.block == self._received & 0xFFFF
            ):
                self._send(final)
            return
        if packet.opcode == OP_ERROR:
            self.fail(ErrorCode.NOT_DEFINED, f"client error {packet.block}", notify=False)
        elif packet.opcode == OP_DATA:
            self._on_data(packet.block, packet.payload)

    def _on_data(self, wire: int, payload: bytes) -> None:
        if self._finishing:
            return  # the final ACK waits for the handler
        if (wire - self._received) & 0xFFFF != 1:
            if not self._reacked:  # duplicate or gap: say where we are, once per stall
                self._reacked = True
                self._send(self._current_ack())
            return
        if len(payload) > self._params.blksize:
            return
        if len(self._data) + len(payload) > self._limit:
            self.fail(ErrorCode.DISK_FULL, "upload exceeds the size limit")
            self._release()
            return
        if self._budget is not None:
            if not self._budget.take(self._peer, len(payload)):
                self.fail(ErrorCode.DISK_FULL, "server busy")
                self._release()
                return
            self._held += len(payload)
        self._accept(payload)

    def _accept(self, payload: bytes) -> None:
        if self._acked_at is not None and not self._reacked and self._retries == 0:
            self._rtt.sample(self._loop.time() - self._acked_at)
        self._acked_at = None
        self._data += payload
        self._received += 1
        self._reacked = False
        self._retries = 0
        self._watch(self._idle)
        self.stats.bytes_received += len(payload)
        if len(payload) < self._params.blksize:
            self._finishing = True
            self._disarm()
            self._watch(None)  # the handler is bounded by the transfer deadline
            self._run(self._complete())
            return
        self._in_window += 1
        if self._in_window >= self._params.windowsize:
            self._in_window = 0
            self._send_ack()
        else:
            self._arm()

    async def _complete(self) -> None:
        data = bytes(self._data)
        self._data = bytearray()
        await self._on_complete(from_netascii(data) if self._netascii else data)
        self._final_ack = encode_ack(self._received)
        self._send(self._final_ack)
        self._finish(None)

    def _on_timeout(self) -> None:
        self._in_window = 0
        self._send(self._current_ack())
        self.stats.retransmissions += 1
        self._arm()

    async def dally(self, seconds: float) -> None:
        """After success, keep answering a repeated last DATA for a while (RFC 1350)."""
        if self._final_ack is not None and seconds > 0:
            await asyncio.sleep(seconds)

    def _release(self) -> None:
        """Drop the buffer and give its bytes back to the budget."""
        self._data = bytearray()
        if self._budget is not None:
            self._budget.give(self._peer, self._held)
        self._held = 0

    def close(self) -> None:
        """Also give the buffered bytes back."""
        super().close()
        self._release()
