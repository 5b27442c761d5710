"""The sockets of the TFTP server, and opening what a transfer sends.

- `ListenerProtocol`: the well-known port; hands every datagram to the server's callback
  and never raises into the event loop.
- `TransferEndpoint`: the ephemeral socket of one transfer, whose port is the server's
  transfer ID. Only the peer's (host, port) reaches the transfer (`tftp_transfer.Transfer`);
  a packet from any other gets ERROR 5 "Unknown transfer ID" (never in answer to an ERROR,
  nor to port 0). A bad packet fails the transfer, never the loop. The first packet from
  the peer calls `on_heard`: the peer received what we sent to its address, so the request
  was not forged.
- `FdGauge`: how many file descriptors the process may still open, so the server can keep
  a headroom below RLIMIT_NOFILE that TFTP never takes.
- `TransferTable`: the running transfers (one per peer (host, port)), counted per host, with
  the *unproven* ones (waiting for the peer's first packet) in age order, so a full table
  can take back the oldest half-open transfer instead of turning a real phone away.
- `open_content`: the body of a served `PhoneResponse` (netascii-converted) or its file,
  opened off the event loop, with the size to answer to tsize.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

from provisiond.domain.phone import PhoneResponse
from provisiond.frontends.tftp_options import (
    ErrorCode,
    TftpError,
    encode_error,
    parse_transfer_packet,
    to_netascii,
)
from provisiond.frontends.tftp_transfer import TftpStats, Transfer

log = logging.getLogger(__name__)

PeerKey = tuple[str, int]  # a transfer's peer: (host, port)

UNKNOWN_TID = encode_error(ErrorCode.UNKNOWN_TID, "Unknown transfer ID")


class FdGauge:
    """How many file descriptors the process may still open (RLIMIT_NOFILE minus open).

    Counting /proc/self/fd costs a directory listing, so a count is reused for a short while
    or a few dozen opens, adjusted by the transfer sockets opened and closed since.
    """

    RECOUNT_S = 0.1
    RECOUNT_OPENS = 32

    def __init__(self) -> None:
        self._dir = next((d for d in ("/proc/self/fd", "/dev/fd") if os.path.isdir(d)), None)
        self._counted_at = -1.0
        self._count = 0
        self._delta = 0  # transfer sockets opened minus closed since the count
        self._opens = 0

    def opening(self) -> None:
        """A transfer socket is about to be opened."""
        self._delta += 1
        self._opens += 1

    def closed(self) -> None:
        """A transfer socket was closed."""
        self._delta -= 1

    def open_now(self) -> int | None:
        """Open descriptors of the process (None when the platform cannot tell)."""
        if self._dir is None:
            return None
        now = time.monotonic()
        if now - self._counted_at > self.RECOUNT_S or self._opens >= self.RECOUNT_OPENS:
            try:
                self._count = len(os.listdir(self._dir))
            except OSError:
                return None
            self._counted_at, self._delta, self._opens = now, 0, 0
        return self._count + self._delta

    def left(self) -> int | None:
        """Descriptors that may still be opened, or None (no limit, or no way to count)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft == resource.RLIM_INFINITY:
            return None
        count = self.open_now()
        return None if count is None else soft - count


@dataclass(eq=False, slots=True)
class Slot:
    """One running transfer's place in a `TransferTable`."""

    key: PeerKey
    waiting_since: float | None = None  # when it began waiting for the peer's first packet
    proven: bool = False  # a packet from the peer reached the transfer's socket
    evict: Callable[[], None] | None = None  # ends the transfer when its slot is taken back


class TransferTable:
    """The running transfers: each peer (host, port) at most once, counted per host.

    A transfer is *unproven* from its first packet until the peer's first packet reaches its
    socket: a forged request (one UDP packet claiming any address) never gets further, since
    its answers go to an address that sends nothing back. Unproven transfers are kept in age
    order, globally and per host, so that `evictable` finds the oldest one in O(1). A slot is
    released once (`release` is idempotent and checks identity), so a peer that asks again
    after its transfer was evicted gets a fresh slot that the old transfer's cleanup leaves
    alone.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace  # an unproven transfer younger than this is never evicted
        self._slots: dict[PeerKey, Slot] = {}
        self._per_host: dict[str, int] = {}
        self._unproven: dict[PeerKey, Slot] = {}  # insertion order is age order
        self._unproven_by_host: dict[str, dict[PeerKey, Slot]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def __contains__(self, key: object) -> bool:
        return key in self._slots

    def count(self, host: str) -> int:
        """Transfers running for `host`."""
        return self._per_host.get(host, 0)

    def take(self, key: PeerKey) -> Slot:
        """A slot for a new transfer with `key` (not yet waiting for anything)."""
        slot = Slot(key)
        self._slots[key] = slot
        self._per_host[key[0]] = self._per_host.get(key[0], 0) + 1
        return slot

    def wait(self, slot: Slot, evict: Callable[[], None]) -> None:
        """The transfer sent its first packet and waits for the peer; `evict` ends it."""
        if slot.proven or self._slots.get(slot.key) is not slot:
            return
        slot.waiting_since = time.monotonic()
        slot.evict = evict
        self._unproven[slot.key] = slot
        self._unproven_by_host.setdefault(slot.key[0], {})[slot.key] = slot

    def prove(self, slot: Slot) -> None:
        """The peer answered from its address: the transfer is never evicted."""
        slot.proven = True
        slot.evict = None
        self._forget_unproven(slot)

    def evictable(self, host: str | None = None) -> Slot | None:
        """The oldest unproven transfer (of `host`, when given) older than the grace."""
        queue = self._unproven if host is None else self._unproven_by_host.get(host)
        if not queue:
            return None
        oldest = next(iter(queue.values()))
        since = oldest.waiting_since
        if since is None or time.monotonic() - since < self.grace:
            return None
        return oldest

    def evict(self, slot: Slot) -> None:
        """Release `slot` at once and end its transfer (its task cleans up after)."""
        evict, slot.evict = slot.evict, None
        self.release(slot)
        if evict is not None:
            evict()

    def release(self, slot: Slot) -> None:
        """The transfer ended (or was evicted); a second call does nothing."""
        self._forget_unproven(slot)
        if self._slots.get(slot.key) is not slot:
            return
        del self._slots[slot.key]
        host = slot.key[0]
        left = self._per_host.get(host, 0) - 1
        if left > 0:
            self._per_host[host] = left
        else:
            self._per_host.pop(host, None)

    def _forget_unproven(self, slot: Slot) -> None:
        if self._unproven.get(slot.key) is slot:
            del self._unproven[slot.key]
        mine = self._unproven_by_host.get(slot.key[0])
        if mine is not None and mine.get(slot.key) is slot:
            del mine[slot.key]
            if not mine:
                del self._unproven_by_host[slot.key[0]]


async def open_content(
    response: PhoneResponse, netascii: bool
) -> tuple[bytes, BinaryIO | None, int | None]:
    """The body (converted) or the opened file, and the size to answer to tsize.

    A file's netascii size is unknown without reading it all, so tsize is then declined.
    """
    if response.file is None:
        data = to_netascii(response.body) if netascii else response.body
        return data, None, len(data)
    loop = asyncio.get_running_loop()
    try:
        file = await loop.run_in_executor(None, _open_binary, response.file)
    except FileNotFoundError:
        raise TftpError(ErrorCode.FILE_NOT_FOUND, "File not found") from None
    except OSError:
        raise TftpError(ErrorCode.NOT_DEFINED, "cannot read file") from None
    return b"", file, None if netascii else os.fstat(file.fileno()).st_size


def _open_binary(path: Path) -> BinaryIO:
    # Unbuffered: reads are already large, a second buffer would only copy.
    return open(path, "rb", buffering=0)  # closed by BlockSource


class TransferEndpoint(asyncio.DatagramProtocol):
    """The ephemeral socket of one transfer; enforces the peer's transfer ID."""

    def __init__(self, peer: tuple[Any, ...], stats: TftpStats) -> None:
        self.peer = peer
        self._peer_key = (peer[0], peer[1])
        self._transport: asyncio.DatagramTransport | None = None
        self.transfer: Transfer | None = None
        self.stats = stats
        self.on_heard: Callable[[], None] | None = None  # called on the peer's first packet

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (a datagram transport, though not a subclass in 3.11)."""
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Route the peer's packets to the transfer; answer strangers with ERROR 5."""
        if (addr[0], addr[1]) != self._peer_key:
            self._reject_stranger(data, addr)
            return
        heard, self.on_heard = self.on_heard, None
        if heard is not None:
            heard()
        transfer = self.transfer
        if transfer is None:
            return
        try:
            packet = parse_transfer_packet(data)
            if packet is not None:
                transfer.on_packet(packet)
        except Exception:  # a protocol callback must never raise into the loop
            log.exception("TFTP transfer with %s failed on a packet", self._peer_key)
            transfer.fail(ErrorCode.NOT_DEFINED, "internal error")

    def _reject_stranger(self, data: bytes, addr: tuple[Any, ...]) -> None:
        self.stats.unknown_tid += 1
        # Never answer an ERROR (no error loops) nor a source port 0.
        if addr[1] != 0 and data[:2] != b"\x00\x05" and self._transport is not None:
            self._transport.sendto(UNKNOWN_TID, addr)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors are not fatal: the retransmission timer decides."""
        log.debug("TFTP transfer socket error from %s: %s", self._peer_key, exc)

    def send(self, data: bytes) -> None:
        """Send one packet to the peer (dropped once the socket is closed)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, self.peer)

    def close(self) -> None:
        """Close the socket."""
        if self._transport is not None:
            self._transport.close()


class ListenerProtocol(asyncio.DatagramProtocol):
    """The well-known port: hands each datagram to the server, never raises."""

    def __init__(self, on_request: Callable[[bytes, tuple[Any, ...]], None]) -> None:
        self._on_request = on_request

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Parse and dispatch one request."""
        try:
            self._on_request(data, addr)
        except Exception:  # a protocol callback must never raise into the loop
            log.exception("TFTP request from %s failed", addr[:2])

    def error_received(self, exc: Exception) -> None:
        """ICMP errors from earlier replies are of no interest to the listener."""
        log.debug("TFTP listener socket error: %s", exc)
