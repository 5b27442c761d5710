"""The rules as data, end to end: GET /api/v1/rules serves the tables, the seat count in SQL
follows the licence table, and a bad device gets the same message whether it comes alone
(POST/PATCH /api/v1/devices) or in a bulk import (POST /api/v1/import).

Real aiohttp server on loopback, real SQLite and (when configured) PostgreSQL.
"""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.domain import rules
from provisiond.domain.device_rules import LABEL_MAX_LENGTH
from provisiond.domain.errors import Conflict, LicenceRefused
from provisiond.domain.rules import LicenceSeat
from provisiond.services import Services
from provisiond.services.commands import ClientInput, UserCreate, UserPatch
from provisiond.services.platform import licences_used
from tests.integration.api_fixtures import Api, mac_for

ACTOR = "rules@test"
RULES = "/api/v1/rules"


async def test_get_rules_answers_the_tables(api: Api) -> None:
    answer = await api.ok("GET", RULES)
    assert answer["licence_modules"] == ["APP_USERS", "MCS_APP_WEBRTC", "USER_CLIENT", "MCS_USERS"]
    assert answer["licences"] == [
        {"feature": seat.feature, "module": seat.module} for seat in rules.LICENCE_SEATS
    ]
    assert answer["dependencies"] == [
        {"field": d.field, "needs": d.needs, "kind": d.kind, "detail": d.detail}
        for d in rules.DEPENDENCIES
    ]
    assert {"feature": "client.smart_working", "module": "MCS_USERS"} in answer["licences"]
    assert {
        "field": "client.video_calls",
        "needs": "client.web_phone",
        "kind": "switch",
        "detail": "video calls need the web phone",
    } in answer["dependencies"]


async def test_get_rules_needs_a_token_and_a_read_token_will_do(api: Api) -> None:
    missing = await api.call("GET", RULES, token=None)
    assert (missing.status, missing.json["error"]) == (401, "unauthorized")
    wrong = await api.call("GET", RULES, token="pvd_" + "x" * 43)
    assert wrong.status == 401
    read = await api.call("GET", RULES, token=api.read_token)
    assert read.status == 200
    assert read.json == await api.ok("GET", RULES)
    assert read.headers["Cache-Control"] == "no-store"
    assert (await api.call("POST", RULES, {}, token=api.admin_token)).status == 405


async def test_an_added_licence_row_is_counted_in_sql_and_checked(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One row added to rules.LICENCE_SEATS: the SQL counts it, the rule refuses past it."""
    await services.platform.put_licences({"USER_CLIENT": 10}, ACTOR)
    web = ClientInput(enabled=True, web_phone=True)
    await services.users.create(
        UserCreate(username="a", display_name="A", main_extension="201", client=web), ACTOR
    )
    monkeypatch.setattr(
        rules, "LICENCE_SEATS", (*rules.LICENCE_SEATS, LicenceSeat("client.web_phone", "WEBRTC"))
    )
    async with services.ctx.db.read() as session:
        used = await licences_used(session)
    assert used["WEBRTC"] == 1
    assert used["USER_CLIENT"] == 1
    licences = await services.platform.get_licences()
    assert licences["WEBRTC"] == {"count": 0, "used": 1}

    second = UserCreate(username="c", display_name="C", main_extension="203", client=web)
    with pytest.raises(LicenceRefused) as info:
        await services.users.create(second, ACTOR)
    assert (info.value.module, info.value.field) == ("WEBRTC", "client.web_phone")
    await services.platform.put_licences({"WEBRTC": 2}, ACTOR)
    created = await services.users.create(second, ACTOR)
    assert (await services.platform.get_licences())["WEBRTC"] == {"count": 2, "used": 2}
    with pytest.raises(Conflict):
        await services.platform.put_licences({"WEBRTC": 1}, ACTOR)
    # Turning the Client off frees both seats (the cascade turns the web phone off too).
    await services.users.update(created["id"], UserPatch(client=ClientInput(enabled=False)), ACTOR)
    after = await services.platform.get_licences()
    assert after["WEBRTC"]["used"] == after["USER_CLIENT"]["used"] == 1


# --- one device, or the same device in a bulk import: the same refusal ------------------------


def _row(**values: Any) -> dict[str, Any]:
    return {"mac": mac_for(900), "model": "yealink-t46s", "extension": "299", **values}


BAD_DEVICES = [
    pytest.param({"mac": mac_for(1).upper()}, "mac", id="mac-taken"),
    pytest.param({"mac": "00-15-65-00-00-01"}, "mac", id="mac-taken-other-notation"),
    pytest.param({"extension": "201"}, "extension", id="extension-taken"),
    pytest.param({"model": "acme-9000"}, "model", id="unknown-model"),
    pytest.param({"label": "x" * (LABEL_MAX_LENGTH + 1)}, "label", id="label-too-long"),
    pytest.param({"label": "desk\nkey=1"}, "label", id="label-control-character"),
    pytest.param({"extension": "20a"}, "extension", id="bad-extension"),
    pytest.param({"mac": "00:15:65:aa:bb"}, "mac", id="bad-mac"),
]


@pytest.mark.parametrize(("values", "field"), BAD_DEVICES)
async def test_single_and_bulk_paths_refuse_with_one_message(
    api: Api, values: dict[str, Any], field: str
) -> None:
    await api.device("201", mac_for(1))
    before = await api.ok("GET", "/api/v1/devices")
    single = await api.call("POST", "/api/v1/devices", _row(**values))
    assert single.status in (409, 422), single.text
    bulk = await api.call("POST", "/api/v1/import", [_row(**values)])
    assert bulk.status == 422, bulk.text
    lines = bulk.json["lines"]
    assert [(line["line"], line["field"]) for line in lines] == [(1, field)]
    assert (single.json["field"], single.json["detail"]) == (field, lines[0]["detail"])
    assert await api.ok("GET", "/api/v1/devices") == before  # nothing changed either way


@pytest.mark.parametrize(
    ("values", "field"),
    [
        pytest.param({"mac": mac_for(1)}, "mac", id="mac-taken"),
        pytest.param({"extension": "201"}, "extension", id="extension-taken"),
        pytest.param({"model": "acme-9000"}, "model", id="unknown-model"),
        pytest.param({"label": "x" * (LABEL_MAX_LENGTH + 1)}, "label", id="label-too-long"),
    ],
)
async def test_a_change_is_refused_with_the_same_message(
    api: Api, values: dict[str, Any], field: str
) -> None:
    await api.device("201", mac_for(1))
    other = await api.device("202", mac_for(2))
    change = await api.call("PATCH", f"/api/v1/devices/{other['id']}", values)
    bulk = await api.call("POST", "/api/v1/import", [_row(**values)])
    assert [line["field"] for line in bulk.json["lines"]] == [field]
    assert (change.json["field"], change.json["detail"]) == (field, bulk.json["lines"][0]["detail"])
    assert await api.ok("GET", f"/api/v1/devices/{other['id']}") == other
