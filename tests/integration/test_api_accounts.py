"""Several SIP accounts per device over HTTP (DESIGN.md, "Accounts"): a DECT base's handsets
belong to different users, and every domain rule holds for each account as for a device."""

from __future__ import annotations

from typing import Any

from provisiond.storage.database import Database
from tests.dbdump import dump
from tests.integration.api_fixtures import Api, mac_for

BASE = "yealink-w80b"  # a DECT base: many accounts
DESK = "yealink-t46s"
ONE_LINE = "cisco-cp-7940"  # two accounts at most


async def _base(api: Api) -> dict[str, Any]:
    return await api.device("500", mac_for(1), model=BASE)


async def _put(api: Api, device: int, slot: int, body: dict[str, Any], **query: str) -> Any:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    return await api.call("PUT", f"/api/v1/devices/{device}/accounts/{slot}{suffix}", body)


async def test_handsets_of_one_base_belong_to_different_users(api: Api) -> None:
    base = await _base(api)
    rossi = await api.user("rossi", "201")
    bianchi = await api.user("bianchi", "202")
    await api.ok("PUT", f"/api/v1/users/{rossi['id']}/devices/{base['id']}")
    answer = await _put(api, base["id"], 2, {"extension": "502", "user_id": bianchi["id"]})
    assert answer.status == 200, answer.text
    assert [a["slot"] for a in answer.json["accounts"]] == [2]
    assert "sip_password" not in answer.text

    listed = await api.ok("GET", f"/api/v1/devices/{base['id']}/accounts")
    assert [(a["slot"], a["extension"], a["user_id"]) for a in listed["items"]] == [
        (1, "500", rossi["id"]),
        (2, "502", bianchi["id"]),
    ]
    assert listed["slots"] == 100

    # Rule 1: the account is Bianchi's first line, so it is primary; the main extension stays.
    user = await api.ok("GET", f"/api/v1/users/{bianchi['id']}")
    assert (user["primary_device_id"], user["primary_slot"]) == (base["id"], 2)
    assert user["main_extension"] == "202"
    assert [a["extension"] for a in user["accounts"]] == ["502"]

    # Rule 2: choosing it explicitly as primary makes its extension the main extension.
    chosen = await api.ok(
        "PUT", f"/api/v1/users/{bianchi['id']}/primary-device", {"device_id": base["id"], "slot": 2}
    )
    assert chosen["main_extension"] == "502"
    assert chosen["main_extension_changed"] == {"old": "202", "new": "502"}
    directory = await api.ok("GET", "/api/v1/directory/502")
    assert directory["user"]["username"] == "bianchi"
    assert [t.get("slot") for t in directory["ring_targets"] if t["type"] == "device"] == [2]


async def test_refusals_name_the_limit_and_change_nothing(api: Api, db: Database) -> None:
    phone = await api.device("600", mac_for(2), model=ONE_LINE)
    rossi = await api.user("rossi", "201")
    other = await api.device("601", mac_for(3), model=DESK)
    before = await dump(db)

    beyond = await _put(api, phone["id"], 3, {"extension": "603"})
    assert beyond.status == 422
    assert beyond.json["field"] == "slot"
    assert "2 SIP accounts" in beyond.json["detail"]
    assert "cisco-cp-7940" in beyond.json["detail"]

    first = await _put(api, phone["id"], 1, {"extension": "603"})
    assert (first.status, first.json["field"]) == (422, "slot")

    taken = await _put(api, phone["id"], 2, {"extension": other["extension"]})
    assert (taken.status, taken.json["field"]) == (409, "extension")
    nobody = await _put(api, phone["id"], 2, {"extension": "603", "user_id": rossi["id"] + 99})
    assert (nobody.status, nobody.json["field"]) == (404, "user_id")
    weak = await _put(api, phone["id"], 2, {"extension": "603", "sip_password": "short"})
    assert (weak.status, weak.json["field"]) == (422, "sip_password")
    assert await dump(db) == before


async def test_extension_unique_across_devices_and_accounts(api: Api) -> None:
    base = await _base(api)
    assert (await _put(api, base["id"], 2, {"extension": "777"})).status == 200
    clash = await api.call(
        "POST", "/api/v1/devices", {"extension": "777", "model": DESK, "mac": mac_for(9)}
    )
    assert (clash.status, clash.json["field"]) == (409, "extension")
    assert "account 2 of device" in clash.json["detail"]
    user = await api.call(
        "POST", "/api/v1/users", {"username": "x", "display_name": "X", "main_extension": "778"}
    )
    assert user.status == 201
    moved = await _put(api, base["id"], 3, {"extension": "778"})
    assert moved.status == 200  # unowned: another user's main extension does not block
    mine = await _put(api, base["id"], 3, {"extension": "778", "user_id": user.json["id"]})
    assert mine.status == 200
    stranger = await api.user("y", "779")
    blocked = await _put(api, base["id"], 4, {"extension": "778", "user_id": stranger["id"]})
    assert blocked.status == 409


async def test_rule_5_and_rule_3_for_accounts(api: Api, db: Database) -> None:
    base = await _base(api)
    rossi = await api.user("rossi", "201")
    bianchi = await api.user("bianchi", "202")
    desk = await api.device("203", mac_for(4), model=DESK)
    assert (
        await _put(api, base["id"], 2, {"extension": "502", "user_id": rossi["id"]})
    ).status == 200
    await api.ok("PUT", f"/api/v1/users/{rossi['id']}/devices/{desk['id']}")
    before = await dump(db)

    # Rule 5: Bianchi cannot take Rossi's handset without move=true.
    refused = await _put(api, base["id"], 2, {"extension": "502", "user_id": bianchi["id"]})
    assert (refused.status, refused.json["field"]) == (409, "move")
    # Rule 3: the handset is Rossi's primary and Rossi has the desk phone too.
    primary_gone = await api.call("DELETE", f"/api/v1/devices/{base['id']}/accounts/2")
    assert (primary_gone.status, primary_gone.json["field"]) == (409, "new_primary")
    whole_base = await api.call("DELETE", f"/api/v1/devices/{base['id']}")
    assert (whole_base.status, whole_base.json["field"]) == (409, "new_primary")
    assert f"primary line of user {rossi['id']}" in whole_base.json["detail"]
    assert await dump(db) == before

    removed = await api.ok(
        "DELETE",
        f"/api/v1/devices/{base['id']}/accounts/2?new_primary={desk['id']}",
    )
    assert removed["accounts"] == []
    user = await api.ok("GET", f"/api/v1/users/{rossi['id']}")
    assert (user["primary_device_id"], user["primary_slot"]) == (desk["id"], 1)
    assert user["main_extension"] == "203"  # rule 2 for the new primary


async def test_model_change_never_strands_an_account(api: Api, db: Database) -> None:
    base = await _base(api)
    assert (await _put(api, base["id"], 5, {"extension": "505"})).status == 200
    before = await dump(db)
    smaller = await api.call("PATCH", f"/api/v1/devices/{base['id']}", {"model": ONE_LINE})
    assert (smaller.status, smaller.json["field"]) == (422, "model")
    assert await dump(db) == before


async def test_models_endpoint_carries_the_catalogue(api: Api) -> None:
    models = await api.ok("GET", "/api/v1/models?vendor=yealink")
    w80b = next(m for m in models if m["id"] == BASE)
    assert w80b["dect"] is True
    assert w80b["handsets"] >= w80b["accounts"] > 1
    assert w80b["boot"]
    assert set(w80b["protocols"]) <= {"tftp", "http", "https"}
    series = await api.ok("GET", f"/api/v1/models?series={w80b['series']}")
    assert {m["series"] for m in series} == {w80b["series"]}


async def test_an_account_can_succeed_a_removed_primary_device(api: Api) -> None:
    """Unassigning the primary device names the new primary line, which may be an account."""
    base = await _base(api)
    rossi = await api.user("rossi", "201")
    desk = await api.device("203", mac_for(5), model=DESK)
    await api.ok("PUT", f"/api/v1/users/{rossi['id']}/devices/{desk['id']}")
    assert (
        await _put(api, base["id"], 4, {"extension": "504", "user_id": rossi["id"]})
    ).status == 200
    user = await api.ok(
        "DELETE",
        f"/api/v1/users/{rossi['id']}/devices/{desk['id']}"
        f"?new_primary={base['id']}&new_primary_slot=4",
    )
    assert (user["primary_device_id"], user["primary_slot"]) == (base["id"], 4)
    assert user["main_extension"] == "504"
    assert user["main_extension_changed"] == {"old": "201", "new": "504"}
