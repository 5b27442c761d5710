"""Digest authentication against real clients: curl, Python's urllib and aiohttp.

A tiny aiohttp application protects one path with `DigestAuth` exactly as the phone frontend
will: 401 with every challenge (one WWW-Authenticate header each), then 200. The server runs
on 127.0.0.1 with an ephemeral port; the clients are unmodified.
"""

from __future__ import annotations

import asyncio
import shutil
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from provisiond.provisioning.digest import (
    DigestAuth,
    DigestResult,
    compute_response,
    parse_authorization,
)

REALM = "provisiond"
USERS = {"001565aabbcc": "s3cret Passw0rd"}
PATH = "/prov/001565aabbcc.cfg?boot=1"
CURL = shutil.which("curl")

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
RESULTS = web.AppKey("results", list[DigestResult])


def _app(auth: DigestAuth) -> web.Application:
    async def protected(request: web.Request) -> web.Response:
        result = auth.verify(
            request.method,
            request.headers.get("Authorization"),
            USERS.get,
            uri=request.raw_path,  # the request target as sent, query included
        )
        request.app[RESULTS].append(result)
        if result.ok:
            return web.Response(text=f"config for {result.username}\n")
        challenges = [("WWW-Authenticate", c) for c in auth.challenges(stale=result.stale)]
        return web.Response(status=401, text="Unauthorized\n", headers=challenges)

    app = web.Application()
    app[RESULTS] = []
    app.router.add_get("/prov/{name}", protected)
    return app


@pytest.fixture
async def start(aiohttp_server: ServerFactory) -> Callable[..., Awaitable[TestServer]]:
    """Start a protected server offering `algorithms` (SHA-256 then MD5 by default)."""

    async def build(*algorithms: str) -> TestServer:
        auth = DigestAuth(REALM, algorithms=algorithms or ("SHA-256", "MD5"))
        return await aiohttp_server(_app(auth))

    return build


def _url(server: TestServer) -> str:
    return f"http://127.0.0.1:{server.port}{PATH}"


def _results(server: TestServer) -> list[DigestResult]:
    return server.app[RESULTS]


async def _curl(url: str, credentials: str) -> tuple[int, str]:
    """Run curl --digest; the HTTP status and the body."""
    assert CURL is not None, "install the Debian package curl (make debian-test-deps)"
    process = await asyncio.create_subprocess_exec(
        CURL,
        "--silent",
        "--show-error",
        "--max-time",
        "20",
        "--digest",
        "--user",
        credentials,
        "--write-out",
        "\n%{http_code}",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, err.decode()
    body, _, status = out.decode().rpartition("\n")
    return int(status), body


async def test_curl_with_both_challenges(start: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start()
    status, body = await _curl(_url(server), "001565aabbcc:s3cret Passw0rd")
    assert status == 200
    assert body == "config for 001565aabbcc\n"
    first, last = _results(server)[0], _results(server)[-1]
    assert first.reason == "no credentials"
    assert last.ok
    assert last.algorithm == "SHA-256"  # curl answers the first challenge it understands


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5", "SHA-256-sess", "MD5-sess"])
async def test_curl_with_one_algorithm(
    start: Callable[..., Awaitable[TestServer]], algorithm: str
) -> None:
    server = await start(algorithm)
    status, _ = await _curl(_url(server), "001565aabbcc:s3cret Passw0rd")
    assert status == 200
    assert _results(server)[-1].algorithm == algorithm


async def test_curl_wrong_password(start: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start()
    status, body = await _curl(_url(server), "001565aabbcc:guess")
    assert status == 401
    assert "config" not in body
    assert _results(server)[-1].reason == "wrong credentials"
    assert _results(server)[-1].failed


async def test_curl_unknown_user(start: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start()
    status, _ = await _curl(_url(server), "001565000000:s3cret Passw0rd")
    assert status == 401


def _urllib_get(url: str, password: str) -> int:
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, url, "001565aabbcc", password)
    opener = urllib.request.build_opener(urllib.request.HTTPDigestAuthHandler(manager))
    try:
        with opener.open(url, timeout=20) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


async def test_urllib_digest_handler(start: Callable[..., Awaitable[TestServer]]) -> None:
    """urllib reads only the first challenge and knows MD5 but not SHA-256: MD5-only server."""
    server = await start("MD5")
    assert await asyncio.to_thread(_urllib_get, _url(server), "s3cret Passw0rd") == 200
    assert _results(server)[-1].algorithm == "MD5"
    assert await asyncio.to_thread(_urllib_get, _url(server), "wrong") == 401


async def test_aiohttp_digest_middleware(start: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start()
    digest = aiohttp.DigestAuthMiddleware("001565aabbcc", "s3cret Passw0rd", preemptive=False)
    async with aiohttp.ClientSession(middlewares=(digest,)) as http:
        async with http.get(_url(server)) as response:
            assert response.status == 200
            assert await response.text() == "config for 001565aabbcc\n"
    assert _results(server)[-1].algorithm == "SHA-256"


async def test_replayed_header_is_refused(start: Callable[..., Awaitable[TestServer]]) -> None:
    server = await start()
    url = _url(server)
    async with aiohttp.ClientSession() as http:
        async with http.get(url) as first:
            assert first.status == 401
            values = first.headers.getall("WWW-Authenticate")
        assert [parse_authorization(v)["algorithm"] for v in values] == ["SHA-256", "MD5"]
        challenge = parse_authorization(values[0])
        cnonce = "0a4f113b"
        response = compute_response(
            "SHA-256",
            "001565aabbcc",
            REALM,
            USERS["001565aabbcc"],
            "GET",
            PATH,
            challenge["nonce"],
            "00000001",
            cnonce,
        )
        header = (
            f'Digest username="001565aabbcc", realm="{REALM}", uri="{PATH}", '
            f'algorithm=SHA-256, nonce="{challenge["nonce"]}", nc=00000001, '
            f'cnonce="{cnonce}", qop=auth, response="{response}", '
            f'opaque="{challenge["opaque"]}"'
        )
        async with http.get(url, headers={"Authorization": header}) as granted:
            assert granted.status == 200
        async with http.get(url, headers={"Authorization": header}) as replayed:
            assert replayed.status == 401
            again = replayed.headers.getall("WWW-Authenticate")
            assert all(parse_authorization(v)["stale"] == "true" for v in again)
            assert "config" not in await replayed.text()
    assert "replay" in _results(server)[-1].reason
