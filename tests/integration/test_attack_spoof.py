"""Forged UDP sources, for real: TFTP requests built with a raw socket (IP_HDRINCL) claiming
source addresses that nothing on this machine owns, as an attacker on the phones' LAN would.

The server must ban no one and record nothing on such packets: not the claimed address, not
its /24, however many arrive (issue 12, finding 6). Raw sockets need root (CI runs as root);
elsewhere the test fails with what it needs, never skips silently. Traffic stays on 127/8.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import pytest

from tests.integration import security_fixtures
from tests.integration.security_fixtures import COMMON_FILE, HttpClients, StackFactory, yealink_mac

secure_stack = security_fixtures.secure_stack
clients = security_fixtures.clients

FORGED_NET = "127.0.77"  # no socket is bound there: replies go nowhere
SOURCES = 60
EACH = 5  # 300 unknown-MAC RRQs: past the per-address (20) and per-/24 (100) thresholds


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def forged_udp(source: str, sport: int, dest: str, dport: int, payload: bytes) -> bytes:
    """An IPv4 + UDP datagram from `source` (any address we like) to `dest`."""
    src, dst = socket.inet_aton(source), socket.inet_aton(dest)
    length = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_UDP, length)
    header = struct.pack("!HHHH", sport, dport, length, 0)
    udp = struct.pack("!HHHH", sport, dport, length, _checksum(pseudo + header + payload))
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + length, 0, 0, 64, socket.IPPROTO_UDP, 0, src, dst
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + udp + payload


def rrq(name: str, **options: str) -> bytes:
    """A TFTP read request."""
    parts = [name.encode(), b"octet"] + [x.encode() for kv in options.items() for x in kv]
    return b"\x00\x01" + b"".join(part + b"\0" for part in parts)


async def test_forged_sources_ban_no_one_and_record_nothing(
    secure_stack: StackFactory, clients: HttpClients
) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test forges IP source addresses with a raw socket: run it as root")
    stack = await secure_stack()
    await stack.site("lan", ["127.0.0.0/8"], "open")
    phone = await stack.device(1, yealink_mac(0x4C0001))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        count = 0
        for host in range(1, SOURCES + 1):
            for n in range(EACH):
                mac = yealink_mac(0x4C1000 + count)
                options = {"blksize": "1024"} if n % 2 else {}
                packet = forged_udp(
                    f"{FORGED_NET}.{host}", 40000 + n, "127.0.0.1", stack.tftp_port,
                    rrq(f"{mac}.cfg", **options),
                )  # fmt: skip
                raw.sendto(packet, ("127.0.0.1", 0))
                count += 1
                if count % 50 == 0:
                    await asyncio.sleep(0.05)  # let the server's loop read its socket
    finally:
        raw.close()
    await asyncio.sleep(0.5)
    tftp = sum(
        n for (protocol, _), n in stack.resolver.stats.requests.items() if protocol == "tftp"
    )
    assert tftp >= count // 2, f"only {tftp} of {count} forged packets reached the server"
    assert await stack.api.ok("GET", "/api/v1/bans") == []
    await stack.activity.flush()
    assert (await stack.api.ok("GET", "/api/v1/unprovisioned"))["total"] == 0
    victim = f"{FORGED_NET}.1"
    assert (await clients.get(victim, stack.url(COMMON_FILE))).status == 200
    mine = await clients.get(victim, stack.url(phone.file))
    assert mine.status == 200
    assert phone.sip_password.encode() in mine.body
