"""Admin listener hardening: CORS closed by default, security headers, no caching."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient

from provisiond.frontends.admin_api import create_admin_app
from provisiond.services import Services
from provisiond.services.commands import TokenCreate
from tests.integration.api_fixtures import ClientFactory


async def _client(
    aiohttp_client: ClientFactory, services: Services, origins: tuple[str, ...] = ()
) -> TestClient[web.Request, web.Application]:
    return await aiohttp_client(create_admin_app(services, cors_origins=origins))


async def test_cors_closed_by_default(aiohttp_client, services: Services) -> None:
    client = await _client(aiohttp_client, services)
    token = await services.tokens.create(TokenCreate(name="t"), "test")
    preflight = await client.options(
        "/api/v1/users",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 403
    assert "Access-Control-Allow-Origin" not in preflight.headers
    answer = await client.get(
        "/api/v1/users",
        headers={"Origin": "https://evil.example", "Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200
    assert "Access-Control-Allow-Origin" not in answer.headers


async def test_cors_opens_for_configured_origin_only(aiohttp_client, services: Services) -> None:
    client = await _client(aiohttp_client, services, ("https://console.example",))
    preflight = await client.options(
        "/api/v1/users",
        headers={"Origin": "https://console.example", "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://console.example"
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    other = await client.options(
        "/api/v1/users",
        headers={"Origin": "https://other.example", "Access-Control-Request-Method": "PUT"},
    )
    assert other.status == 403


async def test_security_headers_everywhere(aiohttp_client, services: Services) -> None:
    client = await _client(aiohttp_client, services)
    for path in ("/api/v1/openapi.json", "/api/v1/users", "/nowhere"):
        answer = await client.get(path)
        assert answer.headers["X-Content-Type-Options"] == "nosniff", path
        assert answer.headers["X-Frame-Options"] == "DENY", path
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], path
        assert answer.headers["Referrer-Policy"] == "no-referrer", path
    assert (await client.get("/api/v1/users")).headers["Cache-Control"] == "no-store"


async def test_failed_token_attempts_are_throttled(aiohttp_client, services: Services) -> None:
    client = await _client(aiohttp_client, services)
    token = await services.tokens.create(TokenCreate(name="good"), "test")
    for attempt in range(10):
        wrong = await client.get(
            "/api/v1/users", headers={"Authorization": f"Bearer pvd_x{attempt}"}
        )
        assert wrong.status == 401
    blocked = await client.get("/api/v1/users", headers={"Authorization": "Bearer pvd_x10"})
    assert blocked.status == 429  # the address is guessing: its wrong tokens wait
    assert int(blocked.headers["Retry-After"]) > 0
    assert (await blocked.json())["error"] == "throttled"
    # Someone else's failures never refuse the right token (local clients share 127.0.0.1).
    allowed = await client.get("/api/v1/users", headers={"Authorization": f"Bearer {token}"})
    assert allowed.status == 200
    # The OpenAPI document stays public.
    assert (await client.get("/api/v1/openapi.json")).status == 200
