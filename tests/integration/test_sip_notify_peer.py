"""The NOTIFY client against a scripted phone on 127.0.0.1: the cases sipp cannot script.

`ScriptedPhone` is a real UDP endpoint; each test gives it a function that turns a received
request into the datagrams to send back: provisional responses, responses for other
transactions, garbage, compact and folded headers, proxy challenges checked by our own
digest server (an implementation independent of the client's).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from provisiond.provisioning.digest import DigestAuth
from provisiond.sip import send_notify

HOST = "127.0.0.1"


@dataclass
class Request:
    """A request as the phone received it."""

    raw: bytes
    line: str
    headers: dict[str, str]
    body: bytes

    @classmethod
    def parse(cls, raw: bytes) -> Request:
        head, _, body = raw.partition(b"\r\n\r\n")
        line, *lines = head.decode().split("\r\n")
        headers = dict(item.split(": ", 1) for item in lines)
        return cls(raw, line, headers, body)

    def reply(self, status: str, *extra: str, to_tag: str = "phone1") -> bytes:
        """A response to this request, echoing what RFC 3261 8.2.6.2 says to echo."""
        h = self.headers
        lines = [
            f"SIP/2.0 {status}",
            f"Via: {h['Via']}",
            f"From: {h['From']}",
            f"To: {h['To']};tag={to_tag}",
            f"Call-ID: {h['Call-ID']}",
            f"CSeq: {h['CSeq']}",
            *extra,
            "Content-Length: 0",
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode()


Script = Callable[[Request, int], list[bytes]]


@dataclass
class ScriptedPhone(asyncio.DatagramProtocol):
    """Answers each received request with what `script(request, index)` returns."""

    script: Script
    requests: list[Request] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None
    client: Any = None  # the address the last request came from

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        request = Request.parse(data)
        self.requests.append(request)
        self.client = addr
        assert self.transport is not None
        for datagram in self.script(request, len(self.requests) - 1):
            self.transport.sendto(datagram, addr)

    @property
    def port(self) -> int:
        assert self.transport is not None
        return int(self.transport.get_extra_info("sockname")[1])


@pytest.fixture
async def phone() -> AsyncIterator[Callable[[Script], Any]]:
    """Start scripted phones on 127.0.0.1 (ephemeral ports); closed after the test."""
    started: list[asyncio.DatagramTransport] = []

    async def start(script: Script) -> ScriptedPhone:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.create_datagram_endpoint(
            lambda: ScriptedPhone(script), local_addr=(HOST, 0)
        )
        started.append(transport)
        return protocol

    yield start
    for transport in started:
        transport.close()


async def test_provisional_responses_do_not_end_the_transaction(phone: Any) -> None:
    loop = asyncio.get_running_loop()

    def script(request: Request, index: int) -> list[bytes]:
        if index == 0:
            assert peer.transport is not None
            # The final answer comes late; meanwhile the client keeps retransmitting (T2).
            loop.call_later(0.8, peer.transport.sendto, request.reply("200 OK"), peer.client)
            return [request.reply("100 Trying"), request.reply("180 Ringing")]
        return [request.reply("100 Trying")]

    peer = await phone(script)
    result = await send_notify(HOST, peer.port, event="check-sync", t1=0.05, t2=0.2)
    assert (result.status, result.reason) == (200, "OK")
    assert result.transmissions == len(peer.requests) >= 2
    assert len({r.raw for r in peer.requests}) == 1  # retransmissions are identical


async def test_foreign_and_malformed_datagrams_are_ignored(phone: Any) -> None:
    def script(request: Request, index: int) -> list[bytes]:
        other_branch = request.reply("200 OK").replace(b"branch=z9hG4bK", b"branch=z9hG4bKx")
        other_cseq = request.reply("200 OK").replace(b"CSeq: 1 NOTIFY", b"CSeq: 2 NOTIFY")
        other_method = request.reply("200 OK").replace(b"CSeq: 1 NOTIFY", b"CSeq: 1 OPTIONS")
        truncated = request.reply("200 OK").replace(b"Content-Length: 0", b"Content-Length: 9")
        h = request.headers
        compact_busy = (
            "SIP/2.0 486 Busy Here\n"
            f"v: {h['Via']}\n"
            f"f: {h['From']}\n"
            f"t: {h['To']}\n  ;tag=folded\n"
            f"i: {h['Call-ID']}\n"
            f"cseq: {h['CSeq'].lower()}\n"
            "l: 0\n\n"
        ).encode()
        if index:
            return []
        return [
            b"\x00garbage",
            other_branch,
            other_cseq,
            other_method,
            truncated,
            request.raw,  # a request is not a response
            compact_busy,
        ]

    peer = await phone(script)
    result = await send_notify(HOST, peer.port, event="check-sync", t1=0.2)
    assert (result.status, result.reason, result.attempts) == (486, "Busy Here", 1)


async def test_proxy_challenge_is_answered_with_the_strongest_digest(phone: Any) -> None:
    server = DigestAuth("phone", algorithms=("MD5", "SHA-256"))  # MD5 offered first
    verdicts: list[str] = []

    def script(request: Request, index: int) -> list[bytes]:
        if index == 0:
            challenges = [f"Proxy-Authenticate: {c}" for c in server.challenges()]
            return [request.reply("407 Proxy Authentication Required", *challenges)]
        uri = request.line.split()[1]
        answer = request.headers.get("Proxy-Authorization")
        result = server.verify("NOTIFY", answer, {"201": "pw"}.get, uri=uri)
        verdicts.append(result.algorithm or result.reason)
        return [request.reply("200 OK" if result.ok else "403 Forbidden")]

    peer = await phone(script)
    result = await send_notify(
        HOST, peer.port, event="check-sync", user="201", credentials=("201", "pw"), t1=0.2
    )
    assert (result.status, result.attempts) == (200, 2)
    assert verdicts == ["SHA-256"]
    first, second = peer.requests
    assert "Authorization" not in second.headers
    assert second.headers["CSeq"] == "2 NOTIFY"
    for same in ("Call-ID", "From", "To"):  # RFC 3261 8.1.3.5: the To gets no tag
        assert first.headers[same] == second.headers[same]
    assert first.headers["Via"] != second.headers["Via"]  # a new branch


async def test_never_more_than_one_authenticated_retry(phone: Any) -> None:
    def script(request: Request, index: int) -> list[bytes]:
        challenge = f'WWW-Authenticate: Digest realm="r", nonce="n{index}", qop="auth"'
        return [request.reply("401 Unauthorized", challenge)]

    peer = await phone(script)
    result = await send_notify(
        HOST, peer.port, event="check-sync", user="201", credentials=("201", "pw"), t1=0.2
    )
    assert (result.status, result.attempts) == (401, 2)
    await asyncio.sleep(0.3)  # nothing else arrives: the socket is closed
    assert len(peer.requests) == 2
    assert "Authorization" in peer.requests[1].headers


@pytest.mark.parametrize(
    ("challenge", "credentials", "note"),
    [
        ('WWW-Authenticate: Digest realm="r", nonce="n"', None, "no credentials"),
        ('WWW-Authenticate: Basic realm="r"', ("201", "pw"), "no Digest challenge"),
    ],
)
async def test_a_challenge_left_unanswered_is_reported(
    phone: Any, challenge: str, credentials: tuple[str, str] | None, note: str
) -> None:
    peer = await phone(lambda request, index: [request.reply("401 Unauthorized", challenge)])
    result = await send_notify(HOST, peer.port, event="check-sync", credentials=credentials, t1=0.2)
    assert (result.status, result.attempts) == (401, 1)
    assert note in result.reason
    assert len(peer.requests) == 1


async def test_service_control_sends_its_action_body(phone: Any) -> None:
    peer = await phone(lambda request, index: [request.reply("200 OK")])
    result = await send_notify(
        HOST, peer.port, event="service-control", reboot=True, mac="00-15-65-AA-BB-CC"
    )
    assert result.ok
    (request,) = peer.requests
    assert request.line == f"NOTIFY sip:001565aabbcc@{HOST}:{peer.port} SIP/2.0"
    assert request.headers["Event"] == "service-control"
    assert request.headers["Subscription-State"] == "active"
    assert request.headers["Content-Type"] == "text/plain"
    assert request.body == b"action=reset\r\n"
    assert int(request.headers["Content-Length"]) == len(request.body)


async def test_local_host_names_us_in_via_from_and_contact(phone: Any) -> None:
    peer = await phone(lambda request, index: [request.reply("200 OK")])
    result = await send_notify(HOST, peer.port, event="check-sync", local_host="192.0.2.55")
    assert result.ok  # the answer still reaches the socket: the phone answers the source
    (request,) = peer.requests
    assert request.headers["Via"].startswith("SIP/2.0/UDP 192.0.2.55:")
    assert request.headers["From"].startswith("<sip:provisiond@192.0.2.55>;tag=")
    assert request.headers["Contact"].startswith("<sip:provisiond@192.0.2.55:")


async def test_a_closed_port_is_a_transport_error_not_a_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now: the kernel answers ICMP port unreachable.
    result = await send_notify(HOST, port, event="check-sync", t1=0.5, timeout=30)
    assert result.status is None
    assert result.reason.startswith("transport error")
    assert result.attempts == 1
