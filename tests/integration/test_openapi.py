"""The OpenAPI document describes the API that is really served (DESIGN.md section 4).

It is public, valid OpenAPI 3.1, lists exactly the routes aiohttp registered, every protected
operation answers 401 without a token, the statuses documented for a few operations are each
reproducible, and real answers validate against the document's schemas: a real answer of
every documented GET (so a new GET route is covered as soon as it is in the table).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import netaddr
import pytest
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate
from sqlalchemy import update

from provisiond.frontends.openapi import openapi_document
from provisiond.provisioning.bans import EnumerationGuard, GuardConfig
from provisiond.storage.database import Database
from provisiond.storage.models import Device, UnprovisionedDevice, utcnow
from tests.integration.api_fixtures import ADMIN, Api, ApiFactory, mac_for

DOC = "/api/v1/openapi.json"
METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
SMALL_BODY = 4096
READ = "read-only"  # sentinel: send the read-only token


async def _document(api: Api) -> dict[str, Any]:
    reply = await api.call("GET", DOC, token=None)
    assert reply.status == 200, reply.text
    document: dict[str, Any] = reply.json
    return document


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_document_is_public_and_valid(api: Api) -> None:
    """Served without a token, and a valid OpenAPI 3.1 document."""
    document = await _document(api)
    assert document["openapi"].startswith("3.1")
    validate(document)


async def test_document_lists_exactly_the_routes(api: Api) -> None:
    """(method, path) pairs in the document == the routes registered on the app (minus HEAD)."""
    document = await _document(api)
    registered = {
        (route.method, route.resource.canonical)
        for route in api.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.resource.canonical.startswith("/api/")
    }
    assert _operations(document) == registered


def _concrete(path: str) -> str:
    return path.replace("{number}", "200").replace("{id}", "1").replace("{device_id}", "1")


async def test_every_protected_operation_needs_a_token(api: Api) -> None:
    """Every operation except the document itself documents 401 and answers 401 without a token."""
    document = await _document(api)
    protected = 0
    for method, path in sorted(_operations(document)):
        operation = document["paths"][path][method.lower()]
        if operation.get("security") == []:
            assert path == DOC
            continue
        protected += 1
        assert "401" in operation["responses"], (method, path)
        body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
        reply = await api.call(method, _concrete(path), body, token=None)
        assert reply.status == 401, (method, path, reply.status, reply.text)
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
        assert reply.json["error"] == "unauthorized"
    assert protected >= 20


def check_answer(
    document: dict[str, Any], method: str, path: str, status: str | int, body: Any
) -> None:
    """`body` validates against the JSON schema the document gives for this answer."""
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    schema = response["content"]["application/json"]["schema"]
    resolved = {"paths": document["paths"], "components": document["components"]}
    OAS31Validator({**resolved, **schema}).validate(body)


@dataclass(frozen=True)
class Attempt:
    """One request meant to produce one status. Paths may name {user}, {device}, {other}."""

    path: str
    body: Any = None
    raw: str | None = None
    token: str | None = ADMIN
    repeat: int = 1  # 429 needs the failed attempts that lead to it


BIG = {"label": "x" * SMALL_BODY}

# For each operation: a request that really produces each status the operation can answer.
REPRODUCERS: dict[tuple[str, str], dict[int, Attempt]] = {
    ("PUT", "/api/v1/users/{id}/primary-device"): {
        200: Attempt("/api/v1/users/{user}/primary-device", {"device_id": "{device}"}),
        401: Attempt("/api/v1/users/{user}/primary-device", {"device_id": 1}, token=None),
        429: Attempt(
            "/api/v1/users/{user}/primary-device", {"device_id": 1}, token="pvd_wrong", repeat=11
        ),
        403: Attempt("/api/v1/users/{user}/primary-device", {"device_id": 1}, token=READ),
        404: Attempt("/api/v1/users/9999/primary-device", {"device_id": "{device}"}),
        409: Attempt("/api/v1/users/{user}/primary-device", {"device_id": "{other}"}),
        413: Attempt("/api/v1/users/{user}/primary-device", BIG),
        422: Attempt("/api/v1/users/{user}/primary-device", raw="[]"),
    },
    ("PATCH", "/api/v1/devices/{id}"): {
        200: Attempt("/api/v1/devices/{device}", {"label": "desk"}),
        401: Attempt("/api/v1/devices/{device}", {"label": "desk"}, token=None),
        429: Attempt("/api/v1/devices/{device}", {"label": "desk"}, token="pvd_wrong", repeat=11),
        403: Attempt("/api/v1/devices/{device}", {"label": "desk"}, token=READ),
        404: Attempt("/api/v1/devices/9999", {"label": "desk"}),
        409: Attempt("/api/v1/devices/{device}", {"extension": "300"}),
        413: Attempt("/api/v1/devices/{device}", BIG),
        422: Attempt("/api/v1/devices/{device}", {"active": "yes"}),
    },
    ("GET", "/api/v1/users/{id}"): {
        200: Attempt("/api/v1/users/{user}"),
        401: Attempt("/api/v1/users/{user}", token=None),
        429: Attempt("/api/v1/users/{user}", token="pvd_wrong", repeat=11),
        404: Attempt("/api/v1/users/9999"),
        422: Attempt("/api/v1/users/abc"),
    },
    ("GET", "/api/v1/devices"): {
        200: Attempt("/api/v1/devices"),
        401: Attempt("/api/v1/devices", token=None),
        429: Attempt("/api/v1/devices", token="pvd_wrong", repeat=11),
        422: Attempt("/api/v1/devices?limit=ten"),
    },
    ("POST", "/api/v1/users"): {
        201: Attempt(
            "/api/v1/users", {"username": "new", "display_name": "New", "main_extension": "500"}
        ),
        401: Attempt("/api/v1/users", {}, token=None),
        429: Attempt("/api/v1/users", {}, token="pvd_wrong", repeat=11),
        403: Attempt("/api/v1/users", {}, token=READ),
        409: Attempt(
            "/api/v1/users", {"username": "mrossi", "display_name": "M", "main_extension": "501"}
        ),
        413: Attempt("/api/v1/users", BIG),
        422: Attempt("/api/v1/users", {"username": 5}),
    },
}


def _fill(value: Any, ids: dict[str, int]) -> Any:
    """Put the world's ids into a path or body ("{device}" alone becomes an integer)."""
    if isinstance(value, str):
        whole = value.strip("{}")
        return ids[whole] if value == f"{{{whole}}}" and whole in ids else value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.fixture
async def small(api_factory: ApiFactory) -> tuple[Api, dict[str, int]]:
    """An API with a 4 KiB body limit over two users with one device each."""
    api = await api_factory(max_body_bytes=SMALL_BODY)
    user = await api.user("mrossi", "200")
    other_user = await api.user("bob", "300")
    device = await api.device("200", mac_for(1), user_id=user["id"])
    other = await api.device("300", mac_for(2), user_id=other_user["id"])
    return api, {"user": user["id"], "device": device["id"], "other": other["id"]}


@pytest.mark.parametrize(
    "operation",
    list(REPRODUCERS),
    ids=[f"{method} {path}" for method, path in REPRODUCERS],
)
async def test_documented_statuses_are_real(
    small: tuple[Api, dict[str, int]], operation: tuple[str, str]
) -> None:
    """Each status documented for the operation is produced by a real request, and vice versa."""
    api, ids = small
    method, path = operation
    attempts = REPRODUCERS[operation]
    # The 2xx change state, so they come after the errors; the 429 blocks the address: last.
    for status in sorted(attempts, key=lambda code: (code == 429, -code)):
        attempt = attempts[status]
        token = api.read_token if attempt.token == READ else attempt.token
        for _ in range(attempt.repeat):
            reply = await api.call(
                method,
                _fill(attempt.path, ids),
                _fill(attempt.body, ids),
                raw=attempt.raw,
                token=token,
            )
        assert reply.status == status, (status, reply.text)
    document = await _document(api)
    documented = {int(code) for code in document["paths"][path][method.lower()]["responses"]}
    assert documented == set(attempts)


async def test_answers_match_the_schemas(api: Api) -> None:
    """Real answers validate against the schemas the document gives for them."""
    document = await _document(api)
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 1, "USER_CLIENT": 1})
    user = await api.user(
        "mrossi",
        "200",
        team_app={"enabled": True, "gsm_mode": True, "gsm_number": "+393331234567"},
        client={"enabled": True, "web_phone": True},
    )
    device = await api.device("202", mac_for(1), user_id=user["id"])
    changed = await api.ok(
        "PUT", f"/api/v1/users/{user['id']}/primary-device", {"device_id": device["id"]}
    )
    error = await api.call("GET", "/api/v1/users/9999")
    samples = [
        ("get", "/api/v1/users/{id}", "200", await api.ok("GET", f"/api/v1/users/{user['id']}")),
        ("put", "/api/v1/users/{id}/primary-device", "200", changed),
        ("get", "/api/v1/users", "200", await api.ok("GET", "/api/v1/users")),
        ("get", "/api/v1/devices/{id}", "200", device),
        ("get", "/api/v1/devices", "200", await api.ok("GET", "/api/v1/devices")),
        ("get", "/api/v1/models", "200", await api.ok("GET", "/api/v1/models")),
        ("get", "/api/v1/licences", "200", await api.ok("GET", "/api/v1/licences")),
        ("get", "/api/v1/settings", "200", await api.ok("GET", "/api/v1/settings")),
        ("get", "/api/v1/directory/{number}", "200", await api.ok("GET", "/api/v1/directory/202")),
        ("get", "/api/v1/audit", "200", await api.ok("GET", "/api/v1/audit")),
        ("get", "/api/v1/unprovisioned", "200", await api.ok("GET", "/api/v1/unprovisioned")),
        ("get", "/api/v1/users/{id}", "404", error.json),
    ]
    for method, path, status, body in samples:
        check_answer(document, method, path, status, body)


def test_every_schema_reference_resolves() -> None:
    """No `$ref` points at a schema the document does not define."""
    document = openapi_document()
    references = set(re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(document)))
    assert references
    assert references <= set(document["components"]["schemas"])


async def _world(api: Api, db: Database) -> dict[str, Any]:
    """One of each object, each as full as it gets: what every GET answers about."""
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 1, "USER_CLIENT": 1})
    user = await api.user(
        "mrossi",
        "200",
        team_app={"enabled": True, "gsm_mode": True, "gsm_number": "+393331234567"},
        client={"enabled": True, "web_phone": True, "video_calls": True},
    )
    device = await api.device("202", mac_for(1), user_id=user["id"], label="desk")
    await api.device("203", mac_for(2), user_id=user["id"])
    site = await api.ok(
        "POST", "/api/v1/sites", {"name": "hq", "networks": ["192.0.2.0/24"]}, status=201
    )
    await api.ok(
        "PUT",
        f"/api/v1/users/{user['id']}/keys",
        {"keys": [{"type": "line"}, {"type": "blf", "value": "203", "label": "Second"}]},
    )
    await api.ok(
        "PUT", f"/api/v1/devices/{device['id']}/keys", {"keys": [{"position": 3, "type": "dnd"}]}
    )
    async with db.background() as session:  # what the phone frontends record
        await session.execute(
            update(Device)
            .where(Device.id == device["id"])
            .values(last_seen_at=utcnow(), last_seen_ip="192.0.2.10", last_seen_firmware="1.0")
        )
        session.add(
            UnprovisionedDevice(
                mac=netaddr.EUI(mac_for(9)),
                vendor="yealink",
                first_seen_at=utcnow(),
                last_seen_at=utcnow(),
                last_ip="192.0.2.11",
                requests=2,
            )
        )
    return {"users": user["id"], "devices": device["id"], "sites": site["id"], "number": "203"}


def _get_path(path: str, ids: dict[str, Any]) -> str:
    """A documented GET path with the world's ids in it (a new parameter fails here, loudly)."""
    if "{id}" in path:
        path = path.replace("{id}", str(ids[path.split("/")[3]]))
    if path == "/api/v1/export":
        return path + "?format=json"  # the CSV form is text; checked below
    return path.replace("{number}", ids["number"])


async def test_every_get_answer_matches_its_schema(api_factory: ApiFactory, db: Database) -> None:
    """A real answer of every GET in the document validates against its documented schema."""
    guard = EnumerationGuard(GuardConfig(unknown_per_source=1))
    assert guard.record("192.0.2.99", "unknown_mac") is not None
    api = await api_factory(guard=guard)
    ids = await _world(api, db)
    document = await _document(api)
    gets = sorted(path for method, path in _operations(document) if method == "GET")
    assert len(gets) >= 15
    for path in gets:
        reply = await api.call("GET", _get_path(path, ids))
        assert reply.status == 200, (path, reply.text)
        body = reply.json
        assert body, path  # an empty answer would validate against anything
        if isinstance(body, dict) and "items" in body:
            assert body["items"], path
        check_answer(document, "GET", path, 200, body)
    csv = await api.call("GET", "/api/v1/export")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert "text/csv" in document["paths"]["/api/v1/export"]["get"]["responses"]["200"]["content"]
