"""TFTP wire format: request parsing, option negotiation and packet encoding.

Pure functions, no I/O. Decoding and most encoding go through tftpy's packet classes
(`TftpPacketFactory`, `TftpPacketTypes`); tftpy 0.8's ERROR encoder only knows the fixed
messages of codes 1-8 (code 0 raises KeyError and a custom message is dropped), so ERROR
packets are packed here with struct.

Negotiation follows RFC 2347 (OACK), RFC 2348 (blksize), RFC 2349 (tsize, timeout) and
RFC 7440 (windowsize). Options the server does not accept are simply left out of the OACK;
when none is accepted there is no OACK and the transfer is classic RFC 1350 lockstep.

The retransmission timeout of a transfer (`RttEstimator`) follows RFC 6298: pure arithmetic
on measured round trips, kept here with the other protocol parameters.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from tftpy.TftpPacketFactory import TftpPacketFactory
from tftpy.TftpPacketTypes import TftpPacketACK, TftpPacketDAT, TftpPacketOACK

OP_RRQ = 1
OP_WRQ = 2
OP_DATA = 3
OP_ACK = 4
OP_ERROR = 5
OP_OACK = 6

DEFAULT_BLKSIZE = 512
MIN_BLKSIZE = 8
MAX_BLKSIZE = 65464  # RFC 2348: the largest block that fits a UDP datagram with IPv4
MAX_WINDOWSIZE = 65535  # RFC 7440
MIN_TIMEOUT_S = 1  # RFC 2349
MAX_TIMEOUT_S = 255
# RFC 2347 asks requests to stay within 512 bytes; allow some slack for odd clients, but
# never let a 64 KiB datagram reach tftpy's byte-by-byte option decoder.
MAX_REQUEST_SIZE = 1024
MAX_ERROR_MESSAGE = 200
CLOCK_GRANULARITY_S = 0.001

_FACTORY = TftpPacketFactory()


class ErrorCode(enum.IntEnum):
    """TFTP error codes (RFC 1350, RFC 2347)."""

    NOT_DEFINED = 0
    FILE_NOT_FOUND = 1
    ACCESS_VIOLATION = 2
    DISK_FULL = 3
    ILLEGAL_OPERATION = 4
    UNKNOWN_TID = 5
    FILE_EXISTS = 6
    NO_SUCH_USER = 7
    OPTION_NEGOTIATION = 8


class TftpError(Exception):
    """A protocol error that is reported to the peer as an ERROR packet."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"TFTP error {int(code)}: {message}")
        self.code = code
        self.message = message

    def packet(self) -> bytes:
        """The ERROR packet that reports this error."""
        return encode_error(self.code, self.message)


class Mode(enum.Enum):
    """Transfer modes; "mail" is obsolete (RFC 1350) and refused."""

    OCTET = "octet"
    NETASCII = "netascii"


@dataclass(frozen=True, slots=True)
class TftpRequest:
    """A decoded RRQ or WRQ; option names are lower-cased (RFC 2347: case-insensitive)."""

    opcode: int
    filename: str
    mode: Mode
    options: tuple[tuple[str, str], ...] = ()

    @property
    def is_write(self) -> bool:
        """True for a WRQ."""
        return self.opcode == OP_WRQ

    @property
    def path(self) -> str:
        """The handler path: the file name without one leading slash."""
        return self.filename[1:] if self.filename.startswith("/") else self.filename


@dataclass(frozen=True, slots=True)
class OptionLimits:
    """What the server accepts in a negotiation."""

    max_blksize: int = MAX_BLKSIZE
    max_windowsize: int = 64
    # Caps blksize * windowsize, so one window (what a transfer keeps in flight and in
    # memory) stays bounded whatever a client asks for.
    max_window_bytes: int = 1 << 20
    # The longest retransmission timer a client's timeout option may fix (seconds). The OACK
    # still echoes the client's value (RFC 2349 wants it matched); we only resend sooner, so
    # one 38-byte RRQ with timeout=255 cannot keep a socket for 255 s per retry.
    max_timeout: float = MAX_TIMEOUT_S


@dataclass(frozen=True, slots=True)
class TransferParams:
    """The negotiated parameters of one transfer, and the OACK that announces them."""

    blksize: int = DEFAULT_BLKSIZE
    windowsize: int = 1
    timeout: float | None = None  # fixed retransmission timeout (timeout option, capped)
    tsize: int | None = None  # WRQ: size announced by the client
    oack: tuple[tuple[str, str], ...] = ()


def parse_request(data: bytes) -> TftpRequest:
    """Decode an RRQ/WRQ datagram; raise `TftpError` (to answer) for anything else."""
    if len(data) > MAX_REQUEST_SIZE:
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "request too large")
    if len(data) < 4:
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "truncated request")
    opcode = int.from_bytes(data[:2], "big")
    if opcode not in (OP_RRQ, OP_WRQ):
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, f"unexpected opcode {opcode}")
    # Every field of a request ends in NUL; a missing final NUL means it was cut short.
    if not data.endswith(b"\0") or data.count(b"\0", 2) < 2:
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "truncated request")
    raw_name = data[2 : data.index(b"\0", 2)]
    if not raw_name.isascii():
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "file name must be ASCII")
    try:
        packet = _FACTORY.parse(data)
        filename = str(packet.filename)
        mode_name = str(packet.mode)
        options = tuple((str(k).lower(), str(v)) for k, v in dict(packet.options).items())
    except Exception as exc:  # tftpy raises TftpException, struct.error, UnicodeError...
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "malformed request") from exc
    if "\0" in filename:  # cannot come through the NUL-terminated format; kept as a guard
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "NUL in file name")
    return TftpRequest(opcode, filename, _parse_mode(mode_name), options)


def _parse_mode(name: str) -> Mode:
    if name == "mail":
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "mail mode is not supported")
    try:
        return Mode(name)
    except ValueError:
        raise TftpError(ErrorCode.ILLEGAL_OPERATION, "unknown transfer mode") from None


def _as_int(value: str) -> int | None:
    """A strict decimal: int() would also take "+8", " 8" and "1_000"."""
    return int(value) if value.isascii() and value.isdigit() else None


def negotiate(
    options: Iterable[tuple[str, str]],
    limits: OptionLimits,
    *,
    is_write: bool,
    size: int | None = None,
) -> TransferParams:
    """Negotiate the requested options.

    `size` is the transfer size answered to tsize on a RRQ (None declines it). Raises
    `TftpError` (code 8) for a blksize below 8; other unusable values are ignored. A timeout
    above `limits.max_timeout` is echoed but the timer uses the cap.
    """
    requested = dict(options)
    blksize, windowsize, timeout, tsize = DEFAULT_BLKSIZE, 1, None, None
    oack: dict[str, str] = {}
    if "blksize" in requested and (asked := _as_int(requested["blksize"])) is not None:
        if asked < MIN_BLKSIZE:
            raise TftpError(ErrorCode.OPTION_NEGOTIATION, "blksize below 8")
        blksize = min(asked, limits.max_blksize)
        oack["blksize"] = str(blksize)
    for name, value in requested.items():
        number = _as_int(value)
        if name == "tsize" and number is not None:
            tsize = number if is_write else size
            if tsize is not None:
                oack[name] = str(tsize)
        elif name == "timeout" and number is not None:
            if MIN_TIMEOUT_S <= number <= MAX_TIMEOUT_S:
                timeout = min(float(number), limits.max_timeout)
                oack[name] = str(number)
        elif name == "windowsize" and number is not None and 1 <= number <= MAX_WINDOWSIZE:
            windowsize = _window_cap(number, blksize, limits)
            oack[name] = str(windowsize)
    # Keep the client's option order in the OACK (some clients expect it).
    ordered = tuple((name, oack[name]) for name in requested if name in oack)
    return TransferParams(blksize, windowsize, timeout, tsize if is_write else None, ordered)


def _window_cap(requested: int, blksize: int, limits: OptionLimits) -> int:
    by_bytes = max(1, limits.max_window_bytes // blksize)
    return max(1, min(requested, limits.max_windowsize, by_bytes))


def encode_error(code: ErrorCode | int, message: str) -> bytes:
    """An ERROR packet with any code and message (ASCII, NUL-free, bounded)."""
    text = message.encode("ascii", "replace").replace(b"\0", b" ")[:MAX_ERROR_MESSAGE]
    return struct.pack("!HH", OP_ERROR, int(code)) + text + b"\0"


def encode_oack(options: Iterable[tuple[str, str]]) -> bytes:
    """An OACK packet; tftpy's encoder takes any option names, windowsize included."""
    packet = TftpPacketOACK()
    packet.options = dict(options)
    return bytes(packet.encode().buffer)


def encode_data(block: int, data: bytes) -> bytes:
    """A DATA packet; `block` is taken modulo 2**16 (block numbers roll over to 0)."""
    packet = TftpPacketDAT()
    packet.blocknumber = block & 0xFFFF
    packet.data = data
    return bytes(packet.encode().buffer)


def encode_ack(block: int) -> bytes:
    """An ACK packet; `block` is taken modulo 2**16."""
    packet = TftpPacketACK()
    packet.blocknumber = block & 0xFFFF
    return bytes(packet.encode().buffer)


@dataclass(frozen=True, slots=True)
class TransferPacket:
    """A packet received on a transfer socket: DATA, ACK or ERROR."""

    opcode: int
    block: int = 0  # DATA/ACK block number, or ERROR code
    payload: bytes = b""


def parse_transfer_packet(data: bytes) -> TransferPacket | None:
    """Decode a DATA/ACK/ERROR datagram; None for anything malformed or unexpected."""
    if len(data) < 4:
        return None
    opcode = int.from_bytes(data[:2], "big")
    if opcode == OP_ERROR:
        # Decoded here: tftpy logs every ERROR it decodes at error level, and a client
        # that aborts is not a server error.
        return TransferPacket(OP_ERROR, int.from_bytes(data[2:4], "big"))
    if opcode == OP_ACK:
        ack = _FACTORY.parse(data[:4])
        return TransferPacket(OP_ACK, int(ack.blocknumber))
    if opcode == OP_DATA:
        dat = _FACTORY.parse(data)
        return TransferPacket(OP_DATA, int(dat.blocknumber), bytes(dat.data))
    return None


def to_netascii(data: bytes) -> bytes:
    """Local text to netascii (RFC 764): LF -> CR LF, a bare CR -> CR NUL.

    Byte-by-byte, so chunks of a stream convert independently. CR first, else the CR of
    each inserted CR LF would gain a NUL.
    """
    return data.replace(b"\r", b"\r\0").replace(b"\n", b"\r\n")


def from_netascii(data: bytes) -> bytes:
    """Netascii back to local text: CR LF -> LF, CR NUL -> CR."""
    return data.replace(b"\r\n", b"\n").replace(b"\r\0", b"\r")


@dataclass(frozen=True, slots=True)
class TimerPolicy:
    """Retransmission settings shared by all transfers of a server."""

    initial_rto: float = 1.0  # RFC 6298 initial value, used until the first sample
    min_rto: float = 0.05
    max_rto: float = 5.0
    retries: int = 5


class RttEstimator:
    """Retransmission timeout for one transfer, in the manner of RFC 6298.

    With a `fixed` value (the client's timeout option) no sample or backoff changes it.
    """

    def __init__(self, policy: TimerPolicy, fixed: float | None = None) -> None:
        self._policy = policy
        self._fixed = fixed
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._rto = fixed if fixed is not None else policy.initial_rto

    @property
    def rto(self) -> float:
        """The current retransmission timeout in seconds."""
        return self._rto

    def sample(self, rtt: float) -> None:
        """Feed one round-trip time measured on a packet that was sent only once (Karn)."""
        if self._fixed is not None:
            return
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt
        rto = self._srtt + max(CLOCK_GRANULARITY_S, 4 * self._rttvar)
        self._rto = min(max(rto, self._policy.min_rto), self._policy.max_rto)

    def backoff(self) -> None:
        """Double the timeout after a retransmission (bounded by the maximum)."""
        if self._fixed is None:
            self._rto = min(self._rto * 2, self._policy.max_rto)
