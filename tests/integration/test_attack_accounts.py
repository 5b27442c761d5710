"""The attack round of issue 15 (several accounts per device), kept as tests.

A helper attacked a running server with only docs/security.md; each test below is one of its
findings, reproduced through the admin API (a real aiohttp server on loopback), and fails on
the code it was found in:
- the bulk import skipped the account checks: a new user's main extension could be another
  user's handset extension, and a device could take an account's extension;
- U+FFFE/U+FFFF and C1 controls passed the "no control characters" check and made every XML
  device file of a DECT base unreadable;
- a JSON lone surrogate ("\\ud800") and an out-of-range user id were 500s with tracebacks;
- each account PUT copied the whole device, every handset, into its audit row (a 1000-slot
  base grew the database by 142 MB, and reading the audit log stalled phone requests): the
  growth was quadratic; now each change adds one account's size;
- a PUT that took a primary account from its owner asked for a `new_primary` it did not take.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisiond.storage.database import Database
from tests.dbdump import dump
from tests.integration.api_fixtures import Api, mac_for

BASE = "yealink-w80b"
DESK = "yealink-t46s"


async def _handset(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """A DECT base whose slot 2 (extension 502) is Bianchi's."""
    base = await api.device("500", mac_for(1), model=BASE)
    bianchi = await api.user("bianchi", "202")
    reply = await api.call(
        "PUT",
        f"/api/v1/devices/{base['id']}/accounts/2",
        {"extension": "502", "user_id": bianchi["id"]},
    )
    assert reply.status == 200, reply.text
    return base, bianchi


async def test_import_keeps_the_account_rules(api: Api, db: Database) -> None:
    await _handset(api)
    before = await dump(db)
    main = {"mac": mac_for(2), "model": DESK, "extension": "66001", "username": "mallory"}
    main |= {"display_name": "M", "main_extension": "502"}
    refused = await api.call("POST", "/api/v1/import", [main])
    assert refused.status == 422, refused.text
    assert [line["field"] for line in refused.json["lines"]] == ["main_extension"]
    same = await api.call(
        "POST", "/api/v1/import", [{"mac": mac_for(3), "model": DESK, "extension": "502"}]
    )
    assert same.status == 422, same.text
    assert [line["field"] for line in same.json["lines"]] == ["extension"]
    assert await dump(db) == before
    directory = await api.ok("GET", "/api/v1/directory/502")
    assert directory["user"]["username"] == "bianchi"


@pytest.mark.parametrize("char", ["\ufffe", "\uffff", "\U0001fffe", "\x85", "\x9b", "\u2028"])
async def test_characters_no_phone_file_can_hold_are_refused(
    api: Api, db: Database, char: str
) -> None:
    base, bianchi = await _handset(api)
    before = await dump(db)
    account = f"/api/v1/devices/{base['id']}/accounts/2"
    attempts = [
        ("PUT", account, {"extension": "502", "user_id": bianchi["id"], "label": f"a{char}b"}),
        ("PATCH", f"/api/v1/devices/{base['id']}", {"label": f"a{char}b"}),
        ("PATCH", f"/api/v1/users/{bianchi['id']}", {"display_name": f"B{char}"}),
    ]
    for method, path, body in attempts:
        reply = await api.call(method, path, body)
        assert reply.status == 422, (method, path, reply.text)
    row = {"mac": mac_for(4), "model": DESK, "extension": "700", "label": f"x{char}y"}
    assert (await api.call("POST", "/api/v1/import", [row])).status == 422
    assert await dump(db) == before


async def test_a_lone_surrogate_or_a_huge_id_is_a_422_not_a_500(api: Api, db: Database) -> None:
    base, _ = await _handset(api)
    before = await dump(db)
    lone = '"x\\ud800"'
    bodies = [
        ("PUT", f"/api/v1/devices/{base['id']}/accounts/2", '{"extension": "502", "label": %s}'),
        ("PATCH", f"/api/v1/devices/{base['id']}", '{"label": %s}'),
        ("POST", "/api/v1/users", '{"username": "x", "main_extension": "9", "display_name": %s}'),
        ("POST", "/api/v1/devices", '{"extension": "9", "mac": "001565000009", "model": %s}'),
        ("POST", "/api/v1/import", '[{"mac": "001565000009", "model": %s, "extension": "9"}]'),
    ]
    for method, path, template in bodies:
        reply = await api.call(method, path, raw=template % lone)
        assert reply.status == 422, (method, path, reply.text)
        assert reply.json["error"] == "invalid"
    huge = await api.call("POST", "/api/v1/resync", {"user_id": 2**63})
    assert (huge.status, huge.json["field"]) == (404, "user_id"), huge.text
    assert await dump(db) == before
    assert "Traceback" not in "".join(api.bodies)


async def test_an_account_change_audits_that_account_only(api: Api) -> None:
    base = await api.device("500", mac_for(1), model=BASE)
    for slot in range(2, 41):
        body = {"extension": f"5{slot:02d}", "label": "Handset " + "x" * 50}
        reply = await api.call("PUT", f"/api/v1/devices/{base['id']}/accounts/{slot}", body)
        assert reply.status == 200, reply.text
    await api.ok("DELETE", f"/api/v1/devices/{base['id']}/accounts/7")
    rows = (await api.ok("GET", "/api/v1/audit?limit=2"))["items"]
    assert [r["action"] for r in rows] == ["device.account_delete", "device.account_put"]
    for row in rows:
        size = len(json.dumps(row))
        assert size < 2_000, (row["action"], size)
    assert rows[1]["after"]["slot"] == 40
    assert rows[0]["before"]["slot"] == 7


async def test_taking_a_primary_account_away_names_the_new_primary(api: Api) -> None:
    base, bianchi = await _handset(api)
    desk = await api.device("203", mac_for(5), model=DESK)
    await api.ok("PUT", f"/api/v1/users/{bianchi['id']}/devices/{desk['id']}")
    account = f"/api/v1/devices/{base['id']}/accounts/2"
    refused = await api.call("PUT", account, {"extension": "502"})
    assert (refused.status, refused.json["field"]) == (409, "new_primary")
    moved = await api.call("PUT", f"{account}?new_primary={desk['id']}", {"extension": "502"})
    assert moved.status == 200, moved.text
    user = await api.ok("GET", f"/api/v1/users/{bianchi['id']}")
    assert (user["primary_device_id"], user["primary_slot"]) == (desk["id"], 1)
    assert user["accounts"] == []
