"""Send one resync NOTIFY to a phone over UDP and report how it answered.

`send_notify` opens an ephemeral UDP socket connected to the phone (so only the phone's
datagrams reach us), runs a non-INVITE client transaction (RFC 3261 17.1.2) and closes the
socket. Timer E retransmits (T1 doubling up to T2; every T2 once a 1xx arrived), timer F ends
it. Responses match by the topmost Via branch and by CSeq (number and method); anything else,
including malformed datagrams, is ignored. A 401/407 with a Digest challenge is answered once
when credentials are given: a new transaction (CSeq+1, new branch, same Call-ID and From tag)
carrying Authorization / Proxy-Authorization. An ICMP error (port unreachable) ends the
transaction at once as a transport error (RFC 3261 17.1.4).

Result: `NotifyResult.status` is the final status code, or None on timeout or transport error;
`reason` says which. `attempts` counts transactions (2 after a challenge), `transmissions`
counts datagrams sent including retransmissions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from provisiond.sip.auth import authorization, choose_challenge
from provisiond.sip.events import notify_body, subscription_state
from provisiond.sip.message import (
    NotifyRequest,
    SipParseError,
    SipResponse,
    check_event,
    new_branch,
    new_call_id,
    new_tag,
    parse_response,
    uri_user,
)
from provisiond.sip.timers import T1, T2, check_timers, next_interval, timer_f

log = logging.getLogger(__name__)
_INBOX = 64  # datagrams waiting to be matched; a flood beyond this is dropped


@dataclass(frozen=True, slots=True)
class NotifyResult:
    """How the phone answered: final status (None on timeout or transport error) and reason."""

    status: int | None
    reason: str
    attempts: int
    elapsed_s: float
    transmissions: int = 0

    @property
    def ok(self) -> bool:
        """True for a 2xx final response."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class _Timers:
    t1: float
    t2: float
    timeout: float


@dataclass(frozen=True, slots=True)
class _Exchange:
    """The end of one transaction: a final response, or the reason there is none."""

    response: SipResponse | None
    failure: str | None
    sends: int


class _NotifyProtocol(asyncio.DatagramProtocol):
    """Parses what arrives and queues responses and socket errors for the transaction."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[SipResponse | OSError] = asyncio.Queue(maxsize=_INBOX)
        self.ignored = 0

    def datagram_received(self, data: bytes, addr: Any) -> None:
        """Queue a parsed response; a malformed datagram is counted and dropped."""
        try:
            response = parse_response(data)
        except SipParseError as exc:
            self.ignored += 1
            log.debug("ignored datagram from %s: %s", addr, exc)
            return
        self._put(response)

    def error_received(self, exc: Exception) -> None:
        """ICMP errors arrive here (connected socket): the transaction ends on them."""
        if isinstance(exc, OSError):
            self._put(exc)

    def _put(self, item: SipResponse | OSError) -> None:
        try:
            self.inbox.put_nowait(item)
        except asyncio.QueueFull:
            self.ignored += 1


def _matches(response: SipResponse, request: NotifyRequest) -> bool:
    return response.top_via_branch == request.branch and response.cseq == (
        request.cseq,
        "NOTIFY",
    )


async def _transaction(
    transport: asyncio.DatagramTransport,
    inbox: asyncio.Queue[SipResponse | OSError],
    request: NotifyRequest,
    timers: _Timers,
) -> _Exchange:
    """Run one client transaction until a final response, timer F or a transport error."""
    loop = asyncio.get_running_loop()
    data = request.encode()
    start = loop.time()
    deadline = start + timers.timeout
    next_send, interval = start, timers.t1
    proceeding = False
    sends = 0
    while True:
        if loop.time() >= deadline:
            return _Exchange(None, f"timeout: no final response in {timers.timeout:g} s", sends)
        if loop.time() >= next_send:
            transport.sendto(data)
            if sends:  # timer E fired: its next value depends on the state
                interval = next_interval(interval, t2=timers.t2, proceeding=proceeding)
            sends += 1
            next_send += interval  # from the schedule, not from now: no drift
        try:
            async with asyncio.timeout_at(min(next_send, deadline)):
                item = await inbox.get()
        except TimeoutError:
            continue
        if isinstance(item, OSError):
            return _Exchange(None, f"transport error: {item}", sends)
        if not _matches(item, request):
            continue
        if item.status < 200:
            proceeding = True  # keep retransmitting, every T2 from now on
            continue
        return _Exchange(item, None, sends)


def _challenge_answer(
    request: NotifyRequest, response: SipResponse, credentials: tuple[str, str]
) -> NotifyRequest | None:
    """The authenticated retry for a 401/407, or None when no challenge can be answered."""
    proxy = response.status == 407
    challenge = choose_challenge(
        response.header_values("proxy-authenticate" if proxy else "www-authenticate")
    )
    if challenge is None:
        return None
    username, password = credentials
    value = authorization(
        challenge,
        username=username,
        password=password,
        method="NOTIFY",
        uri=request.uri,
        body=request.body.encode("utf-8"),
    )
    header = "Proxy-Authorization" if proxy else "Authorization"
    # RFC 3261 8.1.3.5: same Call-ID and From tag, CSeq + 1, and a new transaction.
    return dataclasses.replace(
        request, cseq=request.cseq + 1, branch=new_branch(), authorization=(header, value)
    )


async def _exchange(
    transport: asyncio.DatagramTransport,
    protocol: _NotifyProtocol,
    request: NotifyRequest,
    credentials: tuple[str, str] | None,
    timers: _Timers,
) -> tuple[_Exchange, int, int, str]:
    """The first transaction and, after a challenge, the one authenticated retry.

    Returns (last exchange, attempts, datagrams sent, note for the reason).
    """
    exchange = await _transaction(transport, protocol.inbox, request, timers)
    response = exchange.response
    if response is None or response.status not in (401, 407):
        return exchange, 1, exchange.sends, ""
    if credentials is None:
        return exchange, 1, exchange.sends, " (challenge not answered: no credentials)"
    retry = _challenge_answer(request, response, credentials)
    if retry is None:
        return exchange, 1, exchange.sends, " (no Digest challenge we can answer)"
    second = await _transaction(transport, protocol.inbox, retry, timers)
    return second, 2, exchange.sends + second.sends, ""


async def send_notify(
    host: str,
    port: int,
    *,
    event: str,
    mac: str | None = None,
    user: str | None = None,
    reboot: bool = False,
    credentials: tuple[str, str] | None = None,
    local_host: str | None = None,
    t1: float = T1,
    t2: float = T2,
    timeout: float | None = None,  # noqa: ASYNC109 - SIP timer F, not a cancel deadline
) -> NotifyResult:
    """Send the resync (or reboot) NOTIFY to the phone at host:port and report the outcome.

    `event` is the Event header, the vendor's ``resync_event`` or, to reboot, its
    ``reboot_event`` (vendor.toml); `reboot` picks the body of events that carry the action in
    one (``service-control``).
    The Request-URI user is `user` (the SIP account; recommended), else `mac`, else none.
    `credentials` (user name, password) answer one digest challenge. `local_host` is the
    address written in Via/From/Contact (default: the socket's own address towards the
    phone). `timeout` is timer F of each transaction (default 64*T1).

    Never raises for what the network does; raises ValueError for invalid arguments.
    """
    header_event = check_event(event.strip())
    body = notify_body(header_event, reboot)
    timers = _Timers(t1, t2, timer_f(t1) if timeout is None else timeout)
    check_timers(timers.t1, timers.t2, timers.timeout)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} out of range")
    target_user = uri_user(user, mac)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        transport, protocol = await loop.create_datagram_endpoint(
            _NotifyProtocol, remote_addr=(host, port)
        )
    except OSError as exc:
        return NotifyResult(None, f"transport error: {exc}", 0, loop.time() - start)
    try:
        sock_host, sock_port = transport.get_extra_info("sockname")[:2]
        local = local_host or sock_host
        request = NotifyRequest(
            target_host=host,
            target_port=port,
            local_host=local,
            local_port=sock_port,
            user=target_user,
            event=header_event,
            call_id=new_call_id(local),
            from_tag=new_tag(),
            cseq=1,
            branch=new_branch(),
            subscription_state=subscription_state(header_event),
            content_type=body[0] if body else None,
            body=body[1] if body else "",
        )
        exchange, attempts, sends, note = await _exchange(
            transport, protocol, request, credentials, timers
        )
    finally:
        transport.close()
    elapsed = loop.time() - start
    if exchange.response is None:
        return NotifyResult(None, f"{exchange.failure}{note}", attempts, elapsed, sends)
    response = exchange.response
    return NotifyResult(response.status, f"{response.reason}{note}", attempts, elapsed, sends)
