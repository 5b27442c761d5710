"""Every refusal of the admin API: the right status, the JSON error shape naming the field, no
stack trace, never a 500, and the whole database unchanged (DESIGN.md section 4, rule 7)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp.web_request import BaseRequest

from provisiond.storage.database import Database
from tests.dbdump import dump
from tests.integration.api_fixtures import ADMIN, Api, ApiFactory, mac_for

READ = "read-only"  # sentinel: send the read-only token
SMALL_BODY = 4096


@dataclass(frozen=True)
class Bad:
    """One bad request and the answer it must get. Paths may name {user}, {bob}, {device}."""

    method: str
    path: str
    status: int
    error: str
    field: str | None = None
    body: Any = None
    raw: str | bytes | None = None
    token: str | None = ADMIN
    detail: str | None = None  # a fragment the detail must contain


def _device(**fields: Any) -> dict[str, Any]:
    return {"extension": "250", "model": "yealink-t46s", "mac": mac_for(50), **fields}


def _user(**fields: Any) -> dict[str, Any]:
    return {"username": "newuser", "display_name": "New User", "main_extension": "250", **fields}


CASES: dict[str, Bad] = {
    # MACs
    "malformed-mac": Bad(
        "POST", "/api/v1/devices", 422, "invalid", "mac",
        body=_device(mac="00:15:65:zz:00:01"), detail="00:15:65:aa:bb:cc",
    ),
    "sloppy-mac-on-patch": Bad(
        "PATCH", "/api/v1/devices/{device}", 422, "invalid", "mac",
        body={"mac": "0:15:65:a:b:c"}, detail="00:15:65:aa:bb:cc",
    ),
    "duplicate-mac-other-notation": Bad(
        "POST", "/api/v1/devices", 409, "conflict", "mac", body=_device(mac="00-15-65-00-00-01")
    ),
    # Uniqueness
    "duplicate-extension": Bad(
        "POST", "/api/v1/devices", 409, "conflict", "extension", body=_device(extension="200")
    ),
    "duplicate-username": Bad(
        "POST", "/api/v1/users", 409, "conflict", "username", body=_user(username="mrossi")
    ),
    "duplicate-main-extension": Bad(
        "POST", "/api/v1/users", 409, "conflict", "main_extension", body=_user(main_extension="200")
    ),
    "main-extension-is-others-device": Bad(
        "PATCH", "/api/v1/users/{bob}", 409, "conflict", "main_extension",
        body={"main_extension": "200"},
    ),
    # Unknown things
    "unknown-model": Bad(
        "POST", "/api/v1/devices", 422, "invalid", "model", body=_device(model="acme-9000"),
        detail="acme-9000",
    ),
    "unknown-user": Bad("GET", "/api/v1/users/9999", 404, "not_found", "user_id"),
    "unknown-user-patch": Bad(
        "PATCH", "/api/v1/users/9999", 404, "not_found", "user_id", body={"display_name": "X"}
    ),
    "unknown-user-on-device-create": Bad(
        "POST", "/api/v1/devices", 404, "not_found", "user_id", body=_device(user_id=9999)
    ),
    "unknown-user-on-assign": Bad(
        "PUT", "/api/v1/users/9999/devices/{device}", 404, "not_found", "user_id"
    ),
    "unknown-device": Bad("GET", "/api/v1/devices/9999", 404, "not_found", "device_id"),
    "unknown-device-on-assign": Bad(
        "PUT", "/api/v1/users/{user}/devices/9999", 404, "not_found", "device_id"
    ),
    "unknown-device-as-primary": Bad(
        "PUT", "/api/v1/users/{user}/primary-device", 404, "not_found", "device_id",
        body={"device_id": 9999},
    ),
    "delete-unknown-device": Bad("DELETE", "/api/v1/devices/9999", 404, "not_found", "device_id"),
    "unknown-number": Bad("GET", "/api/v1/directory/999", 404, "not_found", "number"),
    # Rules
    "primary-of-another-user": Bad(
        "PUT", "/api/v1/users/{bob}/primary-device", 409, "conflict", "device_id",
        body={"device_id": "{device}"},
    ),
    "unassign-not-assigned": Bad(
        "DELETE", "/api/v1/users/{bob}/devices/{device}", 404, "not_found", "device_id"
    ),
    "exhausted-licence-patch": Bad(
        "PATCH", "/api/v1/users/{bob}", 409, "licence_refused", "team_app.enabled",
        body={"team_app": {"enabled": True}}, detail="APP_USERS",
    ),
    "exhausted-licence-create": Bad(
        "POST", "/api/v1/users", 409, "licence_refused", "team_app.enabled",
        body=_user(team_app={"enabled": True}), detail="APP_USERS",
    ),
    "absent-licence": Bad(
        "PATCH", "/api/v1/users/{bob}", 409, "licence_refused", "client.enabled",
        body={"client": {"enabled": True}}, detail="USER_CLIENT",
    ),
    "licence-below-use": Bad(
        "PUT", "/api/v1/licences", 409, "conflict", "APP_USERS", body={"APP_USERS": 0}
    ),
    "unknown-licence-module": Bad(
        "PUT", "/api/v1/licences", 422, "invalid", "GOLD", body={"GOLD": 1}
    ),
    "negative-licence": Bad(
        "PUT", "/api/v1/licences", 422, "invalid", "USER_CLIENT", body={"USER_CLIENT": -1}
    ),
    "smart-working-without-mcs": Bad(
        "PATCH", "/api/v1/users/{user}", 409, "conflict", "team_app.smart_working",
        body={"team_app": {"smart_working": True}},
    ),
    # Authentication and authorisation
    "missing-token": Bad("GET", "/api/v1/users", 401, "unauthorized", token=None),
    "missing-token-on-write": Bad(
        "POST", "/api/v1/users", 401, "unauthorized", body=_user(), token=None
    ),
    "wrong-token": Bad("GET", "/api/v1/users", 401, "unauthorized", token="pvd_" + "x" * 43),
    "foreign-token": Bad("GET", "/api/v1/users", 401, "unauthorized", token="not-ours"),
    "read-only-create": Bad("POST", "/api/v1/users", 403, "forbidden", body=_user(), token=READ),
    "read-only-assign": Bad(
        "PUT", "/api/v1/users/{bob}/devices/{device}?move=true", 403, "forbidden", token=READ
    ),
    "read-only-delete": Bad("DELETE", "/api/v1/devices/{device}", 403, "forbidden", token=READ),
    "read-only-settings": Bad(
        "PUT", "/api/v1/settings", 403, "forbidden", body={"ntp_server": "x"}, token=READ
    ),
    # Bodies
    "malformed-json": Bad("POST", "/api/v1/users", 422, "invalid", "body", raw='{"username": '),
    "not-utf8-json": Bad(
        "POST", "/api/v1/users", 422, "invalid", "body", raw=b'{"username": "\xff"}'
    ),
    "json-array": Bad("POST", "/api/v1/users", 422, "invalid", "body", raw="[1, 2]"),
    "json-string": Bad("PATCH", "/api/v1/devices/{device}", 422, "invalid", "body", raw='"x"'),
    "json-null": Bad(
        "PUT", "/api/v1/users/{user}/primary-device", 422, "invalid", "body", raw="null"
    ),
    "licences-array": Bad("PUT", "/api/v1/licences", 422, "invalid", "body", raw="[1]"),
    "settings-array": Bad("PUT", "/api/v1/settings", 422, "invalid", "body", raw="[]"),
    "no-body": Bad("POST", "/api/v1/devices", 422, "invalid", "body"),
    "number-extension": Bad(
        "POST", "/api/v1/users", 422, "invalid", "main_extension", body=_user(main_extension=200)
    ),
    "string-bool": Bad(
        "PATCH", "/api/v1/devices/{device}", 422, "invalid", "active", body={"active": "yes"}
    ),
    "bool-as-id": Bad(
        "PUT", "/api/v1/users/{user}/primary-device", 422, "invalid", "device_id",
        body={"device_id": True},
    ),
    "string-id": Bad(
        "PUT", "/api/v1/users/{user}/primary-device", 422, "invalid", "device_id",
        body={"device_id": "1"},
    ),
    "letters-extension": Bad(
        "POST", "/api/v1/devices", 422, "invalid", "extension", body=_device(extension="20a")
    ),
    "unknown-field": Bad(
        "POST", "/api/v1/users", 422, "invalid", "colour", body=_user(colour="red")
    ),
    "unknown-nested-field": Bad(
        "PATCH", "/api/v1/users/{user}", 422, "invalid", "team_app.colour",
        body={"team_app": {"colour": "red"}},
    ),
    "owner-through-patch": Bad(
        "PATCH", "/api/v1/devices/{device}", 422, "invalid", "user_id", body={"user_id": 1}
    ),
    "bad-timezone": Bad(
        "PUT", "/api/v1/settings", 422, "invalid", "timezone", body={"timezone": "Mars/Olympus"}
    ),
    "bad-port": Bad(
        "PUT", "/api/v1/settings", 422, "invalid", "sip.port", body={"sip": {"port": 70000}}
    ),
    "unknown-setting": Bad("PUT", "/api/v1/settings", 422, "invalid", "colour", body={"colour": 1}),
    "oversize-body": Bad(
        "POST", "/api/v1/users", 413, "too_large", "body",
        body=_user(display_name="x" * (SMALL_BODY + 1)),
    ),
    # Paths and query strings
    "letters-in-path-id": Bad("GET", "/api/v1/users/abc", 422, "invalid", "id"),
    "negative-path-id": Bad("GET", "/api/v1/devices/-1", 422, "invalid", "id"),
    "huge-path-id": Bad("GET", "/api/v1/users/" + "9" * 30, 422, "invalid", "id"),
    "letters-device-id": Bad(
        "PUT", "/api/v1/users/{user}/devices/xyz", 422, "invalid", "device_id"
    ),
    "letters-limit": Bad("GET", "/api/v1/devices?limit=ten", 422, "invalid", "limit"),
    "letters-new-primary": Bad(
        "DELETE", "/api/v1/users/{user}/devices/{device}?new_primary=x", 422, "invalid",
        "new_primary",
    ),
    "bad-move-flag": Bad(
        "PUT", "/api/v1/users/{bob}/devices/{device}?move=maybe", 422, "invalid", "move"
    ),
    "bad-directory-number": Bad("GET", "/api/v1/directory/abc", 422, "invalid", "number"),
    "superscript-path-id": Bad("GET", "/api/v1/users/%C2%B2", 422, "invalid", "id"),
    "superscript-limit": Bad("GET", "/api/v1/devices?limit=%C2%B2", 422, "invalid", "limit"),
    "id-over-int32": Bad("GET", "/api/v1/users/999999999999", 404, "not_found", "user_id"),
    "string-bool-setting": Bad(
        "PUT", "/api/v1/settings", 422, "invalid", "mcs_interconnected",
        body={"mcs_interconnected": "yes"},
    ),
    "unknown-api-route": Bad("GET", "/api/v1/nope", 404, "not_found"),
    "unknown-route": Bad("GET", "/nope", 404, "not_found"),
    "method-not-allowed": Bad("POST", "/api/v1/models", 405, "method_not_allowed", body={}),
}  # fmt: skip


@pytest.fixture
async def small(api_factory: ApiFactory) -> Api:
    """The API with max_body_bytes=4096, over a small world: one licence seat, in use.

    mrossi (main 200) has Team App and device 200; bob (main 300) has nothing.
    """
    api = await api_factory(max_body_bytes=SMALL_BODY)
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 1})
    await api.user("mrossi", "200", team_app={"enabled": True})
    await api.user("bob", "300")
    return api


async def _ids(api: Api) -> dict[str, int]:
    users = {u["username"]: u["id"] for u in (await api.ok("GET", "/api/v1/users"))["items"]}
    device = await api.device("200", mac_for(1), user_id=users["mrossi"])
    return {"user": users["mrossi"], "bob": users["bob"], "device": device["id"]}


def _fill(value: Any, ids: dict[str, int]) -> Any:
    """Put the world's ids into a case's path or body ("{device}" alone becomes an integer)."""
    if isinstance(value, str):
        whole = value.strip("{}")
        return ids[whole] if value == f"{{{whole}}}" and whole in ids else value.format(**ids)
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


@pytest.mark.parametrize("name", list(CASES))
async def test_bad_request(small: Api, db: Database, name: str) -> None:
    """The answer names the problem in the one error shape and nothing changes."""
    case = CASES[name]
    ids = await _ids(small)
    token = {ADMIN: ADMIN, READ: small.read_token}.get(case.token or "", case.token)
    before = await dump(db)
    reply = await small.call(
        case.method, _fill(case.path, ids), _fill(case.body, ids), raw=case.raw, token=token
    )
    assert reply.status != 500
    assert (reply.status, reply.text) == (case.status, reply.text)
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "Traceback" not in reply.text
    assert 'File "' not in reply.text
    body = reply.json
    assert body["error"] == case.error
    assert isinstance(body["detail"], str)
    assert body["detail"]
    assert body.get("field") == case.field
    if case.detail is not None:
        assert case.detail in body["detail"]
    if case.status == 401:
        assert reply.headers["WWW-Authenticate"].startswith("Bearer")
    assert await dump(db) == before


@pytest.mark.parametrize(
    "path", ["/api/v1/users?search=%00", "/api/v1/models?vendor=%00", "/api/v1/devices?mac=%00"]
)
async def test_nul_in_query_is_not_a_500(
    api: Api, db: Database, path: str, request: pytest.FixtureRequest
) -> None:
    """A NUL character in a query parameter gets an answer (empty or 422), never a 500."""
    reply = await api.call("GET", path)
    assert reply.status in (200, 422), reply.text
    assert reply.headers["Content-Type"].startswith("application/json")


async def test_licence_refusal_names_module(small: Api, db: Database) -> None:
    """A licence refusal carries the module as its own member too."""
    bob = (await small.ok("GET", "/api/v1/users?search=bob"))["items"][0]
    reply = await small.call("PATCH", f"/api/v1/users/{bob['id']}", {"team_app": {"enabled": True}})
    assert reply.status == 409
    assert reply.json["module"] == "APP_USERS"


async def test_read_only_token_reads(small: Api) -> None:
    """A read-only token may GET everything it can see (and HEAD)."""
    for path in ("/api/v1/users", "/api/v1/devices", "/api/v1/licences", "/api/v1/settings"):
        reply = await small.call("GET", path, token=small.read_token)
        assert reply.status == 200, (path, reply.text)
    head = await small.call("HEAD", "/api/v1/models", token=small.read_token)
    assert head.status == 200


async def test_default_body_limit(api: Api, db: Database) -> None:
    """Without options the limit is 1 MiB: one byte more is a 413 JSON answer."""
    before = await dump(db)
    padding = "x" * (1 << 20)
    reply = await api.call("POST", "/api/v1/users", _user(display_name=padding))
    assert reply.status == 413
    assert reply.json["error"] == "too_large"
    assert await dump(db) == before


async def test_authenticated_request_warns_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An authenticated request emits no warning (the suite runs with warnings as errors)."""
    # aiohttp warns once per process and key; forget earlier requests so this test sees it.
    monkeypatch.setattr(BaseRequest, "_seen_str_keys", set(), raising=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", NotAppKeyWarning)
        reply = await api.call("GET", "/api/v1/users")
    assert reply.status == 200, reply.text
