"""Test-side TFTP helpers: a files handler, the server in a thread, a raw client, a lossy proxy.

The server runs on its own event loop in a background thread, so tests can drive it with
plain blocking sockets and real command-line clients. Every wait here has a timeout and
every loop a bound.
"""

from __future__ import annotations

import asyncio
import select
import shutil
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.frontends.phone_tftp import TftpConfig, TftpServer

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
UPLOAD_SUFFIX = "-local.cfg"


class FilesHandler:
    """Serves a dict of files; accepts uploads to names ending in "-local.cfg" up to a cap.

    A value may be bytes (a rendered body), a Path (streamed from disk) or an Outcome (a
    refusal of any request for that name, with "refused by policy" as detail).
    """

    def __init__(self, files: dict[str, bytes | Path | Outcome], upload_cap: int = 4096) -> None:
        self.files = files
        self.upload_cap = upload_cap
        self.uploads: dict[str, bytes] = {}
        self.requests: list[PhoneRequest] = []

    async def admit_upload(self, request: PhoneRequest) -> PhoneResponse | int:
        """The cap for our upload names, an access refusal elsewhere."""
        if request.path.endswith(UPLOAD_SUFFIX):
            return self.upload_cap
        return PhoneResponse(Outcome.FORBIDDEN, detail="no uploads here")

    def respond(self, request: PhoneRequest) -> Awaitable[PhoneResponse]:
        """`handle`, awaited by the caller."""
        return self.handle(request)

    async def handle(self, request: PhoneRequest) -> PhoneResponse:
        """Serve a file or store an upload."""
        self.requests.append(request)
        refusal = self.files.get(request.path)
        if isinstance(refusal, Outcome):
            return PhoneResponse(refusal, detail="refused by policy")
        if request.method == "PUT":
            body = request.body or b""
            if not request.path.endswith(UPLOAD_SUFFIX):
                return PhoneResponse(Outcome.FORBIDDEN)
            if len(body) > self.upload_cap:
                return PhoneResponse(Outcome.TOO_LARGE)
            self.uploads[request.path] = body
            return PhoneResponse(Outcome.OK)
        content = refusal  # the same lookup, narrowed: bytes, Path or None
        if content is None:
            return PhoneResponse(Outcome.NOT_FOUND)
        if isinstance(content, Path):
            return PhoneResponse(Outcome.OK, file=content)
        return PhoneResponse(Outcome.OK, body=content)


class ServerThread:
    """A `TftpServer` running on its own event loop in a daemon thread."""

    def __init__(self, handler: FilesHandler, config: TftpConfig) -> None:
        self.handler = handler
        self.loop = asyncio.new_event_loop()
        self.server = TftpServer(handler, config)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self) -> ServerThread:
        """Start the loop and the server; raises what start() raised."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Stop the server and the loop."""
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()

    @property
    def host(self) -> str:
        """The bound host."""
        return self.server.sockname[0]

    @property
    def port(self) -> int:
        """The bound port."""
        return self.server.sockname[1]

    def active_transfers(self) -> int:
        """How many transfers are running (read on the server's loop)."""

        async def count() -> int:
            return len(self.server._active)

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(timeout=5)


@contextmanager
def running_server(
    handler: FilesHandler, config: TftpConfig | None = None
) -> Iterator[ServerThread]:
    """Run a server on 127.0.0.1 with an ephemeral port for the duration of the block."""
    thread = ServerThread(handler, config or TftpConfig(host="127.0.0.1", port=0)).start()
    try:
        yield thread
    finally:
        thread.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (bounded); returns its last value."""
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def require_tool(name: str, package: str) -> str:
    """The tool's path, or a failing test that says what to install (never a skip)."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: install the Debian package {package} (CI installs it)")
    return path


# -- packets ----------------------------------------------------------------------------


def request_packet(opcode: int, name: str, mode: str = "octet", **options: str) -> bytes:
    """An RRQ/WRQ with options in the given order."""
    fields = [name.encode(), mode.encode()]
    for key, value in options.items():
        fields += [key.encode(), value.encode()]
    return struct.pack("!H", opcode) + b"".join(f + b"\0" for f in fields)


def ack_packet(block: int) -> bytes:
    """An ACK."""
    return struct.pack("!HH", ACK, block & 0xFFFF)


def data_packet(block: int, payload: bytes) -> bytes:
    """A DATA packet."""
    return struct.pack("!HH", DATA, block & 0xFFFF) + payload


def error_packet(code: int, message: str) -> bytes:
    """The exact bytes of an ERROR packet."""
    return struct.pack("!HH", ERROR, code) + message.encode() + b"\0"


def oack_packet(**options: str) -> bytes:
    """The exact bytes of an OACK with options in the given order."""
    body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in options.items())
    return struct.pack("!H", OACK) + body


def opcode_of(packet: bytes) -> int:
    """The opcode of a packet."""
    return int(struct.unpack("!H", packet[:2])[0])


def block_of(packet: bytes) -> int:
    """The block number (or error code) of a DATA/ACK/ERROR packet."""
    return int(struct.unpack("!H", packet[2:4])[0])


def parse_oack(packet: bytes) -> dict[str, str]:
    """The options of an OACK."""
    parts = packet[2:].split(b"\0")[:-1]
    return {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts), 2)}


# -- a raw client -----------------------------------------------------------------------


@dataclass
class Download:
    """What a raw download saw."""

    data: bytes = b""
    oack: dict[str, str] | None = None
    error: tuple[int, str] | None = None
    wire_blocks: list[int] = field(default_factory=list)  # DATA block numbers, in order
    packets: int = 0


class RawClient:
    """A blocking UDP TFTP client that can do windowsize and inspect every packet."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.server = (host, port)
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.sock.settimeout(timeout)
        self.tid: tuple[Any, ...] | None = None

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, packet: bytes, to: tuple[Any, ...] | None = None) -> None:
        """Send to the transfer ID once known, else to the server's port."""
        self.sock.sendto(packet, to or self.tid or self.server)

    def recv(self) -> tuple[bytes, tuple[Any, ...]]:
        """Receive one packet (raises TimeoutError past the timeout)."""
        packet, addr = self.sock.recvfrom(70000)
        return packet, addr

    def request(self, opcode: int, name: str, mode: str = "octet", **options: str) -> bytes:
        """Send a request and return the first reply; remembers its source as the TID."""
        self.send(request_packet(opcode, name, mode, **options), self.server)
        packet, addr = self.recv()
        self.tid = addr
        return packet

    def download(
        self, name: str, mode: str = "octet", *, max_packets: int = 2_000_000, **options: str
    ) -> Download:
        """Fetch a file the RFC 7440 way: ACK each full window, re-ACK on a gap once."""
        result = Download()
        first = self.request(RRQ, name, mode, **options)
        blksize, window = 512, 1
        if opcode_of(first) == OACK:
            result.oack = parse_oack(first)
            blksize = int(result.oack.get("blksize", 512))
            window = int(result.oack.get("windowsize", 1))
            self.send(ack_packet(0))
            first = b""
        _receive_blocks(self, result, first, blksize, window, max_packets)
        return result

    def upload(
        self, name: str, payload: bytes, *, max_packets: int = 2_000_000, **options: str
    ) -> tuple[int, int, str]:
        """Send a file in windows; returns (last opcode, block or code, error message)."""
        reply = self.request(WRQ, name, **options)
        blksize, window = 512, 1
        if opcode_of(reply) == OACK:
            oack = parse_oack(reply)
            blksize, window = int(oack.get("blksize", 512)), int(oack.get("windowsize", 1))
        elif opcode_of(reply) != ACK:
            return opcode_of(reply), block_of(reply), reply[4:-1].decode()
        return _send_blocks(self, payload, blksize, window, max_packets)


def _receive_blocks(
    client: RawClient, result: Download, first: bytes, blksize: int, window: int, limit: int
) -> None:
    chunks: list[bytes] = []
    received = 0  # highest block received in order
    in_window = 0
    stalled_acked = False
    pending = [first] if first else []
    for _ in range(limit):
        packet = pending.pop() if pending else _recv_or_none(client)
        if packet is None:  # our ACK or their DATA was lost: say where we are
            client.send(ack_packet(received))
            continue
        result.packets += 1
        if opcode_of(packet) == ERROR:
            result.error = (block_of(packet), packet[4:-1].decode())
            break
        block = block_of(packet)
        result.wire_blocks.append(block)
        if block != (received + 1) & 0xFFFF:
            if not stalled_acked:
                stalled_acked = True
                client.send(ack_packet(received))
            continue
        chunks.append(packet[4:])
        received += 1
        in_window += 1
        stalled_acked = False
        if len(packet) - 4 < blksize or in_window >= window:
            in_window = 0
            client.send(ack_packet(received))
        if len(packet) - 4 < blksize:
            break
    result.data = b"".join(chunks)


def _recv_or_none(client: RawClient) -> bytes | None:
    for _ in range(1000):
        try:
            packet, addr = client.recv()
        except TimeoutError:
            return None
        if client.tid is None or addr[:2] == client.tid[:2]:
            return packet
    return None


def _send_blocks(
    client: RawClient, payload: bytes, blksize: int, window: int, limit: int
) -> tuple[int, int, str]:
    last = len(payload) // blksize + 1
    acked = 0
    for _ in range(limit):
        if acked == last:
            return ACK, last & 0xFFFF, ""
        for block in range(acked + 1, min(acked + window, last) + 1):
            chunk = payload[(block - 1) * blksize : block * blksize]
            client.send(data_packet(block, chunk))
        reply = _recv_or_none(client)
        if reply is None:
            continue
        if opcode_of(reply) == ERROR:
            return ERROR, block_of(reply), reply[4:-1].decode()
        delta = (block_of(reply) - acked) & 0xFFFF
        if opcode_of(reply) == ACK and 0 < delta <= min(window, last - acked):
            acked += delta
    raise AssertionError("upload did not finish within the packet bound")


# -- a lossy path -----------------------------------------------------------------------


class LossyProxy:
    """A UDP relay on loopback that drops every `drop_every`-th and repeats every
    `dup_every`-th packet it forwards, in both directions (deterministic).

    The client talks to `address`; the proxy forwards to the server's port until the
    server's transfer ID is known, then to the TID. One client at a time.
    """

    def __init__(self, server: tuple[str, int], drop_every: int = 7, dup_every: int = 5) -> None:
        self.server = server
        self.drop_every, self.dup_every = drop_every, dup_every
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind(("127.0.0.1", 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind(("127.0.0.1", 0))
        self.forwarded = self.dropped = self.duplicated = 0
        self._client: tuple[Any, ...] | None = None
        self._tid: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        """Where the client sends its request."""
        host, port = self.front.getsockname()
        return str(host), int(port)

    def __enter__(self) -> LossyProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.front.close()
        self.back.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            readable, _, _ = select.select([self.front, self.back], [], [], 0.05)
            for sock in readable:
                packet, addr = sock.recvfrom(70000)
                if sock is self.front:
                    self._client = addr
                    self._forward(self.back, packet, self._tid or self.server)
                elif self._client is not None:
                    self._tid = addr
                    self._forward(self.front, packet, self._client)

    def _forward(self, sock: socket.socket, packet: bytes, to: tuple[Any, ...]) -> None:
        self.forwarded += 1
        if self.forwarded % self.drop_every == 0:
            self.dropped += 1
            return
        sock.sendto(packet, to)
        if self.forwarded % self.dup_every == 0:
            self.duplicated += 1
            sock.sendto(packet, to)
