"""Programmable keys over HTTP (issue 16): a user's keys follow them onto their phones, a
device overrides positions, every refusal names the limit and changes nothing, and a BLF on a
colleague follows the colleague's main extension when their primary device changes."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry
from tests.dbdump import dump
from tests.integration.api_fixtures import Api, mac_for

DESK = "yealink-t46s"
SMALL = "yealink-t21p-e2"  # 2 line keys, no module
DECT = "yealink-w80b"  # no line keys at all


def _keys(*items: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(items)}


async def _model(api: Api, model_id: str) -> dict[str, Any]:
    models = await api.ok("GET", "/api/v1/models?vendor=yealink")
    found: dict[str, Any] = next(m for m in models if m["id"] == model_id)
    return found


async def test_user_keys_follow_onto_devices_and_a_device_overrides(api: Api) -> None:
    rossi = await api.user("rossi", "201")
    await api.user("bianchi", "202")
    desk = await api.device("201", mac_for(1), model=DESK, user_id=rossi["id"])
    keys = _keys(
        {"type": "line"},
        {"type": "blf", "value": "202", "label": "Bianchi"},
        {"type": "speed_dial", "value": "0612345678", "label": "Reception"},
        {"position": 5, "type": "park", "value": "701"},
    )
    stored = await api.ok("PUT", f"/api/v1/users/{rossi['id']}/keys", keys)
    assert [(k["position"], k["type"], k["value"]) for k in stored["items"]] == [
        (1, "line", "1"),
        (
            2,
            "blf",
            "202",
        ),
        (3, "speed_dial", "0612345678"),
        (5, "park", "701"),
    ]
    assert [d["device_id"] for d in stored["devices"]] == [desk["id"]]
    assert await api.ok("GET", f"/api/v1/users/{rossi['id']}/keys") == stored

    own = await api.ok(
        "PUT", f"/api/v1/devices/{desk['id']}/keys", _keys({"position": 3, "type": "dnd"})
    )
    assert [(k["position"], k["type"], k["source"]) for k in own["effective"]] == [
        (1, "line", "user"),
        (2, "blf", "user"),
        (3, "dnd", "device"),
        (5, "park", "user"),
    ]
    model = await _model(api, DESK)
    assert own["capacity"] == model["line_keys"] + model["expansion_modules"] * model["module_keys"]
    assert await api.ok("GET", f"/api/v1/devices/{desk['id']}/keys") == own

    # [] removes them all.
    cleared = await api.ok("PUT", f"/api/v1/users/{rossi['id']}/keys", _keys())
    assert cleared["items"] == []


async def test_refusals_name_the_limit_and_change_nothing(api: Api, db: Database) -> None:
    rossi = await api.user("rossi", "201")
    small = await api.device("201", mac_for(2), model=SMALL, user_id=rossi["id"])
    dect = await api.device("300", mac_for(3), model=DECT)
    before = await dump(db)

    beyond = await api.call(
        "PUT", f"/api/v1/devices/{small['id']}/keys", _keys({"position": 3, "type": "dnd"})
    )
    assert beyond.status == 422, beyond.text
    assert beyond.json["field"] == "keys[0].position"
    assert SMALL in beyond.json["detail"]
    assert "2 key positions" in beyond.json["detail"]

    user_beyond = await api.call(
        "PUT", f"/api/v1/users/{rossi['id']}/keys", _keys({"position": 9, "type": "dnd"})
    )
    assert user_beyond.status == 422
    assert "beyond every phone" in user_beyond.json["detail"]
    assert SMALL in user_beyond.json["detail"]

    none = await api.call(
        "PUT", f"/api/v1/devices/{dect['id']}/keys", _keys({"type": "blf", "value": "201"})
    )
    assert none.status == 422
    assert "0 key positions" in none.json["detail"]

    for bad, field in (
        (_keys({"type": "blf", "value": "299"}), "keys[0].value"),  # no such extension
        (_keys({"type": "blf", "value": "20<1"}), "keys[0].value"),
        (_keys({"type": "speed_dial", "value": "12a"}), "keys[0].value"),
        (_keys({"type": "url", "value": "javascript:alert(1)"}), "keys[0].value"),
        (_keys({"type": "dnd", "value": "1"}), "keys[0].value"),
        (_keys({"type": "line", "value": "9"}), "keys[0].value"),  # the T21P E2 has 2
        (_keys({"type": "macro"}), "keys[0].type"),
        (_keys({"type": "dnd", "label": "a\nb"}), "keys[0].label"),
        (_keys({"type": "dnd", "extra": 1}), "keys[0].extra"),
        (_keys({"type": "dnd", "position": 2}, {"type": "dnd", "position": 1}), "keys[1].position"),
        (_keys({"type": "dnd", "position": 0}), "keys[0].position"),
        (_keys({"type": "dnd", "position": True}), "keys[0].position"),
        ({"keys": "dnd"}, "keys"),
        ({"items": []}, "keys"),
    ):
        answer = await api.call("PUT", f"/api/v1/users/{rossi['id']}/keys", bad)
        assert answer.status == 422, (bad, answer.text)
        assert answer.json["field"] == field, (bad, answer.json)
    missing = await api.call("PUT", "/api/v1/users/999/keys", _keys())
    assert missing.status == 404
    assert await dump(db) == before


async def test_an_outside_number_may_be_watched(api: Api) -> None:
    rossi = await api.user("rossi", "201")
    answer = await api.ok(
        "PUT", f"/api/v1/users/{rossi['id']}/keys", _keys({"type": "blf", "value": "+3906123456"})
    )
    assert answer["items"][0]["value"] == "+3906123456"


async def test_blf_follows_a_colleagues_new_main_extension(api: Api, db: Database) -> None:
    rossi = await api.user("rossi", "201")
    bianchi = await api.user("bianchi", "202")
    verdi = await api.user("verdi", "203")
    await api.device("202", mac_for(4), model=DESK, user_id=bianchi["id"])
    second = await api.device("222", mac_for(5), model=DESK, user_id=bianchi["id"])
    rossi_desk = await api.device("201", mac_for(6), model=DESK, user_id=rossi["id"])
    await api.ok(
        "PUT",
        f"/api/v1/users/{rossi['id']}/keys",
        _keys({"type": "blf", "value": "202"}, {"type": "blf", "value": "203"}),
    )
    await api.ok(
        "PUT",
        f"/api/v1/devices/{rossi_desk['id']}/keys",
        _keys({"position": 4, "type": "blf", "value": "202"}),
    )
    await api.ok("PUT", f"/api/v1/users/{verdi['id']}/keys", _keys({"type": "blf", "value": "202"}))

    moved = await api.ok(
        "PUT", f"/api/v1/users/{bianchi['id']}/primary-device", {"device_id": second["id"]}
    )
    assert moved["main_extension"] == "222"

    rossi_keys = await api.ok("GET", f"/api/v1/users/{rossi['id']}/keys")
    assert [k["value"] for k in rossi_keys["items"]] == ["222", "203"]  # 203 did not move
    device_keys = await api.ok("GET", f"/api/v1/devices/{rossi_desk['id']}/keys")
    assert [k["value"] for k in device_keys["items"]] == ["222"]
    verdi_keys = await api.ok("GET", f"/api/v1/users/{verdi['id']}/keys")
    assert [k["value"] for k in verdi_keys["items"]] == ["222"]

    async with db.read() as session:
        rows = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "user.blf_follow"))
        ).all()
    assert len(rows) == 1  # one audited change
    assert rows[0].object_id == str(bianchi["id"])
    assert rows[0].before == {"main_extension": "202"}
    assert rows[0].after == {
        "main_extension": "222",
        "users": sorted([rossi["id"], verdi["id"]]),
        "devices": [rossi_desk["id"]],
    }


async def test_blf_follows_when_the_primary_extension_is_edited(api: Api) -> None:
    rossi = await api.user("rossi", "201")
    bianchi = await api.user("bianchi", "202")
    desk = await api.device("202", mac_for(7), model=DESK, user_id=bianchi["id"])
    await api.ok("PUT", f"/api/v1/users/{rossi['id']}/keys", _keys({"type": "blf", "value": "202"}))
    await api.ok("PATCH", f"/api/v1/devices/{desk['id']}", {"extension": "252"})
    keys = await api.ok("GET", f"/api/v1/users/{rossi['id']}/keys")
    assert [k["value"] for k in keys["items"]] == ["252"]


async def test_a_deleted_user_takes_their_keys(api: Api, db: Database) -> None:
    rossi = await api.user("rossi", "201")
    await api.ok(
        "PUT", f"/api/v1/users/{rossi['id']}/keys", _keys({"type": "dnd"}, {"type": "park"})
    )
    await api.ok("DELETE", f"/api/v1/users/{rossi['id']}", status=204)
    tables = await dump(db)
    assert tables.get("user_keys", []) == []
