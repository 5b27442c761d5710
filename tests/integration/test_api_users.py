"""The product page's Devices tab over HTTP: users, assignment, primary device, licences,
directory, settings and the audit trail (DESIGN.md sections 1 and 4)."""

from __future__ import annotations

from typing import Any

from provisiond.storage.database import Database
from tests.dbdump import unchanged
from tests.integration.api_fixtures import ADMIN_TOKEN_NAME, Api, mac_for

LICENCES = {"APP_USERS": 2, "MCS_APP_WEBRTC": 1, "USER_CLIENT": 2, "MCS_USERS": 0}


async def test_primary_device_flow(api: Api) -> None:
    """Licences, a user, two devices, assign, choose the primary (rule 2), unassign (rule 3)."""
    licences = await api.ok("PUT", "/api/v1/licences", LICENCES)
    assert licences["APP_USERS"] == {"count": 2, "used": 0}
    user = await api.user("mrossi", "200", cli_custom="0612345678")
    assert user["presented_cli"] == "0612345678"
    assert user["devices"] == []
    assert user["primary_device_id"] is None

    d1 = await api.device("200", mac_for(1), user_id=user["id"])
    d2 = await api.device("202", mac_for(2), model="snom-d785")
    assert d1["user_id"] == user["id"]
    assert d2["user_id"] is None

    after = await api.ok("PUT", f"/api/v1/users/{user['id']}/devices/{d2['id']}")
    assert {d["id"] for d in after["devices"]} == {d1["id"], d2["id"]}
    assert after["primary_device_id"] == d1["id"]  # rule 1: the first device stays primary
    assert "main_extension_changed" not in after

    chosen = await api.ok(
        "PUT", f"/api/v1/users/{user['id']}/primary-device", {"device_id": d2["id"]}
    )
    assert chosen["primary_device_id"] == d2["id"]
    assert chosen["main_extension"] == "202"
    assert chosen["main_extension_changed"] == {"old": "200", "new": "202"}

    refused = await api.call("DELETE", f"/api/v1/users/{user['id']}/devices/{d2['id']}")
    assert refused.status == 409
    assert refused.json["field"] == "new_primary"
    assert "new_primary" in refused.json["detail"]

    back = await api.ok(
        "DELETE", f"/api/v1/users/{user['id']}/devices/{d2['id']}?new_primary={d1['id']}"
    )
    assert back["primary_device_id"] == d1["id"]
    assert back["main_extension"] == "200"
    assert back["main_extension_changed"] == {"old": "202", "new": "200"}
    assert [d["id"] for d in back["devices"]] == [d1["id"]]
    assert (await api.ok("GET", f"/api/v1/devices/{d2['id']}"))["user_id"] is None


async def test_move_needs_move_flag(api: Api, db: Database) -> None:
    """Rule 5: a device owned by another user moves only with ?move=true."""
    alice = await api.user("alice", "300")
    bob = await api.user("bob", "400")
    await api.device("301", mac_for(1), user_id=alice["id"])  # alice's primary
    spare = await api.device("302", mac_for(2), user_id=alice["id"])

    async with unchanged(db):
        refused = await api.call("PUT", f"/api/v1/users/{bob['id']}/devices/{spare['id']}")
    assert refused.status == 409
    assert refused.json["field"] == "move"
    assert "move=true" in refused.json["detail"]

    moved = await api.ok("PUT", f"/api/v1/users/{bob['id']}/devices/{spare['id']}?move=true")
    assert [d["id"] for d in moved["devices"]] == [spare["id"]]
    assert moved["primary_device_id"] == spare["id"]
    alice_now = await api.ok("GET", f"/api/v1/users/{alice['id']}")
    assert spare["id"] not in {d["id"] for d in alice_now["devices"]}


async def test_licence_refusal_names_the_module(api: Api, db: Database) -> None:
    """Rule 4: enabling a feature with its module exhausted is a 409 naming the module."""
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 1})
    await api.user("first", "500", team_app={"enabled": True})
    second = await api.user("second", "501")
    async with unchanged(db):
        reply = await api.call(
            "PATCH", f"/api/v1/users/{second['id']}", {"team_app": {"enabled": True}}
        )
    assert reply.status == 409
    body = reply.json
    assert body["error"] == "licence_refused"
    assert body["module"] == "APP_USERS"
    assert "APP_USERS" in body["detail"]
    assert body["field"] == "team_app.enabled"

    # Disabling frees the seat; then the second user gets it.
    first = (await api.ok("GET", "/api/v1/users?search=first"))["items"][0]
    await api.ok("PATCH", f"/api/v1/users/{first['id']}", {"team_app": {"enabled": False}})
    granted = await api.ok(
        "PATCH", f"/api/v1/users/{second['id']}", {"team_app": {"enabled": True}}
    )
    assert granted["team_app"]["enabled"] is True
    assert (await api.ok("GET", "/api/v1/licences"))["APP_USERS"] == {"count": 1, "used": 1}


async def _directory_user(api: Api) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A user with two active devices, one inactive, Team App in GSM mode and the web phone."""
    await api.ok("PUT", "/api/v1/licences", LICENCES)
    user = await api.user(
        "gverdi",
        "600",
        team_app={"enabled": True, "gsm_mode": True, "gsm_number": "+393331234567"},
        client={"enabled": True, "web_phone": True},
    )
    devices = [
        await api.device("600", mac_for(1), user_id=user["id"]),
        await api.device("601", mac_for(2), user_id=user["id"]),
        await api.device("602", mac_for(3), user_id=user["id"], active=False),
    ]
    return user, devices


async def test_directory_by_main_and_device_extension(api: Api) -> None:
    """Calling the main extension rings every active device, the Team App and the web phone."""
    user, devices = await _directory_user(api)
    by_main = await api.ok("GET", "/api/v1/directory/600")
    assert by_main["matched"] == "main_extension"
    assert by_main["user"]["id"] == user["id"]
    assert by_main["presented_cli"] == "600"
    targets = by_main["ring_targets"]
    rung = [t["device_id"] for t in targets if t["type"] == "device"]
    assert rung == [devices[0]["id"], devices[1]["id"]]  # primary first; 602 is inactive
    assert [t["primary"] for t in targets if t["type"] == "device"] == [True, False]
    app = next(t for t in targets if t["type"] == "team_app")
    assert app["gsm"] == {
        "number": "+393331234567",
        "fallback_timeout_s": 10,
        "callback_enabled": True,
    }
    assert any(t["type"] == "web_phone" for t in targets)

    by_device = await api.ok("GET", "/api/v1/directory/602")
    assert by_device["matched"] == "device_extension"
    assert by_device["user"]["id"] == user["id"]
    assert by_device["ring_targets"] == targets

    missing = await api.call("GET", "/api/v1/directory/999")
    assert missing.status == 404
    assert missing.json["field"] == "number"


async def test_directory_without_gsm_or_web_phone(api: Api) -> None:
    """Turning GSM mode and the web phone off removes the GSM details and the web phone."""
    user, _ = await _directory_user(api)
    await api.ok(
        "PATCH",
        f"/api/v1/users/{user['id']}",
        {"team_app": {"gsm_mode": False}, "client": {"web_phone": False}},
    )
    targets = (await api.ok("GET", "/api/v1/directory/601"))["ring_targets"]
    app = next(t for t in targets if t["type"] == "team_app")
    assert "gsm" not in app
    assert not any(t["type"] == "web_phone" for t in targets)


async def test_models_catalogue_has_every_vendor(api: Api) -> None:
    """GET /models lists every vendor of reference/vendors.md and the ones added since;
    ?vendor= filters."""
    models = await api.ok("GET", "/api/v1/models")
    vendors = {m["vendor"] for m in models}
    assert vendors == {
        "yealink", "polycom", "cisco_spa", "cisco_sep", "grandstream", "snom",
        "fanvil", "gigaset", "aastra", "panasonic", "htek",
        "alcatel", "avaya", "sangoma", "obihai",
    }  # fmt: skip
    assert {"id", "vendor", "name"} <= set(models[0])
    snom = await api.ok("GET", "/api/v1/models?vendor=snom")
    assert snom
    assert {m["vendor"] for m in snom} == {"snom"}


async def test_settings_nested_partial_update(api: Api) -> None:
    """PUT /settings merges nested objects; an invalid timezone is a 422 naming the field."""
    before = await api.ok("GET", "/api/v1/settings")
    assert before["sip"]["registrar"] == "pbx.example.test"
    assert before["timezone"] == "Europe/Rome"
    after = await api.ok("PUT", "/api/v1/settings", {"team_app": {"fallback_timeout_s": 25}})
    assert after["team_app"] == {**before["team_app"], "fallback_timeout_s": 25}
    assert after["sip"] == before["sip"]
    assert await api.ok("GET", "/api/v1/settings") == after

    sip = await api.ok("PUT", "/api/v1/settings", {"sip": {"port": 5080}})
    assert sip["sip"] == {**before["sip"], "port": 5080}
    assert sip["team_app"]["fallback_timeout_s"] == 25

    bad = await api.call("PUT", "/api/v1/settings", {"timezone": "Mars/Olympus"})
    assert bad.status == 422
    assert bad.json["field"] == "timezone"
    assert (await api.ok("GET", "/api/v1/settings"))["timezone"] == "Europe/Rome"


async def test_settings_default_reaches_users(api: Api) -> None:
    """A user inheriting the Team App timeout sees a new platform default."""
    await api.ok("PUT", "/api/v1/licences", LICENCES)
    user = await api.user("inherit", "700", team_app={"enabled": True})
    assert user["team_app"]["fallback_timeout_inherited"] is True
    await api.ok("PUT", "/api/v1/settings", {"team_app": {"fallback_timeout_s": 42}})
    again = await api.ok("GET", f"/api/v1/users/{user['id']}")
    assert again["team_app"]["fallback_timeout_s"] == 42


async def test_audit_names_the_token(api: Api) -> None:
    """Every mutation leaves an audit row whose actor is the calling token's name."""
    await api.ok("PUT", "/api/v1/licences", LICENCES)
    user = await api.user("audited", "800")
    device = await api.device("801", mac_for(1))
    await api.ok("PUT", f"/api/v1/users/{user['id']}/devices/{device['id']}")
    await api.ok("PATCH", f"/api/v1/devices/{device['id']}", {"label": "desk"})
    await api.ok("PUT", "/api/v1/settings", {"ntp_server": "ntp2.example.test"})
    await api.ok("DELETE", f"/api/v1/users/{user['id']}", status=204)
    await api.ok("DELETE", f"/api/v1/devices/{device['id']}", status=204)

    entries = (await api.ok("GET", "/api/v1/audit?limit=500"))["items"]
    ours = [(e["action"], e["object_id"]) for e in entries if e["actor"] == ADMIN_TOKEN_NAME]
    assert ours == [
        ("device.delete", str(device["id"])),
        ("user.delete", str(user["id"])),
        ("settings.update", None),
        ("device.update", str(device["id"])),
        ("user.assign_device", str(user["id"])),
        ("device.create", str(device["id"])),
        ("user.create", str(user["id"])),
        ("licences.update", None),
    ]
    # Reads and refused requests leave no row.
    await api.call("PUT", f"/api/v1/users/{user['id']}/devices/999")
    total = (await api.ok("GET", "/api/v1/audit"))["total"]
    assert total == len(entries)
