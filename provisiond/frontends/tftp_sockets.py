"""The sockets of the TFTP server, and opening what a transfer sends.

- `ListenerProtocol`: the well-known port; hands every datagram to the server's callback
  and never raises into the event loop.
- `TransferEndpoint`: the ephemeral socket of one transfer, whose port is the server's
  transfer ID. Only the peer's (host, port) reaches the transfer (`tftp_transfer.Transfer`);
  a packet from any other gets ERROR 5 "Unknown transfer ID" (never in answer to an ERROR,
  nor to port 0). A bad packet fails the transfer, never the loop.
- `FdGauge`: how many file descriptors the process may still open, so the server can keep
  a headroom below RLIMIT_NOFILE that TFTP never takes.
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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (a datagram transport, though not a subclass in 3.11)."""
        self._transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[Any, ...]) -> None:
        """Route the peer's packets to the transfer; answer strangers with ERROR 5."""
        if (addr[0], addr[1]) != self._peer_key:
            self._reject_stranger(data, addr)
            return
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
