"""The admin API's access control, route by route, and secrets that never leave unaudited.

The route walk is driven by the OpenAPI document: every operation it lists must have an entry
in `ROUTES` (a concrete path and a body that an admin token would get a 2xx for), so a new
route cannot be left out. Without a token or with a wrong one every protected route answers
401; a read-only token reads (200, or 404 for a missing id) and every mutation answers 403 with
the database unchanged, while the same requests with the admin token succeed, which proves the
refusals are the token's doing. `reveal-password` is for admin tokens only and is audited
without the secret. Last, a real `provisiond serve` writes devices created through its API to
a SQLite file whose copy (with its -wal and -shm) holds no password.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from provisiond.provisioning.bans import EnumerationGuard, GuardConfig
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate
from provisiond.services.sites import SiteCreate
from provisiond.storage.database import Database
from provisiond.storage.models import Device
from tests.dbdump import dump
from tests.integration.api_fixtures import Api, ApiFactory
from tests.serve_process import serve

DOC = "/api/v1/openapi.json"
METHODS = ("get", "put", "post", "patch", "delete")
BANNED = "192.0.2.7"
WRONG_TOKENS = ("pvd_" + "A" * 43, "not-a-token")
CHUNK = 5  # wrong-token requests per admin app: below the failed-token throttle (429)

Route = tuple[str, str]  # (METHOD, OpenAPI path template)
Request = tuple[str, Any]  # (concrete path, JSON body or None)


def routes_for(ids: dict[str, int]) -> dict[Route, Request]:
    """Every operation with a concrete request; mutations in an order in which each one
    succeeds with the admin token (see the module docstring)."""
    u, d1, d2, s = ids["user"], ids["device"], ids["spare"], ids["site"]
    reads: dict[Route, Request] = {
        ("GET", DOC): (DOC, None),
        ("GET", "/api/v1/users"): ("/api/v1/users", None),
        ("GET", "/api/v1/users/{id}"): (f"/api/v1/users/{u}", None),
        ("GET", "/api/v1/devices"): ("/api/v1/devices?extension_prefix=20", None),
        ("GET", "/api/v1/devices/{id}"): (f"/api/v1/devices/{d1}", None),
        ("GET", "/api/v1/devices/{id}/accounts"): (f"/api/v1/devices/{d1}/accounts", None),
        ("GET", "/api/v1/devices/{id}/keys"): (f"/api/v1/devices/{d1}/keys", None),
        ("GET", "/api/v1/users/{id}/keys"): (f"/api/v1/users/{u}/keys", None),
        ("GET", "/api/v1/unprovisioned"): ("/api/v1/unprovisioned", None),
        ("GET", "/api/v1/models"): ("/api/v1/models", None),
        ("GET", "/api/v1/rules"): ("/api/v1/rules", None),
        ("GET", "/api/v1/licences"): ("/api/v1/licences", None),
        ("GET", "/api/v1/settings"): ("/api/v1/settings", None),
        ("GET", "/api/v1/directory/{number}"): ("/api/v1/directory/200", None),
        ("GET", "/api/v1/sites"): ("/api/v1/sites", None),
        ("GET", "/api/v1/sites/{id}"): (f"/api/v1/sites/{s}", None),
        ("GET", "/api/v1/bans"): ("/api/v1/bans", None),
        ("GET", "/api/v1/audit"): ("/api/v1/audit", None),
        ("GET", "/api/v1/export"): ("/api/v1/export?format=json", None),
    }
    new_user = {"username": "newbie", "display_name": "New", "main_extension": "300"}
    new_device = {"extension": "203", "model": "yealink-t46s", "mac": "00:15:65:00:02:03"}
    mutations: dict[Route, Request] = {
        ("POST", "/api/v1/users"): ("/api/v1/users", new_user),
        ("PATCH", "/api/v1/users/{id}"): (f"/api/v1/users/{u}", {"display_name": "Changed"}),
        ("PUT", "/api/v1/users/{id}/devices/{device_id}"): (
            f"/api/v1/users/{u}/devices/{d2}",
            None,
        ),
        ("PUT", "/api/v1/users/{id}/primary-device"): (
            f"/api/v1/users/{u}/primary-device",
            {"device_id": d2},
        ),
        ("DELETE", "/api/v1/users/{id}/devices/{device_id}"): (
            f"/api/v1/users/{u}/devices/{d1}",
            None,
        ),
        ("PATCH", "/api/v1/devices/{id}"): (f"/api/v1/devices/{d1}", {"label": "desk"}),
        ("PUT", "/api/v1/devices/{id}/accounts/{slot}"): (
            f"/api/v1/devices/{d1}/accounts/2",
            {"extension": "2902"},
        ),
        ("DELETE", "/api/v1/devices/{id}/accounts/{slot}"): (
            f"/api/v1/devices/{d1}/accounts/2",
            None,
        ),
        ("PUT", "/api/v1/users/{id}/keys"): (
            f"/api/v1/users/{u}/keys",
            {"keys": [{"type": "dnd"}]},
        ),
        ("PUT", "/api/v1/devices/{id}/keys"): (
            f"/api/v1/devices/{d1}/keys",
            {"keys": [{"type": "park", "value": "701"}]},
        ),
        ("POST", "/api/v1/devices/{id}/release-lock"): (f"/api/v1/devices/{d1}/release-lock", None),
        ("POST", "/api/v1/devices/{id}/reveal-password"): (
            f"/api/v1/devices/{d1}/reveal-password",
            None,
        ),
        ("PUT", "/api/v1/licences"): ("/api/v1/licences", {"APP_USERS": 5}),
        ("PUT", "/api/v1/settings"): ("/api/v1/settings", {"ntp_server": "ntp2.example.test"}),
        ("POST", "/api/v1/devices"): ("/api/v1/devices", new_device),
        ("POST", "/api/v1/import"): (
            "/api/v1/import",
            [{"mac": "00:15:65:00:02:04", "model": "yealink-t46s", "extension": "204"}],
        ),
        ("POST", "/api/v1/devices/{id}/resync"): (f"/api/v1/devices/{d1}/resync", {}),
        ("POST", "/api/v1/resync"): ("/api/v1/resync", {"model": "snom-d785"}),
        ("POST", "/api/v1/sites"): ("/api/v1/sites", {"name": "b", "networks": ["10.9.0.0/16"]}),
        ("PATCH", "/api/v1/sites/{id}"): (f"/api/v1/sites/{s}", {"policy": "digest"}),
        ("DELETE", "/api/v1/sites/{id}"): (f"/api/v1/sites/{s}", None),
        ("DELETE", "/api/v1/bans/{target}"): (f"/api/v1/bans/{BANNED}", None),
        ("DELETE", "/api/v1/devices/{id}"): (f"/api/v1/devices/{d1}", None),
        ("DELETE", "/api/v1/users/{id}"): (f"/api/v1/users/{u}", None),
    }
    return {**reads, **mutations}


MISSING = (  # reads of ids that do not exist: 404 for a read-only token
    "/api/v1/users/999999",
    "/api/v1/devices/999999",
    "/api/v1/sites/999999",
    "/api/v1/directory/999",
)


@pytest.fixture
async def world(services: Services) -> dict[str, int]:
    """A user (main extension 200) whose primary device is 201, a spare device 202, a site."""
    user = await services.users.create(
        UserCreate(username="rossi", display_name="Rossi", main_extension="200"), "test"
    )
    device = await services.devices.create(
        DeviceCreate(extension="201", model="yealink-t46s", mac="001565000201", user_id=user["id"]),
        "test",
    )
    spare = await services.devices.create(
        DeviceCreate(extension="202", model="yealink-t46s", mac="001565000202"), "test"
    )
    site = await services.sites.create(SiteCreate(name="hq", networks=["10.1.0.0/16"]), "test")
    # The device was seen from 127.0.0.1, so a resync has an address (nothing listens on the
    # SIP port there: the NOTIFY ends at once with a transport error, which is still a 200).
    async with services.ctx.db.background() as session:
        await session.execute(
            update(Device).where(Device.id == device["id"]).values(last_seen_ip="127.0.0.1")
        )
    return {"user": user["id"], "device": device["id"], "spare": spare["id"], "site": site["id"]}


def banned_guard() -> EnumerationGuard:
    """A guard with one active ban (on BANNED), for the /bans routes."""
    guard = EnumerationGuard(GuardConfig(unknown_per_source=1))
    assert guard.record(BANNED, "unknown_mac") is not None
    return guard


async def documented_routes(api: Api) -> set[Route]:
    """The (METHOD, path) pairs of the OpenAPI document, fetched without a token."""
    reply = await api.call("GET", DOC, token=None)
    assert reply.status == 200
    return {
        (method.upper(), path)
        for path, item in reply.json["paths"].items()
        for method in item
        if method in METHODS
    }


def body_of(method: str, body: Any) -> Any:
    """Mutations send a JSON body (an empty object when the route takes none)."""
    return body if body is not None or method in ("GET", "DELETE") else {}


async def test_every_route_refuses_no_token_and_wrong_tokens(
    api_factory: ApiFactory, world: dict[str, int], db: Database
) -> None:
    """401 on every protected route without a bearer token, with an unknown token or another
    scheme; the OpenAPI document alone is public; nothing changes."""
    api = await api_factory(guard=banned_guard())
    table = routes_for(world)
    assert await documented_routes(api) == set(table), "a route has no entry in ROUTES"
    before = await dump(db)
    protected = [(route, request) for route, request in table.items() if route[1] != DOC]
    for (method, _), (path, body) in protected:
        reply = await api.call(method, path, body_of(method, body), token=None)
        assert reply.status == 401, (method, path, reply.status)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        basic = await api.call(
            method, path, body_of(method, body), token=None, headers={"Authorization": "Basic x"}
        )
        assert basic.status == 401, (method, path, basic.status)
    attempts = [(r, t) for r in protected for t in WRONG_TOKENS]
    for start in range(0, len(attempts), CHUNK):
        fresh = await api_factory(guard=banned_guard())  # a new throttle: 401, not 429
        for ((method, _), (path, body)), token in attempts[start : start + CHUNK]:
            reply = await fresh.call(method, path, body_of(method, body), token=token)
            assert reply.status == 401, (method, path, token, reply.status)
            assert reply.json["error"] == "unauthorized"
    assert await dump(db) == before
    assert (await api.call("GET", DOC, token=None)).status == 200


async def test_read_only_token_reads_and_changes_nothing(
    api_factory: ApiFactory, world: dict[str, int], db: Database
) -> None:
    """Read-only: every GET 200 (404 for a missing id), every mutation 403 with the database
    and the bans unchanged; the admin token then performs the same mutations."""
    api = await api_factory(guard=banned_guard())
    table = routes_for(world)
    for (method, _), (path, _) in table.items():
        if method == "GET":
            reply = await api.call("GET", path, token=api.read_token)
            assert reply.status == 200, (path, reply.status, reply.text)
    for path in MISSING:
        assert (await api.call("GET", path, token=api.read_token)).status == 404, path

    before = await dump(db)
    mutations = [(m, p, b) for (m, _), (p, b) in table.items() if m != "GET"]
    for method, path, body in mutations:
        reply = await api.call(method, path, body_of(method, body), token=api.read_token)
        assert reply.status == 403, (method, path, reply.status, reply.text)
        assert reply.json["error"] == "forbidden"
    assert await dump(db) == before
    bans = await api.call("GET", "/api/v1/bans", token=api.read_token)
    assert [ban["target"] for ban in bans.json] == [BANNED]

    for method, path, body in mutations:
        reply = await api.call(method, path, body_of(method, body))
        assert 200 <= reply.status < 300, (method, path, reply.status, reply.text)
    assert await dump(db) != before
    assert (await api.ok("GET", "/api/v1/bans")) == []


async def test_reveal_password_is_admin_only_and_audited_without_the_secret(
    api: Api, db: Database
) -> None:
    """The admin token gets the SIP and provisioning passwords; an audit row
    "device.reveal_password" is written without either; a read-only token gets 403 and
    writes nothing."""
    password = "Reveal-Me-7x9Q"
    device = await api.device("201", "00:15:65:00:02:01", sip_password=password)
    url = f"/api/v1/devices/{device['id']}/reveal-password"
    before = await dump(db)
    refused = await api.call("POST", url, token=api.read_token)
    assert refused.status == 403
    assert password not in refused.text
    assert await dump(db) == before

    revealed = await api.ok("POST", url)
    assert revealed["sip_password"] == password
    assert revealed["provisioning_username"] == "001565000201"
    secret = revealed["provisioning_password"]
    assert isinstance(secret, str)
    assert len(secret) >= 16

    audit = await api.ok("GET", "/api/v1/audit")
    newest = audit["items"][0]
    assert newest["action"] == "device.reveal_password"
    assert str(newest["object_id"]) == str(device["id"])
    assert newest["actor"] == "admin-api-test"
    stored = json.dumps(await dump(db))
    for text in (json.dumps(audit), stored):
        assert password not in text
        assert secret not in text
    shown = await api.ok("GET", f"/api/v1/devices/{device['id']}")
    assert password not in json.dumps(shown)


# -- provisiond serve: the database file ---------------------------------------------------


def first_token(log: Path, timeout: float = 20.0) -> str:
    """The admin token `provisiond serve` writes on its first start, to
    <data_dir>/first-admin-token (mode 0600); `serve()` puts its log in the data dir."""
    path = log.parent / "first-admin-token"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (token := path.read_text(encoding="utf-8").strip()):
            return token
        time.sleep(0.05)
    raise AssertionError(f"no first-start token in {path}")


def caller(base: str, token: str) -> Callable[..., Any]:
    """A JSON client for the served admin API."""

    def call(method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{base}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read() or b"null")

    return call


def test_copied_sqlite_files_hold_no_password(tmp_path: Path) -> None:
    """Devices created through a running server's API: the copied database file, -wal and
    -shm contain none of their SIP or provisioning passwords, but do contain the devices."""
    chosen = [f"Chosen-{n}-q8Zx3vLp" for n in range(3)]
    passwords: list[str] = []
    with serve(tmp_path / "var") as server:
        call = caller(server.api, first_token(server.log_path))
        for n in range(6):
            body: dict[str, Any] = {
                "extension": f"{400 + n}",
                "model": "yealink-t46s",
                "mac": f"00:15:65:00:04:{n:02x}",
                "label": f"MARKER-{n}",
            }
            if n < len(chosen):
                body["sip_password"] = chosen[n]
            made = call("POST", "/devices", body)
            revealed = call("POST", f"/devices/{made['id']}/reveal-password")
            passwords += [revealed["sip_password"], revealed["provisioning_password"]]
        copy = tmp_path / "stolen"
        copy.mkdir()
        for suffix in ("", "-wal", "-shm"):
            source = tmp_path / "var" / f"provisiond.db{suffix}"
            if source.exists():
                shutil.copy(source, copy / source.name)
        log = server.log_path.read_text(encoding="utf-8")
    assert set(chosen) <= set(passwords)
    assert (copy / "provisiond.db-wal").exists(), "the live database runs in WAL mode"
    raw = b"".join(path.read_bytes() for path in copy.iterdir())
    assert b"MARKER-5" in raw, "the copy holds the devices"
    with contextlib.closing(sqlite3.connect(copy / "provisiond.db")) as conn:
        text = "\n".join(conn.iterdump())
    assert "MARKER-5" in text
    for secret in passwords:
        assert secret.encode() not in raw, "a password is readable in the database files"
        assert secret not in text
        assert secret not in log
