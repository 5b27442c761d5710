"""A phone stack for the security tests: HTTP, TFTP and (optionally) HTTPS sharing one guard.

`secure_stack` is a factory fixture. Each stack runs the real resolver (built by
provisiond.app.build_phone_side, as `provisiond serve` does) behind the phone HTTP app, an
optional HTTPS listener (`server_ssl_context` with a client CA) and the TFTP server, all on
127.0.0.1 ephemeral ports, plus the admin API (`Api`) over the *same* `EnumerationGuard`, so a
ban made on the phone side is listed and lifted through /api/v1/bans. Security settings
(thresholds, model_check, digest algorithms) are overridden per stack.

Clients pick their source address inside 127.0.0.0/8 (every such address is local on Linux):
`HttpClients.get(source, url)` (aiohttp bound to that address), `curl(..., source=)`
(``--interface``), `tftp_get(..., source=)` (a UDP socket bound to that address). Digest
credentials are computed here from RFC 7616 with hashlib, independently of the server's code.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import os
import re
import secrets
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from provisiond.app import PhoneSide, build_guard, build_phone_side
from provisiond.frontends.http_common import SourceCounter
from provisiond.frontends.phone_http import PhoneListener, start_phone_listener
from provisiond.frontends.phone_tftp import TftpServer
from provisiond.provisioning.activity import ActivityRecorder
from provisiond.provisioning.bans import EnumerationGuard
from provisiond.provisioning.resolver import Resolver
from provisiond.server import tftp_config
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate
from provisiond.settings import Settings
from tests.integration.api_fixtures import Api, ApiFactory
from tests.tftp_helpers import Download, RawClient

SERVER = "127.0.0.1"
WALKER = "127.0.0.2"  # the attacker's (or a NAT's) address
PHONE = "127.0.0.3"  # an authorised phone on another address
YEALINK_OUI = 0x001565
MODEL = "yealink-t46s"
COMMON_FILE = "y000000000066.cfg"  # the T46S model file: no secrets, served to anyone not banned
CURL_TIMEOUT = 20


# -- the stack --------------------------------------------------------------------------


@dataclass(frozen=True)
class Known:
    """A device created for a test, with its secrets as reveal_password() tells them."""

    id: int
    mac: str  # 12 lowercase hex digits
    sip_password: str
    provisioning_password: str

    @property
    def file(self) -> str:
        """The Yealink per-device file, with the SIP password in it."""
        return f"{self.mac}.cfg"

    @property
    def boot(self) -> str:
        """The Yealink per-device boot file (no secrets)."""
        return f"{self.mac}.boot"

    @property
    def secrets(self) -> tuple[str, str]:
        """Both passwords: neither may ever reach an unauthorised client."""
        return self.sip_password, self.provisioning_password


@dataclass
class SecureStack:
    """One running phone side (HTTP, TFTP, optional HTTPS) and its admin API."""

    settings: Settings
    services: Services
    guard: EnumerationGuard
    resolver: Resolver
    activity: ActivityRecorder
    api: Api
    http_port: int
    tftp_port: int
    https_port: int | None = None

    def url(self, path: str, *, https: bool = False) -> str:
        """The URL of a phone file on the HTTP (or HTTPS) listener."""
        if https:
            assert self.https_port is not None, "this stack has no HTTPS listener"
            return f"https://{SERVER}:{self.https_port}/{path}"
        return f"http://{SERVER}:{self.http_port}/{path}"

    async def site(
        self, name: str, networks: list[str], policy: str = "open", *, lock: bool = False
    ) -> dict[str, Any]:
        """Create a site through POST /api/v1/sites (before the first phone request: the
        resolver re-reads sites at most every 2 s)."""
        body = {"name": name, "networks": networks, "policy": policy, "lock_on_first_boot": lock}
        site: dict[str, Any] = await self.api.ok("POST", "/api/v1/sites", body, status=201)
        return site

    async def device(self, number: int, mac: str, model: str = MODEL) -> Known:
        """Create a device (generated passwords) and learn its secrets via reveal_password."""
        devices = self.services.devices
        made = await devices.create(
            DeviceCreate(extension=str(3000 + number), model=model, mac=mac), "test"
        )
        revealed = await devices.reveal_password(made["id"], "test")
        return Known(made["id"], mac, revealed["sip_password"], revealed["provisioning_password"])


StackFactory = Callable[..., Awaitable[SecureStack]]


async def _serve(
    resolver: Resolver, listeners: list[PhoneListener], tls: ssl.SSLContext | None
) -> int:
    listener = await start_phone_listener(resolver, SERVER, 0, counter=SourceCounter(256), tls=tls)
    listeners.append(listener)
    return listener.port


@pytest.fixture
async def secure_stack(services: Services, api_factory: ApiFactory) -> AsyncIterator[StackFactory]:
    """Build stacks: `await secure_stack(tls=ctx, ban_auth_failures=5, model_check="strict")`.

    Keyword arguments other than `tls` override `settings.security`.
    """
    listeners: list[PhoneListener] = []
    servers: list[TftpServer] = []
    sides: list[PhoneSide] = []

    async def build(*, tls: ssl.SSLContext | None = None, **security: Any) -> SecureStack:
        base = services.ctx.settings
        settings = base.model_copy(update={"security": base.security.model_copy(update=security)})
        guard = build_guard(settings)
        activity = ActivityRecorder(services.ctx.db, interval=3600)  # tests flush explicitly
        phone = await build_phone_side(
            settings, services.ctx.db, services.ctx.secrets, guard=guard, activity=activity
        )
        sides.append(phone)
        resolver = phone.resolver
        http_port = await _serve(resolver, listeners, None)
        https_port = await _serve(resolver, listeners, tls) if tls else None
        tftp = TftpServer(resolver, tftp_config(settings, SERVER, 0))
        await tftp.start()
        servers.append(tftp)
        return SecureStack(
            settings=settings,
            services=services,
            guard=guard,
            resolver=resolver,
            activity=activity,
            api=await api_factory(guard=guard),
            http_port=http_port,
            tftp_port=tftp.sockname[1],
            https_port=https_port,
        )

    try:
        yield build
    finally:
        for server in servers:
            await server.stop()
        for listener in listeners:
            await listener.close()
        for side in sides:
            await side.stop()


def yealink_mac(offset: int) -> str:
    """The MAC at `offset` inside Yealink's OUI 00:15:65, 12 lowercase hex digits."""
    return f"{(YEALINK_OUI << 24) + offset:012x}"


def leaks(bodies: list[bytes], devices: list[Known]) -> list[str]:
    """Which secrets of `devices` appear in any of `bodies` (empty: none leaked)."""
    blob = b"\n".join(bodies)
    return [
        f"{d.mac}: {secret}"
        for d in devices
        for secret in d.secrets
        if secret and secret.encode() in blob
    ]


# -- HTTP clients -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One HTTP answer."""

    status: int
    body: bytes
    headers: CIMultiDictProxy[str]

    @property
    def challenges(self) -> list[str]:
        """The WWW-Authenticate values, in order."""
        return self.headers.getall("WWW-Authenticate", [])


@dataclass
class HttpClients:
    """aiohttp sessions bound to source addresses; every one is closed at the end."""

    made: list[aiohttp.ClientSession] = field(default_factory=list)
    cached: dict[tuple[str, int], aiohttp.ClientSession] = field(default_factory=dict)

    def new(
        self, source: str, ssl_context: ssl.SSLContext | None = None, **options: Any
    ) -> aiohttp.ClientSession:
        """A new session connecting from `source` (`options` go to ClientSession)."""
        connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=ssl_context or True)
        session = aiohttp.ClientSession(connector=connector, **options)
        self.made.append(session)
        return session

    async def get(
        self,
        source: str,
        url: str,
        headers: dict[str, str] | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> Answer:
        """GET `url` from `source` (one kept-alive session per source and TLS context)."""
        key = (source, id(ssl_context))
        if key not in self.cached:
            self.cached[key] = self.new(source, ssl_context)
        return await fetch(self.cached[key], url, headers)

    async def close(self) -> None:
        """Close every session."""
        for session in self.made:
            await session.close()


async def fetch(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> Answer:
    """GET `url` with `session`."""
    async with session.get(url, headers=headers) as response:
        return Answer(response.status, await response.read(), response.headers)


@pytest.fixture
async def clients() -> AsyncIterator[HttpClients]:
    """HTTP clients by source address."""
    made = HttpClients()
    try:
        yield made
    finally:
        await made.close()


def require_curl() -> str:
    """curl's path, or a failing test that says what to install (never a skip)."""
    path = shutil.which("curl")
    if path is None:
        pytest.fail("these tests need curl: apt-get install curl")
    return path


async def curl(url: str, *options: str, source: str = PHONE) -> tuple[int, bytes]:
    """Run curl from `source`: (HTTP status, body). 000 when no HTTP answer came."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    process = await asyncio.create_subprocess_exec(
        require_curl(),
        *("--silent", "--noproxy", "*", "--max-time", str(CURL_TIMEOUT)),
        *("--interface", source, "--write-out", "\n%{http_code}", *options, url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, _ = await asyncio.wait_for(process.communicate(), CURL_TIMEOUT + 10)
    body, _, status = out.rpartition(b"\n")
    return int(status or b"0"), body


# -- digest (RFC 7616), computed independently of provisiond.provisioning.digest ----------

_PARAM = re.compile(r'([A-Za-z-]+)=(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))')
_HASH = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def challenge_params(challenge: str) -> dict[str, str]:
    """The parameters of one ``Digest ...`` WWW-Authenticate value."""
    assert challenge.startswith("Digest "), challenge
    return {
        m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(challenge[7:])
    }


def pick(challenges: list[str], algorithm: str) -> dict[str, str]:
    """The parameters of the challenge offering `algorithm`."""
    for challenge in challenges:
        params = challenge_params(challenge)
        if params.get("algorithm", "MD5").upper() == algorithm.upper():
            return params
    raise AssertionError(f"no {algorithm} challenge in {challenges}")


def authorization(
    challenge: dict[str, str],
    username: str,
    password: str,
    uri: str,
    *,
    method: str = "GET",
    nc: int = 1,
) -> str:
    """An Authorization header answering `challenge` (qop=auth)."""
    algorithm = challenge.get("algorithm", "MD5")
    new = _HASH[algorithm.upper()]

    def h(text: str) -> str:
        return new(text.encode()).hexdigest()

    cnonce, count = secrets.token_hex(8), f"{nc:08x}"
    ha1 = h(f"{username}:{challenge['realm']}:{password}")
    ha2 = h(f"{method}:{uri}")
    response = h(f"{ha1}:{challenge['nonce']}:{count}:{cnonce}:auth:{ha2}")
    return (
        f'Digest username="{username}", realm="{challenge["realm"]}", '
        f'nonce="{challenge["nonce"]}", uri="{uri}", algorithm={algorithm}, qop=auth, '
        f'nc={count}, cnonce="{cnonce}", response="{response}", opaque="{challenge["opaque"]}"'
    )


# -- TFTP -------------------------------------------------------------------------------

FILE_NOT_FOUND, ACCESS_VIOLATION = 1, 2


class SourcedTftp(RawClient):
    """The tests' raw TFTP client, sending from a chosen local address."""

    def __init__(self, host: str, port: int, source: str, *, timeout: float = 5.0) -> None:
        super().__init__(host, port, timeout=timeout)
        self.sock.close()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.settimeout(timeout)


def tftp_get_blocking(port: int, name: str, source: str, **options: str) -> Download:
    """Download `name` from the stack's TFTP server, from `source` (a fresh socket), with
    RFC 2347 `options` if any (then the source proves its address by ACKing the OACK)."""
    with SourcedTftp(SERVER, port, source) as client:
        return client.download(name, max_packets=10_000, **options)


async def tftp_get(stack: SecureStack, name: str, source: str, **options: str) -> Download:
    """`tftp_get_blocking` off the event loop (the server shares the test's loop)."""
    return await asyncio.to_thread(
        functools.partial(tftp_get_blocking, stack.tftp_port, name, source, **options)
    )


# -- one fetch, whatever the transport -----------------------------------------------------

SERVED, NOT_FOUND, REFUSED = "served", "not found", "refused"


@dataclass(frozen=True)
class Got:
    """What a client got: SERVED, NOT_FOUND, REFUSED (or another status), and the bytes."""

    kind: str
    body: bytes


Fetch = Callable[[str, str], Awaitable[Got]]  # (file name, source address) -> Got


def http_fetcher(stack: SecureStack, clients: HttpClients) -> Fetch:
    """GET over HTTP: 200 served, 404 not found, 403 refused."""
    kinds = {200: SERVED, 404: NOT_FOUND, 403: REFUSED}

    async def get(name: str, source: str) -> Got:
        answer = await clients.get(source, stack.url(name))
        return Got(kinds.get(answer.status, f"HTTP {answer.status}"), answer.body)

    return get


def tftp_fetcher(stack: SecureStack, **options: str) -> Fetch:
    """RRQ over TFTP: data served, error 1 not found, error 2 (access violation) refused."""
    kinds = {FILE_NOT_FOUND: NOT_FOUND, ACCESS_VIOLATION: REFUSED}

    async def get(name: str, source: str) -> Got:
        download = await tftp_get(stack, name, source, **options)
        if download.error is None:
            return Got(SERVED, download.data)
        code, message = download.error
        return Got(kinds.get(code, f"TFTP error {code}"), message.encode())

    return get


def fetcher(transport: str, stack: SecureStack, clients: HttpClients) -> Fetch:
    """The fetch function of a transport: "http", "tftp" (a bare RRQ, whose source address
    is never proven) or "tftp+options" (blksize: the client ACKs our OACK, proving it)."""
    if transport == "http":
        return http_fetcher(stack, clients)
    if transport == "tftp+options":
        return tftp_fetcher(stack, blksize="1024")
    return tftp_fetcher(stack)


TRANSPORTS = ["http", "tftp", "tftp+options"]
PROVEN = ["http", "tftp+options"]  # transports whose misses count towards a ban
