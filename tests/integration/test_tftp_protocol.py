"""The TFTP frontend packet by packet, with a raw-socket client on 127.0.0.1.

Option negotiation (exact OACK bytes), transfer IDs, retransmission rules, block-number
rollover, a lossy path, malformed packets and limits. Where a test must rule out a timer
resend, it asks for the timeout option (a fixed 10 s timer), so counts are exact.
"""

from __future__ import annotations

import os
import random
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tftpy

from provisiond.domain.phone import Outcome
from provisiond.frontends.phone_tftp import TftpConfig
from provisiond.frontends.tftp_options import from_netascii, to_netascii
from tests.tftp_helpers import (
    ACK,
    DATA,
    ERROR,
    RRQ,
    WRQ,
    FilesHandler,
    LossyProxy,
    RawClient,
    ServerThread,
    ack_packet,
    block_of,
    data_packet,
    error_packet,
    oack_packet,
    opcode_of,
    request_packet,
    running_server,
    wait_until,
)

FIRMWARE = random.Random(7).randbytes(200_000)
TEXT = b"a\nb\r\nc\rd"


@pytest.fixture
def handler() -> FilesHandler:
    """Files of known sizes; uploads to *-local.cfg up to 4 KiB."""
    return FilesHandler(
        {
            "fw.bin": FIRMWARE,
            "ten.bin": bytes(range(256)) * 20,  # 5120 bytes: 10 blocks of 512 + an empty one
            "text.cfg": TEXT,
            "secret.cfg": Outcome.FORBIDDEN,
            "reject-local.cfg": Outcome.FORBIDDEN,
        },
        upload_cap=4096,
    )


@pytest.fixture
def server(handler: FilesHandler) -> Iterator[ServerThread]:
    """A running server on 127.0.0.1 with default settings."""
    with running_server(handler) as thread:
        yield thread


@pytest.fixture
def client(server: ServerThread) -> Iterator[RawClient]:
    """A raw client aimed at the server."""
    with RawClient(server.host, server.port) as raw:
        yield raw


def expect_nothing(client: RawClient) -> None:
    """Assert no packet is queued on the client's socket right now."""
    client.sock.setblocking(False)
    try:
        with pytest.raises(BlockingIOError):
            client.sock.recvfrom(70000)
    finally:
        client.sock.settimeout(5.0)


# -- negotiation ------------------------------------------------------------------------


def test_oack_carries_every_negotiated_option(client: RawClient) -> None:
    reply = client.request(RRQ, "fw.bin", blksize="1468", tsize="0", timeout="3", windowsize="16")
    assert reply == oack_packet(
        blksize="1468", tsize=str(len(FIRMWARE)), timeout="3", windowsize="16"
    )


def test_no_options_is_classic_lockstep(client: RawClient) -> None:
    reply = client.request(RRQ, "fw.bin")
    assert reply == data_packet(1, FIRMWARE[:512])


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"blksize": "99999"}, {"blksize": "65464"}),  # lowered to the maximum
        ({"BlkSize": "1024"}, {"blksize": "1024"}),  # option names are case-insensitive
        ({"blksize": "abc"}, None),  # not a number: ignored, so no OACK at all
        ({"blksize": "-1"}, None),
        ({"timeout": "0"}, None),  # 1..255 only
        ({"timeout": "256"}, None),
        ({"timeout": "255"}, {"timeout": "255"}),
        ({"windowsize": "0"}, None),
        ({"windowsize": "65536"}, None),
        ({"windowsize": "1000"}, {"windowsize": "64"}),  # server cap
        ({"blksize": "65464", "windowsize": "64"}, {"blksize": "65464", "windowsize": "16"}),
        ({"tsize": "x"}, None),
        ({"foo": "bar"}, None),  # unknown options are ignored
        ({"foo": "bar", "blksize": "8"}, {"blksize": "8"}),
    ],
)
def test_option_values(client: RawClient, options: dict[str, str], expected) -> None:
    reply = client.request(RRQ, "fw.bin", **options)
    if expected is None:
        assert reply == data_packet(1, FIRMWARE[:512])
    else:
        assert reply == oack_packet(**expected)


@pytest.mark.parametrize("blksize", ["7", "0"])
def test_blksize_below_8_fails_negotiation(client: RawClient, blksize: str) -> None:
    assert client.request(RRQ, "fw.bin", blksize=blksize) == error_packet(8, "blksize below 8")


def test_configured_blksize_cap(handler: FilesHandler) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, max_blksize=1024, max_windowsize=8)
    with running_server(handler, config) as server, RawClient(server.host, server.port) as c:
        reply = c.request(RRQ, "fw.bin", blksize="1468", windowsize="16")
        assert reply == oack_packet(blksize="1024", windowsize="8")


def test_wrq_oack_echoes_tsize(client: RawClient) -> None:
    reply = client.request(WRQ, "a-local.cfg", tsize="3000", blksize="1024")
    assert reply == oack_packet(tsize="3000", blksize="1024")


@pytest.mark.parametrize("options", [{}, {"blksize": "700", "windowsize": "3"}])
def test_windowed_download_is_intact(client: RawClient, options: dict[str, Any]) -> None:
    assert client.download("fw.bin", **options).data == FIRMWARE


# -- modes ------------------------------------------------------------------------------


def test_netascii_on_the_wire(client: RawClient) -> None:
    download = client.download("text.cfg", "netascii", tsize="0")
    assert download.data == b"a\r\nb\r\0\r\nc\r\0d"
    assert download.oack == {"tsize": str(len(download.data))}
    assert from_netascii(to_netascii(TEXT)) == TEXT


@pytest.mark.parametrize(
    ("mode", "message"),
    [("mail", "mail mode is not supported"), ("ebcdic", "unknown transfer mode")],
)
def test_unsupported_modes(client: RawClient, mode: str, message: str) -> None:
    assert client.request(RRQ, "fw.bin", mode) == error_packet(4, message)


def test_mode_is_case_insensitive(client: RawClient) -> None:
    assert client.request(RRQ, "fw.bin", "OCTET") == data_packet(1, FIRMWARE[:512])


# -- outcomes and paths -----------------------------------------------------------------


def test_leading_slash_is_removed(server: ServerThread, client: RawClient) -> None:
    assert client.request(RRQ, "/fw.bin") == data_packet(1, FIRMWARE[:512])
    assert server.handler.requests[-1].path == "fw.bin"
    assert server.handler.requests[-1].method == "GET"
    assert server.handler.requests[-1].user_agent is None


def test_errors_use_the_outcome_not_the_detail(client: RawClient) -> None:
    """The code follows the outcome; the handler's reason stays in the log (no oracle)."""
    assert client.request(RRQ, "nope.cfg") == error_packet(1, "File not found")
    with RawClient(*client.server) as other:
        assert other.request(RRQ, "secret.cfg") == error_packet(2, "Access violation")


def test_non_ascii_file_name_is_refused(server: ServerThread, client: RawClient) -> None:
    client.send(b"\x00\x01caf\xc3\xa9.cfg\x00octet\x00", client.server)
    assert client.recv()[0] == error_packet(4, "file name must be ASCII")
    assert server.handler.requests == []


def test_handler_crash_is_an_error_packet(server: ServerThread, client: RawClient) -> None:
    async def broken(request):
        raise RuntimeError("boom")

    server.handler.handle = broken  # type: ignore[method-assign]
    assert client.request(RRQ, "fw.bin") == error_packet(0, "internal error")


# -- transfer IDs and retransmission ----------------------------------------------------


def test_wrong_port_gets_error_5_and_the_transfer_goes_on(server: ServerThread) -> None:
    payload = bytes(range(256)) * 20
    with (
        RawClient(server.host, server.port) as client,
        RawClient(server.host, server.port) as stranger,
    ):
        assert opcode_of(client.request(RRQ, "ten.bin", timeout="10")) == 6
        stranger.send(ack_packet(0), client.tid)
        assert stranger.recv() == (error_packet(5, "Unknown transfer ID"), client.tid)
        expect_nothing(client)  # the stranger's ACK 0 did not start the data
        client.send(ack_packet(0))
        received = [client.recv()[0]]
        stranger.send(ack_packet(1), client.tid)
        assert stranger.recv()[0] == error_packet(5, "Unknown transfer ID")
        expect_nothing(client)  # nor did its ACK 1 move the transfer on
        for block in range(1, 11):
            client.send(ack_packet(block))
            received.append(client.recv()[0])
        client.send(ack_packet(11))
    assert b"".join(p[4:] for p in received) == payload
    assert [block_of(p) for p in received] == list(range(1, 12))
    assert wait_until(lambda: server.server.stats.transfers_completed == 1)
    assert server.server.stats.unknown_tid == 2


def test_duplicate_acks_never_cause_a_resend(server: ServerThread, client: RawClient) -> None:
    payload = bytes(range(256)) * 20
    reply = client.request(RRQ, "ten.bin", timeout="10")
    client.send(ack_packet(0))
    received = []
    for block in range(1, 12):
        packet = client.recv()[0]
        received.append(packet)
        client.send(ack_packet(block))
        client.send(ack_packet(block))  # a duplicate right away: must not resend block+1
    assert opcode_of(reply) == 6
    assert received == [data_packet(b, payload[(b - 1) * 512 : b * 512]) for b in range(1, 12)]
    expect_nothing(client)
    assert wait_until(lambda: server.server.stats.transfers_completed == 1)
    assert server.server.stats.retransmissions == 0


def test_window_acks_follow_rfc_7440(server: ServerThread, client: RawClient) -> None:
    payload = bytes(range(256)) * 20

    def blocks(first: int, last: int) -> list[bytes]:
        return [data_packet(b, payload[(b - 1) * 512 : b * 512]) for b in range(first, last + 1)]

    def receive(count: int) -> list[bytes]:
        return [client.recv()[0] for _ in range(count)]

    client.request(RRQ, "ten.bin", timeout="10", windowsize="4")
    client.send(ack_packet(0))
    assert receive(4) == blocks(1, 4)
    client.send(ack_packet(2))  # blocks 3 and 4 were lost: resend from 3
    assert receive(4) == blocks(3, 6)
    client.send(ack_packet(6))
    assert receive(4) == blocks(7, 10)
    client.send(ack_packet(6))  # duplicate of the previous window's ACK
    client.send(ack_packet(3))  # stale, below the window
    expect_nothing(client)
    client.send(ack_packet(10))
    assert receive(1) == blocks(11, 11)  # the empty last block
    client.send(ack_packet(11))
    assert wait_until(lambda: server.server.stats.transfers_completed == 1)
    assert server.server.stats.retransmissions == 0


def test_retransmitted_request_starts_one_transfer(server: ServerThread) -> None:
    with RawClient(server.host, server.port) as client:
        client.send(request_packet(RRQ, "fw.bin", timeout="10"), client.server)
        client.send(request_packet(RRQ, "fw.bin", timeout="10"), client.server)
        first, _ = client.recv()
        assert first == oack_packet(timeout="10")
        expect_nothing(client)
    assert server.server.stats.transfers_started == 1


def test_timeouts_resend_then_give_up(handler: FilesHandler) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, retries=3, initial_rto=0.02, max_rto=0.05)
    with running_server(handler, config) as server, RawClient(server.host, server.port) as c:
        packets = [c.request(RRQ, "fw.bin")] + [c.recv()[0] for _ in range(4)]
        assert packets[:4] == [data_packet(1, FIRMWARE[:512])] * 4  # first send + 3 resends
        assert packets[4] == error_packet(0, "timeout")
        stats = server.server.stats
        assert wait_until(lambda: stats.transfers_failed == 1)
        assert stats.retransmissions == 3
        assert server.active_transfers() == 0
        # The transfer's socket is closed: the kernel refuses what is sent to it.
        assert c.tid is not None
        c.sock.connect(c.tid)
        c.sock.send(ack_packet(1))
        with pytest.raises(ConnectionRefusedError):
            c.sock.recv(100)


# -- block-number rollover --------------------------------------------------------------


def test_rollover_download(handler: FilesHandler, server: ServerThread, client: RawClient) -> None:
    payload = random.Random(3).randbytes(8 * 65540 + 3)  # 65541 blocks of 8 bytes
    handler.files["big.bin"] = payload
    download = client.download("big.bin", blksize="8", windowsize="64")
    assert download.data == payload
    assert download.wire_blocks[65534:65538] == [65535, 0, 1, 2]
    assert server.server.stats.retransmissions == 0


def test_rollover_upload(handler: FilesHandler, server: ServerThread, client: RawClient) -> None:
    handler.upload_cap = 1 << 20
    payload = random.Random(4).randbytes(8 * 65537 + 5)
    assert client.upload("r-local.cfg", payload, blksize="8", windowsize="32")[0] == ACK
    assert handler.uploads["r-local.cfg"] == payload


# -- uploads ----------------------------------------------------------------------------


def test_wrq_tsize_over_cap_refused_at_once(server: ServerThread, client: RawClient) -> None:
    reply = client.request(WRQ, "a-local.cfg", tsize="5000")
    assert reply == error_packet(3, "upload exceeds the size limit")
    assert client.tid is not None
    assert client.tid[1] == server.port  # answered by the listener: nothing was accepted
    assert server.server.stats.transfers_started == 0


def test_wrq_refused_without_accepting(server: ServerThread, client: RawClient) -> None:
    assert client.request(WRQ, "phone.cfg") == error_packet(2, "Access violation")
    assert server.handler.requests == []


def test_upload_over_cap_during_transfer(server: ServerThread, client: RawClient) -> None:
    result = client.upload("a-local.cfg", b"q" * 5000)
    assert result == (ERROR, 3, "upload exceeds the size limit")
    assert server.handler.uploads == {}
    assert all(r.method != "PUT" for r in server.handler.requests)


def test_last_ack_waits_for_the_handler(server: ServerThread, client: RawClient) -> None:
    assert client.upload("reject-local.cfg", b"data") == (ERROR, 2, "Access violation")
    put = [r for r in server.handler.requests if r.method == "PUT"]
    assert [(r.path, r.body) for r in put] == [("reject-local.cfg", b"data")]


def test_windowed_upload(server: ServerThread, client: RawClient) -> None:
    payload = os.urandom(4000)
    assert client.upload("w-local.cfg", payload, blksize="100", windowsize="8")[0] == ACK
    assert server.handler.uploads["w-local.cfg"] == payload


# -- a lossy path -----------------------------------------------------------------------


def test_lossy_path_tftpy(handler: FilesHandler, tmp_path: Path) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, initial_rto=0.1)
    with running_server(handler, config) as server, LossyProxy(server.server.sockname) as proxy:
        out = tmp_path / "out"
        client = tftpy.TftpClient(*proxy.address, options={"blksize": 1024})
        client.download("fw.bin", str(out), timeout=1, retries=20)
        assert out.read_bytes() == FIRMWARE
        assert proxy.dropped > 10
        assert proxy.duplicated > 10
        assert server.server.stats.retransmissions > 0


def test_lossy_path_windowed(handler: FilesHandler) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, initial_rto=0.1)
    with running_server(handler, config) as server, LossyProxy(server.server.sockname) as proxy:
        with RawClient(*proxy.address, timeout=0.3) as client:
            download = client.download("fw.bin", blksize="512", windowsize="8")
        assert download.data == FIRMWARE
        assert proxy.dropped > 10
        assert proxy.duplicated > 10


# -- malformed input and limits ---------------------------------------------------------


@pytest.mark.parametrize(
    ("packet", "reply"),
    [
        (b"\x00", error_packet(4, "truncated request")),
        (b"\x00\x01fw.bin\x00octet", error_packet(4, "truncated request")),
        (b"\x00\x01fw.bin\x00", error_packet(4, "truncated request")),
        (b"\x00\x09fw.bin\x00octet\x00", error_packet(4, "unexpected opcode 9")),
        (data_packet(1, b"stray"), error_packet(4, "unexpected opcode 3")),
        (ack_packet(3), error_packet(4, "unexpected opcode 4")),
        (b"\x00\x01fw.bin\x00octet\x00blksize\x00", error_packet(4, "malformed request")),
        (b"\x00\x01fw.bin\x00octet\x00blk\xffsize\x008\x00", error_packet(4, "malformed request")),
        (request_packet(RRQ, "x" * 2000), error_packet(4, "request too large")),
        (error_packet(0, "nope"), None),  # never answer an ERROR
    ],
)
def test_malformed_requests(server: ServerThread, client: RawClient, packet, reply) -> None:
    client.send(packet, client.server)
    if reply is None:
        client.send(request_packet(RRQ, "fw.bin"), client.server)
        assert client.recv()[0] == data_packet(1, FIRMWARE[:512])
    else:
        assert client.recv()[0] == reply


def test_garbage_leaves_the_server_serving(server: ServerThread) -> None:
    rng = random.Random(11)
    with RawClient(server.host, server.port) as noisy:
        for _ in range(300):
            noisy.send(rng.randbytes(rng.randrange(0, 1500)), noisy.server)
        noisy.send(struct.pack("!H", RRQ) + rng.randbytes(600), noisy.server)
    with RawClient(server.host, server.port) as client:
        assert client.download("fw.bin", blksize="1468").data == FIRMWARE


def test_busy_beyond_max_transfers(handler: FilesHandler) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, max_transfers=1)
    with running_server(handler, config) as server:
        with (
            RawClient(server.host, server.port) as first,
            RawClient(server.host, server.port) as second,
        ):
            assert opcode_of(first.request(RRQ, "fw.bin", timeout="10")) == 6
            assert second.request(RRQ, "fw.bin") == error_packet(0, "server busy")
            first.send(ack_packet(0))
            assert opcode_of(first.recv()[0]) == DATA
        assert server.server.stats.requests_rejected == 1


def test_transfer_deadline(handler: FilesHandler) -> None:
    config = TftpConfig(host="127.0.0.1", port=0, transfer_deadline=0.3)
    with running_server(handler, config) as server, RawClient(server.host, server.port) as c:
        assert opcode_of(c.request(RRQ, "fw.bin", timeout="255")) == 6
        assert c.recv()[0] == error_packet(0, "transfer deadline exceeded")
        assert wait_until(lambda: server.server.stats.transfers_failed == 1)


def test_stop_ends_running_transfers(handler: FilesHandler) -> None:
    server = ServerThread(handler, TftpConfig(host="127.0.0.1", port=0)).start()
    try:
        with RawClient(server.host, server.port) as client:
            assert opcode_of(client.request(RRQ, "fw.bin", timeout="255")) == 6
            server.stop()
            assert client.recv()[0] == error_packet(0, "server shutting down")
    finally:
        if not server.loop.is_closed():
            server.stop()


def test_rcvbuf_is_raised(server: ServerThread) -> None:
    # Best effort: the kernel caps the request at net.core.rmem_max and reports it doubled.
    rmem_max = int(Path("/proc/sys/net/core/rmem_max").read_text())
    sock = server.server._transport.get_extra_info("socket")  # type: ignore[union-attr]
    assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) >= 2 * min(4 << 20, rmem_max)
