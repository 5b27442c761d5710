"""Fixtures and helpers for the admin API tests: a real aiohttp test server over the services.

`api` is an `Api`: an aiohttp test client on `create_admin_app(services)` (a real socket on
127.0.0.1), an admin token and a read-only token created through the token service, and
`call()`, which sends the bearer header and keeps the raw text of every response so a test can
search all of them at once (for a password that must never be echoed, or a stack trace).
`api_factory` builds more of them, e.g. one with a small `max_body_bytes`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from multidict import CIMultiDictProxy

from provisiond.frontends.admin_api import create_admin_app
from provisiond.services import Services
from provisiond.services.commands import TokenCreate

ADMIN_TOKEN_NAME = "admin-api-test"
READ_TOKEN_NAME = "reader-api-test"
# Sentinel for "send the admin token" (None means "send no Authorization header").
ADMIN = "admin"

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]


@dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, headers and the raw body text."""

    status: int
    text: str
    headers: CIMultiDictProxy[str]

    @property
    def json(self) -> Any:
        """The body parsed as JSON (fails the test when it is not JSON)."""
        return json.loads(self.text)


@dataclass
class Api:
    """A test client on the admin app plus the two tokens and a log of every response body."""

    client: TestClient[web.Request, web.Application]
    admin_token: str
    read_token: str
    bodies: list[str] = field(default_factory=list)

    @property
    def app(self) -> web.Application:
        """The aiohttp application under test."""
        return self.client.app

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | str | None = None,
        token: str | None = ADMIN,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """Send one request: `body` as JSON, or `raw` bytes as they are; bearer `token`."""
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {self.admin_token if token == ADMIN else token}"
        if raw is None and body is not None:
            raw = json.dumps(body)
        if raw is not None:
            sent.setdefault("Content-Type", "application/json")
        # A file-like body: aiohttp warns (an error here) about large raw bytes.
        data = None if raw is None else io.BytesIO(raw.encode() if isinstance(raw, str) else raw)
        async with self.client.request(method, path, data=data, headers=sent) as response:
            reply = Reply(response.status, await response.text(), response.headers)
        self.bodies.append(reply.text)
        return reply

    async def ok(self, method: str, path: str, body: Any = None, *, status: int = 200) -> Any:
        """Call with the admin token, assert the status, return the JSON body."""
        reply = await self.call(method, path, body)
        assert reply.status == status, (method, path, reply.status, reply.text)
        return reply.json if reply.text else None

    async def user(self, username: str, main_extension: str, **extra: Any) -> dict[str, Any]:
        """Create a user through POST /api/v1/users."""
        body = {"username": username, "display_name": username.title(), **extra}
        created: dict[str, Any] = await self.ok(
            "POST", "/api/v1/users", {**body, "main_extension": main_extension}, status=201
        )
        return created

    async def device(
        self, extension: str, mac: str, model: str = "yealink-t46s", **extra: Any
    ) -> dict[str, Any]:
        """Create a device through POST /api/v1/devices."""
        body = {"extension": extension, "model": model, "mac": mac, **extra}
        created: dict[str, Any] = await self.ok("POST", "/api/v1/devices", body, status=201)
        return created


def mac_for(number: int) -> str:
    """A distinct, valid MAC per number (Yealink OUI), compact notation."""
    return f"001565{number:06x}"


ApiFactory = Callable[..., Awaitable[Api]]


@pytest.fixture
async def api_factory(aiohttp_client: ClientFactory, services: Services) -> ApiFactory:
    """Build an `Api` over `create_admin_app(services, **options)`; tokens are made once."""
    admin = await services.tokens.create(TokenCreate(name=ADMIN_TOKEN_NAME), "test")
    reader = await services.tokens.create(TokenCreate(name=READ_TOKEN_NAME, scope="read"), "test")

    async def build(**options: Any) -> Api:
        client = await aiohttp_client(create_admin_app(services, **options))
        return Api(client, admin, reader)

    return build


@pytest.fixture
async def api(api_factory: ApiFactory) -> Api:
    """The admin API with default options."""
    return await api_factory()
