"""A flood of forged (half-open) RRQs against the TFTP transfer table, over real UDP sockets.

One forged UDP packet can claim any source address, so a per-source cap does not stop a
flood from many claimed addresses. A transfer whose peer has sent nothing yet is
*unproven*: once it has waited the grace (`TransferTable.grace`), a new request takes its
slot when the table, or the source's share of it, is full. Transfers whose peer answered,
and unproven ones younger than the grace, keep their slots ("server busy" as before).

Each test runs the real phone side (`secure_stack`) and a TFTP server configured from
`Settings.tftp_limits` as `provisiond serve` does, with a small table and a first-packet
timeout far longer than the test, so a slot is only ever freed by an eviction. A forged
packet is sent from a socket that is closed at once: nothing ever answers from it. The real
client is tftpy, from an address the flood did not use. Loops are bounded; waits time out.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Any

import aiohttp
import tftpy

from provisiond.frontends.phone_tftp import TftpServer
from tests.integration import security_fixtures, test_attack_tftp
from tests.integration.security_fixtures import COMMON_FILE, SecureStack, StackFactory
from tests.integration.test_attack_tftp import start_tftp
from tests.tftp_helpers import DATA, OACK, RRQ, ack_packet, error_packet, request_packet

secure_stack = security_fixtures.secure_stack  # the fixture, for this module
tftp_servers = test_attack_tftp.tftp_servers  # the fixture, shared with the other TFTP attacks

BUSY = error_packet(0, "server busy")
SILENT_S = 30.0  # first_packet_timeout_s: no slot frees itself during a test
AT_ONCE_S = 1.5  # a real download of the common file, start to end


def forge(server: TftpServer, source: str, packet: bytes) -> None:
    """One datagram from `source` that nothing will ever answer (its socket closes at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(packet, server.sockname)


def udp(source: str) -> socket.socket:
    """A non-blocking UDP socket bound to `source`."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((source, 0))
    sock.setblocking(False)
    return sock


async def recv(sock: socket.socket, timeout: float = 3.0) -> tuple[bytes, Any] | None:
    """The next datagram and its source, or None after `timeout`."""
    loop = asyncio.get_running_loop()
    try:
        return await asyncio.wait_for(loop.sock_recvfrom(sock, 70_000), timeout)
    except TimeoutError:
        return None


async def common_file(stack: SecureStack) -> bytes:
    """The common file as phone HTTP serves it (what TFTP must send too)."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.12.9", 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        url, timeout = stack.url(COMMON_FILE), aiohttp.ClientTimeout(total=5)
        async with session.get(url, timeout=timeout) as got:
            assert got.status == 200
            return await got.read()


async def tftpy_download(server: TftpServer, source: str, out: Path) -> float:
    """Download the common file with tftpy from `source`; seconds it took (raises on error)."""
    host, port = server.sockname
    client = tftpy.TftpClient(host, port, options={"tsize": 0}, localip=source)
    began = time.monotonic()
    await asyncio.to_thread(client.download, COMMON_FILE, str(out), timeout=2, retries=1)
    return time.monotonic() - began


async def flood(server: TftpServer, sources: list[str], per_source: int) -> int:
    """`per_source` forged RRQs (tsize, as phones ask) from each address; packets sent."""
    packet = request_packet(RRQ, COMMON_FILE, tsize="0")
    sent = 0
    for _ in range(per_source):
        for source in sources:
            forge(server, source, packet)
            sent += 1
            if sent % 32 == 0:
                await asyncio.sleep(0.002)  # the server shares this loop: let it read
    await asyncio.sleep(0.2)  # the last requests reach the handler and open their sockets
    return sent


async def holds(server: TftpServer, size: int, timeout: float) -> bool:
    """Wait (bounded) until the table holds exactly `size` transfers."""
    deadline = time.monotonic() + timeout
    while len(server._active) != size and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    return len(server._active) == size


async def proven_transfer(server: TftpServer, sock: socket.socket) -> None:
    """Start a download from `sock` and answer its OACK: the transfer then holds its slot
    (the client stays silent after DATA 1, well within the retry budget of the test)."""
    sock.sendto(request_packet(RRQ, COMMON_FILE, blksize="512"), server.sockname)
    got = await recv(sock)
    assert got is not None
    assert got[0][:2] == OACK.to_bytes(2, "big")
    sock.sendto(ack_packet(0), got[1])
    data = await recv(sock)
    assert data is not None
    assert data[0][:2] == DATA.to_bytes(2, "big")


async def test_forged_flood_from_many_addresses_never_locks_a_real_phone_out(
    secure_stack: StackFactory, tftp_servers: list[TftpServer], tmp_path: Path
) -> None:
    """2,048 forged RRQs from 256 addresses (8 each: the per-source cap) fill a 256-slot
    table that would stay full for 30 s; once the forged transfers are past the grace, a
    real tftpy client from another address gets the whole file at once."""
    stack = await secure_stack()
    server = await start_tftp(
        stack, tftp_servers, max_transfers=256, max_per_source=8, first_packet_timeout_s=SILENT_S
    )
    expected = await common_file(stack)
    sources = [f"127.0.{60 + index // 128}.{index % 128 + 1}" for index in range(256)]
    sent = await flood(server, sources, per_source=8)
    held = len(server._active)
    assert held == 256, f"the flood should fill the table, it holds {held}"
    await asyncio.sleep(server._active.grace + 0.1)
    # A flood slower than the grace already evicts its own oldest requests.
    evicted = server.stats.transfers_evicted

    out = tmp_path / "real.cfg"
    took = await tftpy_download(server, "127.0.70.1", out)
    assert out.read_bytes() == expected
    assert took < AT_ONCE_S
    assert server.stats.transfers_evicted == evicted + 1  # one forged transfer made room
    # The real transfer ends on its last ACK; the 255 other forged ones still wait (30 s).
    assert await holds(server, 255, timeout=1.0), len(server._active)
    print(
        f"[forged-flood] rrqs={sent}, held={held}, evicted_by_flood={evicted}, "
        f"busy={server.stats.requests_rejected}, download_s={took:.3f}"
    )


async def test_forging_a_phones_own_address_does_not_lock_it_out(
    secure_stack: StackFactory, tftp_servers: list[TftpServer], tmp_path: Path
) -> None:
    """Forged RRQs claiming the phone's own address fill its per-source share (4); past the
    grace, the phone itself still gets its file at once."""
    stack = await secure_stack()
    server = await start_tftp(
        stack, tftp_servers, max_per_source=4, first_packet_timeout_s=SILENT_S
    )
    phone = "127.0.71.1"
    await flood(server, [phone], per_source=4)
    assert len(server._active) == 4
    await asyncio.sleep(server._active.grace + 0.1)
    out = tmp_path / "phone.cfg"
    assert await tftpy_download(server, phone, out) < AT_ONCE_S
    assert out.read_bytes() == await common_file(stack)
    assert server.stats.transfers_evicted == 1


async def test_proven_and_young_transfers_keep_their_slots(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """A table of 8: 4 transfers whose client answered, 4 forged ones. Within the grace a new
    RRQ is "server busy"; past it, the new RRQ takes the oldest forged slot; once only
    answered transfers (and young ones) hold the table, "server busy" again."""
    stack = await secure_stack()
    server = await start_tftp(stack, tftp_servers, max_transfers=8, first_packet_timeout_s=SILENT_S)
    grace = server._active.grace
    clients = [udp(f"127.0.72.{index + 1}") for index in range(4)]
    newcomers = [udp(f"127.0.73.{index + 1}") for index in range(6)]
    try:
        for sock in clients:
            await proven_transfer(server, sock)
        packet = request_packet(RRQ, COMMON_FILE, tsize="0")
        for index in range(4):
            forge(server, f"127.0.74.{index + 1}", packet)
        assert await holds(server, 8, timeout=1.0)

        newcomers[0].sendto(packet, server.sockname)  # the forged ones are younger than grace
        assert await recv(newcomers[0]) == (BUSY, server.sockname)
        await asyncio.sleep(grace + 0.1)
        for sock in newcomers[1:5]:  # each takes one forged slot
            sock.sendto(packet, server.sockname)
            got = await recv(sock)
            assert got is not None
            assert got[0][:2] == OACK.to_bytes(2, "big")
        assert server.stats.transfers_evicted == 4
        # Now: 4 answered transfers and 4 unproven ones younger than the grace.
        newcomers[5].sendto(packet, server.sockname)
        assert await recv(newcomers[5]) == (BUSY, server.sockname)
        assert all(key in server._active for key in _keys(clients))  # never evicted
    finally:
        for sock in clients + newcomers:
            sock.close()


def _keys(socks: list[socket.socket]) -> list[tuple[str, int]]:
    """The (host, port) each socket sends from: its transfer's key in the table."""
    return [(str(sock.getsockname()[0]), int(sock.getsockname()[1])) for sock in socks]
