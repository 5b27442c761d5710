"""Devices over HTTP: autocomplete, MAC notations, the write-only SIP password, unprovisioned
MACs being claimed, and the device's own fields (DESIGN.md section 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import netaddr
import pytest
from sqlalchemy import select

from provisiond.storage.database import Database
from provisiond.storage.models import Device, UnprovisionedDevice
from provisiond.storage.secrets import SecretBox
from tests.dbdump import dump
from tests.integration.api_fixtures import Api, mac_for

CANONICAL = "00:15:65:aa:bb:cc"


async def test_autocomplete_is_ordered_and_capped(api: Api) -> None:
    """?extension_prefix=20: devices starting with 20, by extension, never more than 20."""
    matching = [f"20{n:02d}" for n in range(27)] + ["20", "209"]
    others = ["2100", "120", "3020", "2"]
    # Created out of order, so the order of the answer comes from the query.
    for index, extension in enumerate(sorted(matching + others, reverse=True)):
        await api.device(extension, mac_for(index))

    page = await api.ok("GET", "/api/v1/devices?extension_prefix=20&limit=500")
    got = [d["extension"] for d in page["items"]]
    assert got == sorted(matching)[:20]
    assert page["total"] == len(matching)
    assert page["limit"] == 20

    narrower = await api.ok("GET", "/api/v1/devices?extension_prefix=209")
    assert [d["extension"] for d in narrower["items"]] == ["209"]
    nothing = await api.ok("GET", "/api/v1/devices?extension_prefix=99")
    assert nothing == {"items": [], "total": 0, "limit": 20, "offset": 0}
    bad = await api.call("GET", "/api/v1/devices?extension_prefix=2%25")
    assert bad.status == 422
    assert bad.json["field"] == "extension_prefix"


@pytest.mark.parametrize(
    "notation", ["001565AABBCC", "00:15:65:aa:bb:cc", "00-15-65-AA-BB-CC", "0015.65aa.bbcc"]
)
async def test_mac_notations(api: Api, notation: str) -> None:
    """A MAC in any accepted notation is stored once and returned as 00:15:65:aa:bb:cc."""
    created = await api.device("200", notation)
    assert created["mac"] == CANONICAL
    assert (await api.ok("GET", f"/api/v1/devices/{created['id']}"))["mac"] == CANONICAL

    for query in (
        "001565aabbcc",
        "00-15-65-aa-bb-cc",
        "0015.65AA.BBCC",
        "00%3A15%3A65%3AAA%3ABB%3ACC",
    ):
        found = await api.ok("GET", f"/api/v1/devices?mac={query}")
        assert [d["id"] for d in found["items"]] == [created["id"]], query

    again = await api.call(
        "POST", "/api/v1/devices", {"extension": "201", "model": "yealink-t46s", "mac": CANONICAL}
    )
    assert again.status == 409
    assert again.json["field"] == "mac"


async def test_mac_filter_excludes_others(api: Api) -> None:
    """?mac= returns only the device with that MAC; a malformed one is a 422."""
    first = await api.device("200", mac_for(1))
    await api.device("201", mac_for(2))
    found = await api.ok("GET", f"/api/v1/devices?mac={mac_for(1).upper()}")
    assert [d["id"] for d in found["items"]] == [first["id"]]
    none = await api.ok("GET", f"/api/v1/devices?mac={mac_for(3)}")
    assert none["items"] == []
    bad = await api.call("GET", "/api/v1/devices?mac=00:15:65")
    assert bad.status == 422
    assert bad.json["field"] == "mac"


async def test_sip_password_is_write_only(api: Api, db: Database, secrets: SecretBox) -> None:
    """sip_password is accepted on create and patch and appears in no response and no audit row.

    It is stored encrypted: the database holds ciphertext that only the keyring opens.
    """
    first, second = "Zq7-pass-word-91", "Yx8!other~secret"
    user = await api.user("mrossi", "200")
    device = await api.device("200", mac_for(1), user_id=user["id"], sip_password=first)
    stored = await _stored_password(db, device["id"])
    assert first not in stored
    assert secrets.decrypt(stored) == first
    await api.ok("GET", f"/api/v1/devices/{device['id']}")
    await api.ok("PATCH", f"/api/v1/devices/{device['id']}", {"sip_password": second})
    stored = await _stored_password(db, device["id"])
    assert second not in stored
    assert secrets.decrypt(stored) == second

    for path in (
        f"/api/v1/devices/{device['id']}",
        "/api/v1/devices",
        f"/api/v1/devices?mac={mac_for(1)}",
        "/api/v1/devices?extension_prefix=2",
        f"/api/v1/users/{user['id']}",
        "/api/v1/users",
        "/api/v1/directory/200",
        "/api/v1/audit?limit=500",
    ):
        await api.ok("GET", path)
    audit = await dump(db)
    assert audit["audit_log"], "the mutations above must have been audited"

    assert len(api.bodies) >= 12
    for text in api.bodies:
        assert first not in text
        assert second not in text
    shown = await api.ok("GET", f"/api/v1/devices/{device['id']}")
    assert "sip_password" not in shown
    assert "sip_username" in shown
    audit_text = json.dumps(audit["audit_log"])
    assert first not in audit_text
    assert second not in audit_text


async def _stored_password(db: Database, device_id: int) -> str:
    """Read the stored password directly: proves the API accepted it (it can never show it)."""
    async with db.read() as session:
        stored = await session.scalar(select(Device.sip_password).where(Device.id == device_id))
    assert stored is not None
    return stored


async def test_generated_password_is_strong(api: Api, db: Database, secrets: SecretBox) -> None:
    """Without sip_password a strong random one is generated (and still never returned)."""
    device = await api.device("200", mac_for(1))
    other = await api.device("201", mac_for(2))
    generated = secrets.decrypt(await _stored_password(db, device["id"]))
    assert len(generated) >= 16
    assert generated != secrets.decrypt(await _stored_password(db, other["id"]))
    assert device["sip_username"] == "200"
    assert generated not in json.dumps(device)


async def test_unprovisioned_is_listed_and_claimed(api: Api, db: Database) -> None:
    """GET /unprovisioned lists unknown MACs; creating a device with that MAC claims it."""
    seen = datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    async with db.background() as session:  # what the phone frontends record
        session.add(
            UnprovisionedDevice(
                mac=netaddr.EUI("0015.65aa.bbcc"),
                vendor="yealink",
                model_guess="yealink-t46s",
                first_seen_at=seen,
                last_seen_at=seen,
                last_ip="192.0.2.10",
                user_agent="Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc",
                path="/001565aabbcc.cfg",
                requests=3,
            )
        )
    page = await api.ok("GET", "/api/v1/unprovisioned")
    assert page["total"] == 1
    entry = page["items"][0]
    assert entry["mac"] == CANONICAL
    assert (entry["vendor"], entry["ip"], entry["requests"]) == ("yealink", "192.0.2.10", 3)

    await api.device("200", "00-15-65-AA-BB-CC")
    assert (await api.ok("GET", "/api/v1/unprovisioned"))["items"] == []


async def test_patch_and_delete_device(api: Api) -> None:
    """PATCH changes only the fields sent; DELETE removes the device (204, then 404)."""
    device = await api.device("200", mac_for(1), label="reception")
    patched = await api.ok(
        "PATCH",
        f"/api/v1/devices/{device['id']}",
        {"active": False, "model": "snom-d785", "mac": "00-04-13-92-2D-24"},
    )
    assert patched == {
        **device,
        "active": False,
        "model": "snom-d785",
        "mac": "00:04:13:92:2d:24",
    }
    await api.ok("DELETE", f"/api/v1/devices/{device['id']}", status=204)
    gone = await api.call("GET", f"/api/v1/devices/{device['id']}")
    assert gone.status == 404
    assert gone.json["error"] == "not_found"


async def test_primary_extension_change_moves_main_extension(api: Api) -> None:
    """Renumbering the primary device whose extension is the main extension renumbers the user."""
    user = await api.user("mrossi", "200")
    device = await api.device("200", mac_for(1), user_id=user["id"])
    await api.ok("PATCH", f"/api/v1/devices/{device['id']}", {"extension": "210"})
    assert (await api.ok("GET", f"/api/v1/users/{user['id']}"))["main_extension"] == "210"


async def test_delete_primary_needs_new_primary(api: Api) -> None:
    """Deleting a user's primary while others remain follows rule 3, like unassigning."""
    user = await api.user("mrossi", "200")
    primary = await api.device("200", mac_for(1), user_id=user["id"])
    other = await api.device("201", mac_for(2), user_id=user["id"])
    refused = await api.call("DELETE", f"/api/v1/devices/{primary['id']}")
    assert refused.status == 409
    assert refused.json["field"] == "new_primary"
    await api.ok("DELETE", f"/api/v1/devices/{primary['id']}?new_primary={other['id']}", status=204)
    after = await api.ok("GET", f"/api/v1/users/{user['id']}")
    assert after["primary_device_id"] == other["id"]
    assert after["main_extension"] == "201"
