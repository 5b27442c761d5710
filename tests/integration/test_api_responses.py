"""Typed answers (provisiond.frontends.api_models): every write answer is the documented shape,
and an answer that drifts from its model is refused instead of being served.

The GETs are covered in test_openapi.py; here a real request of every other operation that
answers JSON (users, assignments, devices, resync against a SIP peer on 127.0.0.1, sites,
licences, settings, import accepted and refused) validates against the schema the served
document gives for its status.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from provisiond.frontends.api_models import DeviceOut, UserOut, dump
from provisiond.frontends.api_models_fleet import ExportRowOut, ImportRowIn
from provisiond.frontends.openapi import OPERATIONS, openapi_document
from provisiond.services import Services
from provisiond.services.fleet_rows import COLUMNS
from provisiond.storage.models import Device
from tests.integration.api_fixtures import Api, mac_for
from tests.integration.test_openapi import check_answer
from tests.integration.test_resync import PhoneFactory, phones  # noqa: F401  (fixture)

USER: dict[str, Any] = {
    "id": 1,
    "username": "mrossi",
    "display_name": "Mario Rossi",
    "main_extension": "200",
    "cli_custom": None,
    "presented_cli": "200",
    "team_app": {
        "enabled": False,
        "smart_working": False,
        "gsm_mode": False,
        "gsm_number": None,
        "fallback_timeout_s": 10,
        "callback_enabled": True,
        "fallback_timeout_inherited": True,
        "callback_inherited": True,
    },
    "client": {"enabled": False, "smart_working": False, "web_phone": False, "video_calls": False},
    "devices": [],
    "accounts": [],
    "primary_device_id": None,
    "primary_slot": None,
}


def test_an_answer_passes_through_unchanged() -> None:
    """A matching answer comes out as it went in; a field left out stays out (never null)."""
    assert dump(UserOut, USER) == USER
    changed = {**USER, "main_extension_changed": {"old": "200", "new": "202"}}
    assert dump(UserOut, changed) == changed


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("sip_password",), "secret"),  # a key the model does not name (a leak, here)
        (("team_app", "enabled"), "yes"),  # strict: not a boolean
        (("id",), "1"),  # strict: not an integer
        (("client", "web_phone"), None),
    ],
    ids=["unknown key", "string for bool", "string for int", "null for bool"],
)
def test_a_drifted_answer_is_refused(where: tuple[str, ...], value: Any) -> None:
    """An answer that does not match its model raises instead of reaching a client."""
    drifted = copy.deepcopy(USER)
    target: dict[str, Any] = drifted
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    with pytest.raises(ValidationError):
        dump(UserOut, drifted)


def test_a_missing_key_is_refused() -> None:
    """Every key of the shape is required (only `main_extension_changed` may be absent)."""
    for key in USER:
        with pytest.raises(ValidationError):
            dump(UserOut, {k: v for k, v in USER.items() if k != key})
    device = {"id": 1, "extension": "200", "model": "yealink-t46s", "mac": "00:15:65:00:00:01"}
    with pytest.raises(ValidationError):
        dump(DeviceOut, device)


def test_import_and_export_rows_name_the_parser_columns() -> None:
    """The documented import row and export row have exactly the import's columns."""
    assert tuple(ImportRowIn.model_fields) == COLUMNS
    assert tuple(ExportRowOut.model_fields) == COLUMNS


def test_each_route_is_in_the_table_once() -> None:
    """One entry per (method, path): a second one would silently replace the first."""
    assert len({(op.method, op.path) for op in OPERATIONS}) == len(OPERATIONS)


def test_schema_names_are_short_and_unique() -> None:
    """Every answer model has its own schema, named after the class without `Out`."""
    schemas = openapi_document()["components"]["schemas"]
    assert all("__" not in name and not name.endswith("Out") for name in schemas)
    assert {"User", "Device", "Site", "Error", "Settings", "ImportRefused"} <= set(schemas)
    assert schemas["User"]["title"] == "User"


async def _seen(services: Services, device_id: int) -> None:
    async with services.ctx.db.background() as session:
        await session.execute(
            update(Device)
            .where(Device.id == device_id)
            .values(last_seen_ip="127.0.0.1", last_seen_at=datetime.now(UTC))
        )


async def test_every_write_answer_matches_its_schema(
    api: Api,
    services: Services,
    phones: PhoneFactory,  # noqa: F811
) -> None:
    """A real answer of every operation that writes and answers JSON validates."""
    _phone, port = await phones(True)
    resync = services.ctx.settings.resync.model_copy(update={"port": port, "timeout_s": 0.5})
    services.ctx.settings = services.ctx.settings.model_copy(update={"resync": resync})
    document = openapi_document()
    checked: set[tuple[str, str]] = set()

    async def write(
        method: str, template: str, path: str, body: Any = None, *, status: int = 200
    ) -> Any:
        reply = await api.call(method, path, body)
        assert reply.status == status, (method, path, reply.text)
        check_answer(document, method, template, status, reply.json)
        checked.add((method, template))
        return reply.json

    await write("PUT", "/api/v1/licences", "/api/v1/licences", {"APP_USERS": 2})
    await write("PUT", "/api/v1/settings", "/api/v1/settings", {"ntp_server": "ntp.example"})
    user = await write(
        "POST",
        "/api/v1/users",
        "/api/v1/users",
        {"username": "mrossi", "display_name": "M", "main_extension": "200"},
        status=201,
    )
    uid = user["id"]
    await write(
        "PATCH", "/api/v1/users/{id}", f"/api/v1/users/{uid}", {"team_app": {"enabled": True}}
    )
    first = await write(
        "POST",
        "/api/v1/devices",
        "/api/v1/devices",
        {"extension": "201", "model": "snom-d785", "mac": mac_for(1), "user_id": uid},
        status=201,
    )
    second = await api.device("202", mac_for(2))
    device = "/api/v1/devices/{id}"
    await write("PATCH", device, f"/api/v1/devices/{second['id']}", {"label": "desk"})
    account = "/api/v1/devices/{id}/accounts/{slot}"
    with_line = await write(
        "PUT", account, f"/api/v1/devices/{second['id']}/accounts/2", {"extension": "212"}
    )
    assert [a["slot"] for a in with_line["accounts"]] == [2]
    await write("DELETE", account, f"/api/v1/devices/{second['id']}/accounts/2")
    keys = {"keys": [{"type": "blf", "value": "201"}, {"type": "dnd"}]}
    user_keys = await write("PUT", "/api/v1/users/{id}/keys", f"/api/v1/users/{uid}/keys", keys)
    assert [k["type"] for k in user_keys["items"]] == ["blf", "dnd"]
    shown = await write(
        "PUT", device + "/keys", f"/api/v1/devices/{first['id']}/keys", {"keys": [{"type": "dnd"}]}
    )
    assert [k["source"] for k in shown["effective"]] == ["device", "user"]
    assign = "/api/v1/users/{id}/devices/{device_id}"
    await write("PUT", assign, f"/api/v1/users/{uid}/devices/{second['id']}")
    primary = "/api/v1/users/{id}/primary-device"
    changed = await write(
        "PUT", primary, f"/api/v1/users/{uid}/primary-device", {"device_id": second["id"]}
    )
    assert changed["main_extension_changed"] == {"old": "200", "new": "202"}
    await write("DELETE", assign, f"/api/v1/users/{uid}/devices/{first['id']}")
    await write("POST", device + "/release-lock", f"/api/v1/devices/{first['id']}/release-lock")
    await write(
        "POST", device + "/reveal-password", f"/api/v1/devices/{first['id']}/reveal-password"
    )
    await _seen(services, first["id"])
    answer = await write("POST", device + "/resync", f"/api/v1/devices/{first['id']}/resync", {})
    assert answer["status"] == 200
    [bulk] = await write("POST", "/api/v1/resync", "/api/v1/resync", {"model": "snom-d785"})
    assert bulk["device_id"] == first["id"]
    site = await write(
        "POST",
        "/api/v1/sites",
        "/api/v1/sites",
        {"name": "hq", "networks": ["10.1.0.0/16"]},
        status=201,
    )
    await write("PATCH", "/api/v1/sites/{id}", f"/api/v1/sites/{site['id']}", {"policy": "digest"})
    row = {"mac": mac_for(3), "model": "yealink-t46s", "extension": "300", "username": "bob"}
    row["display_name"] = "Bob"
    imported = await write("POST", "/api/v1/import", "/api/v1/import", [row])
    assert imported["users_created"] == 1
    refused = await write("POST", "/api/v1/import", "/api/v1/import", [row], status=422)
    assert refused["error"] == "import_refused"
    assert refused["lines"]

    answering = {
        (op.method, op.path) for op in OPERATIONS if op.method != "GET" and op.answer is not None
    }
    assert checked == answering
