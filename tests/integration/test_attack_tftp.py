"""Attacks on the TFTP frontend over real UDP sockets (issue 12, findings 4, 5 and 6).

Each test builds the real phone side with `secure_stack` (resolver, guard, admin API) and
runs a TFTP server on it configured from `Settings.tftp_limits` exactly as `provisiond serve`
does (`provisiond.server.tftp_config`), with the limits shortened by the test. Attackers
send from many 127.x addresses (every one is local on Linux); a forged packet is one sent
from a socket that is closed at once, so nothing can ever answer the server from it. The
server runs in this process, so its file descriptors and RSS are this process's
(/proc/self). Every loop is bounded; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from provisiond.frontends.phone_tftp import TftpServer
from provisiond.server import tftp_config
from provisiond.settings import TftpLimits
from tests.integration import security_fixtures
from tests.integration.security_fixtures import (
    COMMON_FILE,
    SERVER,
    SecureStack,
    StackFactory,
    yealink_mac,
)
from tests.tftp_helpers import (
    ACK,
    DATA,
    ERROR,
    OACK,
    RRQ,
    WRQ,
    ack_packet,
    data_packet,
    error_packet,
    opcode_of,
    request_packet,
)

secure_stack = security_fixtures.secure_stack  # the fixture, for this module

BUSY = error_packet(0, "server busy")
NOT_FOUND = error_packet(1, "File not found")
ACCESS_VIOLATION = error_packet(2, "Access violation")
QUIET = 0.3  # how long "nothing arrives" is watched for


# -- measuring the server (this process) ---------------------------------------------------


def open_fds() -> int:
    """File descriptors open in this process, which hosts the server."""
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    """Resident set size of this process, bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def report(name: str, **numbers: Any) -> None:
    """Numbers for the issue report (pytest -s shows them)."""
    print(f"[{name}] " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


# -- the server and raw clients ------------------------------------------------------------


@pytest.fixture
async def tftp_servers() -> AsyncIterator[list[TftpServer]]:
    """Servers started by `start_tftp`, stopped at the end."""
    servers: list[TftpServer] = []
    try:
        yield servers
    finally:
        for server in servers:
            await server.stop()


async def start_tftp(stack: SecureStack, servers: list[TftpServer], **limits: Any) -> TftpServer:
    """A TFTP server on the stack's resolver, configured from `tftp_limits` (shortened)."""
    settings = stack.settings.model_copy(update={"tftp_limits": TftpLimits(**limits)})
    server = TftpServer(stack.resolver, tftp_config(settings, SERVER, 0))
    await server.start()
    servers.append(server)
    return server


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


def forge(server: TftpServer, source: str, packet: bytes) -> None:
    """One datagram from `source` that nothing will ever answer (its socket closes at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind((source, 0))
        sock.sendto(packet, server.sockname)


async def settle(server: TftpServer, timeout: float) -> bool:
    """Wait (bounded) until the server has no transfer left."""
    deadline = time.monotonic() + timeout
    while server._active and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    return not server._active


async def get_http(stack: SecureStack, path: str, source: str) -> int:
    """Status of a phone HTTP GET from `source`."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(stack.url(path), timeout=aiohttp.ClientTimeout(total=5)) as got:
            await got.read()
            return got.status


async def unprovisioned(stack: SecureStack) -> list[str]:
    """MACs listed as unprovisioned, after writing the pending sightings."""
    await stack.activity.flush()
    items = (await stack.services.catalogue.unprovisioned())["items"]
    return [str(row["mac"]) for row in items]


# -- finding 4: WRQ decided before OACK/ACK 0 ----------------------------------------------

OFFICE = "127.0.10.0/24"  # an `open` site
SECURE = "127.0.20.0/24"  # a `digest` site
PHONE_IN_OFFICE = "127.0.10.7"
BANNED_IN_OFFICE = "127.0.10.5"
OUTSIDE = "127.0.30.1"  # outside every site
IN_DIGEST_SITE = "127.0.20.1"


async def test_wrq_is_refused_before_any_ack_and_holds_nothing(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """WRQs from a banned source, from outside every site, inside a digest site and for an
    unknown MAC get their error from the listener, never an OACK or ACK 0; the DATA they
    send next is never buffered. 600 such uploads leave fds and RSS where they were."""
    stack = await secure_stack(ban_auth_failures=1)
    await stack.site("office", [OFFICE])
    await stack.site("secure", [SECURE], "digest")
    known = await stack.device(1, yealink_mac(0x10))
    stack.guard.record(BANNED_IN_OFFICE, "auth_failure")
    assert stack.guard.banned(BANNED_IN_OFFICE) is not None
    server = await start_tftp(stack, tftp_servers, first_packet_timeout_s=1.0)
    listener = server.sockname
    mine = f"{known.mac}-local.cfg"
    attacks = [
        (BANNED_IN_OFFICE, mine),
        (OUTSIDE, mine),
        (IN_DIGEST_SITE, mine),
        ("127.0.10.6", f"{yealink_mac(0x99)}-local.cfg"),  # an unknown MAC, inside the site
    ]
    # The control: the phone itself, inside its open site, is accepted (OACK).
    with udp(PHONE_IN_OFFICE) as phone:
        phone.sendto(request_packet(WRQ, mine, blksize="1428", tsize="900"), listener)
        got = await recv(phone)
        assert got is not None
        assert opcode_of(got[0]) == OACK
        phone.sendto(error_packet(0, "changed my mind"), got[1])
    assert await settle(server, 3.0)
    started = server.stats.transfers_started
    for source, name in attacks:
        with udp(source) as attacker:
            attacker.sendto(request_packet(WRQ, name, blksize="1428", tsize="900"), listener)
            got = await recv(attacker)
            assert got is not None, (source, name)
            assert opcode_of(got[0]) == ERROR, (source, name, got[0])
            assert got[1] == listener, "refused by the listener: no transfer socket"
            for block in range(1, 4):  # DATA regardless: nowhere to land
                attacker.sendto(data_packet(block, b"x" * 1428), listener)
            late = await recv(attacker, QUIET)
            assert late is None or opcode_of(late[0]) not in (ACK, OACK), (source, late)
    assert server.stats.transfers_started == started  # no transfer for any of them
    assert server.uploads.held == 0
    # Resources: 600 refused WRQs, each followed by 8 DATA blocks.
    fds_before, rss_before = open_fds(), rss()
    began = time.monotonic()
    for index in range(600):
        source, name = attacks[index % len(attacks)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as attacker:
            attacker.bind((source, 0))
            attacker.sendto(request_packet(WRQ, name, blksize="1428", tsize="900"), listener)
            for block in range(1, 9):
                attacker.sendto(data_packet(block, b"y" * 1428), listener)
        if index % 20 == 19:
            await asyncio.sleep(0.005)
    deadline = time.monotonic() + 5
    while server.stats.requests_rejected < 600 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    elapsed = time.monotonic() - began
    fds_after, rss_after = open_fds(), rss()
    report(
        "wrq-refused",
        wrqs=600,
        rejected=server.stats.requests_rejected,
        seconds=round(elapsed, 2),
        fds_before=fds_before,
        fds_after=fds_after,
        rss_before_mb=round(rss_before / 1e6, 1),
        rss_after_mb=round(rss_after / 1e6, 1),
        upload_bytes_held=server.uploads.held,
    )
    assert server.stats.transfers_started == started
    assert server.uploads.held == 0
    assert not server._active
    assert fds_after <= fds_before + 2
    assert rss_after - rss_before < 16 << 20


async def test_upload_budget_per_source(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """An admitted source cannot buffer more than its upload budget, and an idle upload is
    dropped after `upload_idle_timeout_s`; the budget is given back either way."""
    stack = await secure_stack()
    known = await stack.device(2, yealink_mac(0x20))
    server = await start_tftp(
        stack,
        tftp_servers,
        upload_bytes_per_source=4096,
        upload_idle_timeout_s=0.5,
        first_packet_timeout_s=0.5,
    )
    name = f"{known.mac}-local.cfg"
    with udp("127.0.11.1") as phone:
        # tsize above the budget: refused before any ACK.
        phone.sendto(request_packet(WRQ, name, tsize="5000"), server.sockname)
        got = await recv(phone)
        assert got is not None
        assert got[0] == error_packet(3, "server busy")
        assert got[1] == server.sockname
        # Without tsize: accepted, then cut at the budget.
        phone.sendto(request_packet(WRQ, name), server.sockname)
        got = await recv(phone)
        assert got is not None
        assert got[0] == ack_packet(0)
        tid = got[1]
        replies = []
        for block in range(1, 12):
            phone.sendto(data_packet(block, b"z" * 512), tid)
            reply = await recv(phone)
            assert reply is not None
            replies.append(reply[0])
            if opcode_of(reply[0]) == ERROR:
                break
        assert replies[-1] == error_packet(3, "server busy")
        assert len(replies) == 9  # 8 blocks of 512 fit the 4,096 bytes, the 9th does not
    assert await settle(server, 3.0)
    assert server.uploads.held == 0
    with udp("127.0.11.2") as idle:
        idle.sendto(request_packet(WRQ, name), server.sockname)
        got = await recv(idle)
        assert got is not None
        assert got[0] == ack_packet(0)
        idle.sendto(data_packet(1, b"a" * 512), got[1])
        began = time.monotonic()
        last = None
        for _ in range(20):  # ACKs and resends, then the error
            reply = await recv(idle, 3.0)
            if reply is None or opcode_of(reply[0]) == ERROR:
                last = reply
                break
        assert last is not None
        assert last[0] == error_packet(0, "timeout")
        report("upload-idle", dropped_after_s=round(time.monotonic() - began, 2))
    assert await settle(server, 3.0)
    assert server.uploads.held == 0


# -- finding 5: half-open RRQs, timeout=255, per-source cap, fd headroom ---------------------


async def test_half_open_storm_keeps_fds_bounded_and_http_answering(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """2,000 forged 38-byte RRQs with timeout=255 from 2,000 addresses, with the fd limit
    lowered to 400 above what is open: TFTP stops at its headroom, phone HTTP and the admin
    API keep answering, and everything is released within the first-packet timeout."""
    stack = await secure_stack()
    server = await start_tftp(stack, tftp_servers, fd_headroom=256, first_packet_timeout_s=2.0)
    assert await get_http(stack, COMMON_FILE, "127.0.12.1") == 200  # warm
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    fds_before, rss_before = open_fds(), rss()
    limit = fds_before + 400
    resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    try:
        packet = request_packet(RRQ, COMMON_FILE, timeout="255")
        began = time.monotonic()
        peak = fds_before
        for index in range(2000):
            forge(server, f"127.0.{100 + index // 200}.{index % 200 + 1}", packet)
            if index % 25 == 24:
                await asyncio.sleep(0.002)  # the server shares this loop: let it read
                peak = max(peak, open_fds())
        await asyncio.sleep(0.2)
        peak = max(peak, open_fds())
        transfers = len(server._active)
        busy = server.stats.requests_rejected
        # While TFTP is saturated, the phone HTTP listener and the admin API answer.
        http = await get_http(stack, COMMON_FILE, "127.0.12.2")
        admin = (await stack.api.call("GET", "/api/v1/bans")).status
        sent_s = time.monotonic() - began
        assert await settle(server, 6.0), f"{len(server._active)} transfers left"
        drained_s = time.monotonic() - began
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    await asyncio.sleep(0.1)
    fds_after, rss_after = open_fds(), rss()
    report(
        "half-open-storm",
        rrqs=2000,
        fd_limit=limit,
        fds_before=fds_before,
        fds_peak=peak,
        fds_after=fds_after,
        transfers_at_peak=transfers,
        refused_busy=busy,
        http=http,
        admin=admin,
        sent_s=round(sent_s, 2),
        drained_s=round(drained_s, 2),
        rss_before_mb=round(rss_before / 1e6, 1),
        rss_after_mb=round(rss_after / 1e6, 1),
    )
    assert http == 200
    assert admin == 200
    assert peak <= limit - 256 + 8  # TFTP never ate into the headroom (+ the test's own)
    assert busy > 1000  # most were refused: the headroom, not the kernel, stopped them
    assert fds_after <= fds_before + 4
    assert rss_after - rss_before < 32 << 20


async def test_timeout_option_is_capped_and_silence_drops_the_transfer(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """timeout=255 is echoed (RFC 2349) but the OACK is resent every `max_timeout_s`, and an
    unanswered transfer ends after `first_packet_timeout_s`, not 6 x 255 s."""
    stack = await secure_stack()
    server = await start_tftp(stack, tftp_servers, max_timeout_s=1.0, first_packet_timeout_s=2.5)
    with udp("127.0.13.1") as client:
        client.sendto(request_packet(RRQ, COMMON_FILE, timeout="255"), server.sockname)
        began = time.monotonic()
        got = await recv(client)
        assert got is not None
        assert opcode_of(got[0]) == OACK
        packets = [got[0]]
        for _ in range(10):
            more = await recv(client, 3.0)
            if more is None:
                break
            packets.append(more[0])
            if opcode_of(more[0]) == ERROR:
                break
        lasted = time.monotonic() - began
    assert packets[-1] == error_packet(0, "timeout")
    assert 2 <= len(packets) - 1 <= 3  # resends at 1 s and 2 s, then dropped at 2.5 s
    assert 2.0 < lasted < 4.0
    report("timeout-255", resends=len(packets) - 2, dropped_after_s=round(lasted, 2))
    assert await settle(server, 2.0)


async def test_per_source_cap_refuses_the_next_transfer(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """With `max_per_source` = 4, the fifth concurrent RRQ of an address is "server busy"
    from the listener; another address is served; the address is served again later."""
    stack = await secure_stack()
    server = await start_tftp(stack, tftp_servers, max_per_source=4, first_packet_timeout_s=1.0)
    source = "127.0.14.1"
    socks = [udp(source) for _ in range(5)]
    try:
        for sock in socks[:4]:
            sock.sendto(request_packet(RRQ, COMMON_FILE, blksize="1024"), server.sockname)
            got = await recv(sock)
            assert got is not None
            assert opcode_of(got[0]) == OACK
        socks[4].sendto(request_packet(RRQ, COMMON_FILE, blksize="1024"), server.sockname)
        got = await recv(socks[4])
        assert got is not None
        assert got == (BUSY, server.sockname)
        with udp("127.0.14.2") as other:
            other.sendto(request_packet(RRQ, COMMON_FILE, blksize="1024"), server.sockname)
            got = await recv(other)
            assert got is not None
            assert opcode_of(got[0]) == OACK
            other.sendto(error_packet(0, "done"), got[1])
    finally:
        for sock in socks:
            sock.close()
    assert await settle(server, 4.0)
    with udp(source) as again:
        again.sendto(request_packet(RRQ, COMMON_FILE, blksize="1024"), server.sockname)
        got = await recv(again)
        assert got is not None
        assert opcode_of(got[0]) == OACK
        again.sendto(ack_packet(0), got[1])
        data = await recv(again)
        assert data is not None
        assert opcode_of(data[0]) == DATA


# -- finding 6: forged unknown-MAC RRQs ban no one ------------------------------------------

VICTIM = "127.0.15.1"  # a real phone's address, which the attacker forges
PROVER = "127.0.15.2"  # a walker that does answer our OACKs


async def test_forged_unknown_mac_rrqs_ban_no_one(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """RRQs for unknown MACs forged from a phone's address, with options and without, are
    never counted nor recorded; the phone then provisions. The same RRQs from a source that
    ACKs our OACK are counted (ban) and recorded (unprovisioned list)."""
    stack = await secure_stack(ban_unknown_per_source=3, ban_unknown_per_prefix=1000)
    known = await stack.device(3, yealink_mac(0x30))
    server = await start_tftp(stack, tftp_servers, first_packet_timeout_s=0.5)
    for offset in range(40):
        name = f"{yealink_mac(0x1000 + offset)}.cfg"
        options = {"blksize": "1024"} if offset % 2 else {}
        forge(server, VICTIM, request_packet(RRQ, name, **options))
        await asyncio.sleep(0.002)
    assert await settle(server, 3.0)
    assert stack.guard.banned(VICTIM) is None
    assert stack.guard.banned("127.0.15.0") is None  # nor its /24
    assert stack.guard.events_total == 0
    assert await unprovisioned(stack) == []
    # The real phone at that address is not banned: its common file over TFTP, and its own
    # file over HTTP. (Its own file over TFTP is the gate's call: it keeps unproven TFTP
    # misses as walk memory for TFTP, see the report of issue 12.)
    with udp(VICTIM) as phone:
        phone.sendto(request_packet(RRQ, COMMON_FILE, blksize="1024"), server.sockname)
        got = await recv(phone)
        assert got is not None
        assert opcode_of(got[0]) == OACK
        phone.sendto(ack_packet(0), got[1])
        data = await recv(phone)
        assert data is not None
        assert opcode_of(data[0]) == DATA
        phone.sendto(error_packet(0, "enough"), got[1])
    assert await get_http(stack, known.file, VICTIM) == 200
    # A walker that answers: indistinguishable until ACK 0, then "not found", and counted.
    macs = [yealink_mac(0x2000 + offset) for offset in range(3)]
    for mac in macs:
        with udp(PROVER) as walker:
            walker.sendto(request_packet(RRQ, f"{mac}.cfg", blksize="1024"), server.sockname)
            got = await recv(walker)
            assert got is not None
            assert opcode_of(got[0]) == OACK
            assert got[1] != server.sockname  # from a transfer socket, like a served file
            walker.sendto(ack_packet(0), got[1])
            refused = await recv(walker)
            assert refused is not None
            assert refused[0] == NOT_FOUND
    assert stack.guard.banned(PROVER) is not None
    listed = await unprovisioned(stack)
    assert len(listed) == 3
    assert {m.replace(":", "").lower() for m in listed} == set(macs)
    report(
        "forged-unknown-macs",
        forged=40,
        banned_victim=stack.guard.banned(VICTIM) is not None,
        proven=3,
        banned_prover=True,
        listed=len(listed),
    )


async def test_refusal_without_ack_is_never_sent_nor_counted(
    secure_stack: StackFactory, tftp_servers: list[TftpServer]
) -> None:
    """A source that gets the OACK of a refused RRQ but never ACKs it receives no error
    (only the resent OACK) and counts for nothing; an ERROR from it ends the transfer."""
    stack = await secure_stack(ban_unknown_per_source=1)
    server = await start_tftp(stack, tftp_servers, first_packet_timeout_s=1.0, max_timeout_s=1)
    with udp("127.0.16.1") as silent:
        name = f"{yealink_mac(0x3000)}.cfg"
        silent.sendto(request_packet(RRQ, name, blksize="1024", timeout="1"), server.sockname)
        packets = []
        for _ in range(5):
            got = await recv(silent, 2.0)
            if got is None:
                break
            packets.append(got[0])
            if opcode_of(got[0]) == ERROR:
                break
    assert opcode_of(packets[0]) == OACK
    assert all(p == packets[0] for p in packets[:-1])
    assert packets[-1] == error_packet(0, "timeout")  # the watchdog, not the refusal
    with udp("127.0.16.2") as quitter:
        quitter.sendto(request_packet(RRQ, name, blksize="1024"), server.sockname)
        got = await recv(quitter)
        assert got is not None
        assert opcode_of(got[0]) == OACK
        quitter.sendto(error_packet(0, "no thanks"), got[1])
        assert await recv(quitter, QUIET) is None
    assert await settle(server, 3.0)
    assert stack.guard.events_total == 0
    assert stack.guard.banned("127.0.16.1") is None
    assert stack.guard.banned("127.0.16.2") is None
