"""Bulk import and export of device accounts (issue 15, DESIGN.md "Accounts"), on a real
database (SQLite, and PostgreSQL when PROVISIOND_TEST_DATABASE_URL is set).

The optional column `slot` (default 1) says which account of the device at `mac` a line is:
slot 1 the device itself, slots 2 up to the model's `accounts` its further accounts. The
domain rules hold per line (unique extensions among devices and accounts, main extensions,
rule 1 and rule 2 with an account as the primary line); a file with any bad line is refused
with every problem by line and column and changes nothing; the export writes each device's
accounts after it, and re-imports into an empty database to the same devices, accounts,
owners and primaries.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from provisiond.services import Services
from provisiond.services.commands import AccountPut, DeviceCreate, UserCreate
from provisiond.services.fleet import ImportRefused
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, DeviceAccount, DeviceModel, User
from provisiond.storage.secrets import SecretBox
from tests.dbdump import refused
from tests.integration.api_fixtures import Api
from tests.integration.test_fleet import fresh  # noqa: F401 (a fixture: a second, empty database)

BASE = "yealink-w80b"  # a DECT base: an account per handset
DESK = "yealink-t46s"
SMALL = "cisco-cp-7940"  # few accounts: the limit is read from the catalogue
HEADER = "mac,model,extension,username,display_name,primary,slot\n"


def csv(*lines: str, header: str = HEADER) -> str:
    return header + "".join(line + "\n" for line in lines)


async def accounts_of(db: Database, model: str) -> int:
    """How many SIP accounts the catalogue gives `model`."""
    async with db.read() as session:
        count = await session.scalar(select(DeviceModel.accounts).where(DeviceModel.id == model))
    assert count is not None, model
    return count


async def user_by_name(services: Services, username: str) -> dict[str, Any]:
    found = await services.users.list(search=username)
    return next(u for u in found["items"] if u["username"] == username)


async def device_by_extension(services: Services, extension: str) -> dict[str, Any]:
    found = await services.devices.list(extension_prefix=extension)
    return next(d for d in found["items"] if d["extension"] == extension)


async def actions(db: Database) -> list[tuple[str, str | None]]:
    async with db.read() as session:
        query = select(AuditEntry.action, AuditEntry.object_id).order_by(AuditEntry.id)
        return [(r.action, r.object_id) for r in (await session.execute(query)).all()]


# -- what a good import does ------------------------------------------------------------------


async def test_dect_base_with_three_handsets_for_three_users(
    services: Services, db: Database, secrets: SecretBox
) -> None:
    """One file: the base (slot 1, Rossi's handset) and two further handsets for Bianchi and
    Verdi; each handset is its user's primary line (rule 1), credentials as for a device."""
    assert await accounts_of(db, BASE) >= 3
    text = csv(
        f"00:15:65:00:00:01,{BASE},501,rossi,Anna Rossi,,",
        f"00:15:65:00:00:01,{BASE},503,verdi,Carlo Verdi,,3",  # before slot 2: order is free
        f"00:15:65:00:00:01,{BASE},502,bianchi,Bruno Bianchi,1,2",
    )
    result = await services.fleet.import_csv(text, "admin")
    assert result == {
        "lines": 3,
        "devices_created": 1,
        "accounts_created": 2,
        "users_created": 3,
        "users_updated": 0,
        "main_extension_changed": [],
    }
    base = await device_by_extension(services, "501")
    listed = await services.accounts.list(base["id"])
    rossi, bianchi, verdi = [await user_by_name(services, n) for n in ("rossi", "bianchi", "verdi")]
    assert [
        (a["slot"], a["extension"], a["user_id"], a["sip_username"]) for a in listed["items"]
    ] == [
        (1, "501", rossi["id"], "501"),
        (2, "502", bianchi["id"], "502"),
        (3, "503", verdi["id"], "503"),
    ]
    assert all(a["active"] for a in listed["items"])
    for user, slot, extension in ((rossi, 1, "501"), (bianchi, 2, "502"), (verdi, 3, "503")):
        assert (user["primary_device_id"], user["primary_slot"]) == (base["id"], slot)
        assert user["main_extension"] == extension  # the primary line's extension
    assert [a["extension"] for a in bianchi["accounts"]] == ["502"]
    async with db.read() as session:
        stored = (await session.scalars(select(DeviceAccount).order_by(DeviceAccount.slot))).all()
        primary_account = await session.scalar(
            select(User.primary_account_id).where(User.username == "bianchi")
        )
    assert primary_account == stored[0].id
    passwords = [secrets.decrypt(a.sip_password) for a in stored]
    assert all(len(p) == 20 for p in passwords)
    assert all(p not in a.sip_password for p, a in zip(passwords, stored, strict=True))
    assert len(set(passwords)) == 2
    # The change feed: the base once (its view lists both accounts), each user once.
    done = await actions(db)
    assert done.count(("device.create", str(base["id"]))) == 1
    assert [a for a, _ in done].count("user.create") == 3
    assert done[-1] == ("fleet.import", None)
    async with db.read() as session:
        created = await session.scalar(
            select(AuditEntry.after).where(AuditEntry.action == "device.create")
        )
    assert created is not None
    assert [a["slot"] for a in created["accounts"]] == [2, 3]
    # The directory rings the handset for Verdi's number.
    answer = await services.directory.lookup("503")
    assert answer["user"]["username"] == "verdi"
    assert [t.get("slot") for t in answer["ring_targets"] if t["type"] == "device"] == [3]


async def test_an_account_becomes_a_users_primary_line(services: Services, db: Database) -> None:
    """Rule 2 with an account: a user with a primary device takes a handset of a stored base
    as primary; the main extension becomes the handset's extension (reported), and the
    user's primary is the account (users.primary_account_id)."""
    bob = await services.users.create(
        UserCreate(username="bob", display_name="Bob", main_extension="300"), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="300", model=DESK, mac="00:15:65:00:01:00", user_id=bob["id"]), "t"
    )
    base = await services.devices.create(
        DeviceCreate(extension="500", model=BASE, mac="00:15:65:00:02:00"), "t"
    )
    before = len(await actions(db))
    text = csv(
        f"00:15:65:00:02:00,{BASE},502,bob,,1,2",  # Bob's primary: main 300 -> 502
        f"00:15:65:00:02:00,{BASE},503,carla,Carla,1,3",  # a new user: main 503 (her primary)
        f"00:15:65:00:02:00,{BASE},504,,,,4",  # an unassigned handset
    )
    result = await services.fleet.import_csv(text, "admin")
    assert result["accounts_created"] == 3
    assert result["devices_created"] == 0
    assert result["main_extension_changed"] == [{"username": "bob", "old": "300", "new": "502"}]
    bob = await services.users.get(bob["id"])
    assert (bob["main_extension"], bob["primary_device_id"], bob["primary_slot"]) == (
        "502",
        base["id"],
        2,
    )
    carla = await user_by_name(services, "carla")
    assert (carla["main_extension"], carla["primary_slot"]) == ("503", 3)
    listed = await services.accounts.list(base["id"])
    assert [(a["slot"], a["user_id"]) for a in listed["items"]] == [
        (1, None),
        (2, bob["id"]),
        (3, carla["id"]),
        (4, None),
    ]
    # The stored base gets one device.account_put (the directory and resync re-read it).
    done = (await actions(db))[before:]
    assert done.count(("device.account_put", str(base["id"]))) == 1
    assert ("user.assign_device", str(bob["id"])) in done
    assert ("user.create", str(carla["id"])) in done
    async with db.read() as session:
        put = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "device.account_put")
        )
    assert put is not None
    assert put.before is not None
    assert put.after is not None
    assert (put.before["accounts"], put.after["slots"]) == ([], [2, 3, 4])
    assert "sip_password" not in str(put.after)
    # Another device for Bob, not marked primary: his primary stays the account (rule 1).
    await services.fleet.import_csv(csv(f"00:15:65:00:01:02,{DESK},302,bob,,,"), "t")
    bob = await services.users.get(bob["id"])
    assert (bob["main_extension"], bob["primary_device_id"], bob["primary_slot"]) == (
        "502",
        base["id"],
        2,
    )
    handset = next(a["id"] for a in bob["accounts"] if a["slot"] == 2)
    assert await primary_columns(db, bob["id"]) == (None, handset)
    # Back to a device: a line marked primary on a new desk phone moves Bob's primary off
    # the account (rule 2 again); the account stays his.
    await services.fleet.import_csv(csv(f"00:15:65:00:01:01,{DESK},301,bob,,1,"), "t")
    bob = await services.users.get(bob["id"])
    desk = await device_by_extension(services, "301")
    assert (bob["main_extension"], bob["primary_device_id"], bob["primary_slot"]) == (
        "301",
        desk["id"],
        1,
    )
    assert await primary_columns(db, bob["id"]) == (desk["id"], None)
    assert [a["extension"] for a in bob["accounts"]] == ["502"]


async def primary_columns(db: Database, user_id: int) -> tuple[int | None, int | None]:
    """users.primary_device_id and primary_account_id (never both set)."""
    async with db.read() as session:
        query = select(User.primary_device_id, User.primary_account_id).where(User.id == user_id)
        row = (await session.execute(query)).one()
    return row.primary_device_id, row.primary_account_id


async def test_json_rows_take_the_slot_as_a_number_or_text(services: Services) -> None:
    rows = [
        {"mac": "001565000001", "model": BASE, "extension": "501"},
        {"mac": "001565000001", "model": BASE, "extension": "502", "slot": 2, "label": "Hall"},
        {
            "mac": "00-15-65-00-00-01",
            "model": BASE,
            "extension": "503",
            "slot": "3",
            "username": "anna",
            "display_name": "Anna",
            "active": False,
        },
        {"mac": "001565000002", "model": DESK, "extension": "601", "slot": 1},
    ]
    result = await services.fleet.import_json({"rows": rows}, "t")
    assert (result["devices_created"], result["accounts_created"]) == (2, 2)
    base = await device_by_extension(services, "501")
    assert [(a["slot"], a["label"], a["active"]) for a in base["accounts"]] == [
        (2, "Hall", True),
        (3, None, False),
    ]
    # A semicolon file from a spreadsheet, the slot column anywhere, empty slot is 1.
    text = (
        "Slot;MAC;Model;Extension;Username;Display Name;Primary\n"
        f";001565000003;{DESK};701;;;\n"
        f"2;001565000003;{DESK};702;;;\n"
    )
    assert (await services.fleet.import_csv(text, "t"))["accounts_created"] == 1


# -- refusals: all or nothing -----------------------------------------------------------------


async def test_every_account_refusal_is_reported_and_nothing_changes(
    services: Services, db: Database
) -> None:
    small = await accounts_of(db, SMALL)
    assert small >= 2
    owner = await services.users.create(
        UserCreate(username="bob", display_name="Bob", main_extension="300"), "t"
    )
    await services.users.create(
        UserCreate(username="dan", display_name="Dan", main_extension="310"), "t"
    )
    stored = await services.devices.create(
        DeviceCreate(extension="400", model=BASE, mac="00:15:65:00:04:00"), "t"
    )
    for slot in (2, 3):
        put = AccountPut(extension=f"40{slot}", user_id=owner["id"])
        await services.accounts.put(stored["id"], slot, put, move=False, actor="t")
    desk = await services.devices.create(
        DeviceCreate(extension="410", model=DESK, mac="00:15:65:00:04:10"), "t"
    )
    text = csv(
        f"00:15:65:00:00:01,{BASE},501,,,,",  # 2: fine
        f"00:15:65:00:00:01,{BASE},502,,,,1",  # 3: slot 1 of line 2's MAC again
        f"00:15:65:00:00:01,{BASE},503,,,,2",  # 4: fine
        f"00:15:65:00:00:01,{BASE},504,,,,2",  # 5: slot 2 again (line 4)
        f"00:15:65:00:00:01,{BASE},410,,,,3",  # 6: a stored device's extension
        f"00:15:65:00:00:01,{BASE},402,,,,4",  # 7: a stored account's extension
        f"00:15:65:00:00:01,{BASE},503,,,,5",  # 8: line 4's (an account's) extension
        f"00:15:65:00:00:01,{BASE},501,,,,6",  # 9: line 2's (a device's) extension
        f"00:15:65:00:00:99,{BASE},509,,,,2",  # 10: no such device
        f"00:15:65:00:00:01,{DESK},510,,,,7",  # 11: the device of line 2 is a base
        f"00:15:65:00:04:00,{DESK},511,,,,9",  # 12: the stored device is a base
        f"00:15:65:00:04:00,{BASE},512,,,,2",  # 13: slot 2 of the stored base is taken
        f"00:15:65:00:00:0c,{SMALL},513,,,,",  # 14: fine
        f"00:15:65:00:00:0c,{SMALL},514,,,,{small + 1}",  # 15: beyond the model
        f"00:15:65:00:00:0c,{SMALL},515,,,,0",  # 16: slots start at 1
        f"00:15:65:00:00:0c,{SMALL},516,,,,1001",  # 17: at most 1000
        f"00:15:65:00:00:0c,{SMALL},517,,,,two",  # 18: not a number
        f"00:15:65:00:00:0c,{SMALL},310,bob,,,2",  # 19: Dan's main extension, for Bob
        f"00:15:65:00:00:0d,{DESK},403,,,,",  # 20: a device with a stored account's extension
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    found = [(e.line, e.field) for e in info.value.lines]
    assert found == [
        (3, "mac"),
        (5, "slot"),
        (6, "extension"),
        (7, "extension"),
        (8, "extension"),
        (9, "extension"),
        (10, "mac"),
        (11, "model"),
        (12, "model"),
        (13, "slot"),
        (15, "slot"),
        (16, "slot"),
        (17, "slot"),
        (18, "slot"),
        (19, "extension"),
        (20, "extension"),
    ]
    details = {(e.line, e.field): e.detail for e in info.value.lines}
    assert details[(3, "mac")] == "00:15:65:00:00:01 is also on line 2"
    assert details[(5, "slot")] == "account 2 of 00:15:65:00:00:01 is also on line 4"
    assert details[(6, "extension")] == f"extension 410 is already device {desk['id']}'s"
    assert (
        details[(7, "extension")] == f"extension 402 is already account 2 of device {stored['id']}"
    )
    assert details[(8, "extension")] == "503 is also on line 4"
    assert "00:15:65:00:00:99" in details[(10, "mac")]
    assert "account 2 needs its device" in details[(10, "mac")]
    assert details[(11, "model")] == f"00:15:65:00:00:01 is a {BASE} (on line 2), not a {DESK}"
    assert details[(12, "model")] == (
        f"00:15:65:00:04:00 is a {BASE} (device {stored['id']}), not a {DESK}"
    )
    assert details[(13, "slot")].startswith(f"account 2 of device {stored['id']} (00:15:65:00:04")
    noun = "account" if small == 1 else "accounts"
    assert (
        details[(15, "slot")]
        == f"{SMALL} carries {small} SIP {noun}; slot {small + 1} is beyond it"
    )
    assert "from 1 to 1000" in details[(16, "slot")]
    assert details[(19, "extension")] == "extension 310 is the main extension of another user"
    assert (
        details[(20, "extension")] == f"extension 403 is already account 3 of device {stored['id']}"
    )
    assert info.value.detail == "16 problem(s) on 16 line(s); nothing was imported"


async def test_accounts_of_a_refused_device_line_are_not_reported_as_unknown(
    services: Services, db: Database
) -> None:
    """The device's own line is wrong: that line is reported, its accounts are not noise."""
    text = csv(
        f"00:15:65:00:00:01,{BASE},50x,,,,",  # a bad extension
        f"00:15:65:00:00:01,{BASE},502,,,,2",
        "00:15:65:00:00:02,yealink-nope,600,,,,",  # an unknown model
        "00:15:65:00:00:02,yealink-nope,602,,,,2",
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [
        (2, "extension"),
        (4, "model"),
        (5, "model"),
    ]


async def test_json_refusals(services: Services, db: Database) -> None:
    rows: list[dict[str, Any]] = [
        {"mac": "001565000001", "model": BASE, "extension": "501"},
        {"mac": "001565000001", "model": BASE, "extension": "502", "slot": True},
        {"mac": "001565000001", "model": BASE, "extension": "503", "slot": 2.5},
        {"mac": "001565000001", "model": BASE, "extension": "504", "slot": [2]},
        {"mac": "001565000009", "model": BASE, "extension": "505", "slot": 2},
        {"mac": "001565000001", "model": BASE, "extension": "501", "slot": 3},
    ]
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_json(rows, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [
        (2, "slot"),
        (3, "slot"),
        (4, "slot"),
        (5, "mac"),
        (6, "extension"),
    ]


async def test_main_extension_rules_hold_for_accounts(services: Services, db: Database) -> None:
    """A new user's main extension may not be another user's stored account extension; an
    account's extension may not be another user's main extension (file or database)."""
    bob = await services.users.create(
        UserCreate(username="bob", display_name="Bob", main_extension="300"), "t"
    )
    base = await services.devices.create(
        DeviceCreate(extension="400", model=BASE, mac="00:15:65:00:04:00"), "t"
    )
    await services.accounts.put(
        base["id"], 2, AccountPut(extension="402", user_id=bob["id"]), move=False, actor="t"
    )
    text = csv(
        "mac,model,extension,username,display_name,primary,main_extension,slot",
        header="",
    )
    text += f"00:15:65:00:00:01,{DESK},201,anna,Anna,,402,\n"  # 2: Bob's account
    text += f"00:15:65:00:04:00,{BASE},700,dora,Dora,,,3\n"  # 3: fine
    text += f"00:15:65:00:04:00,{BASE},701,eva,Eva,,,4\n"  # 4: fine
    text += f"00:15:65:00:04:00,{BASE},710,fabio,Fabio,,701,5\n"  # 5: Eva's handset
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [
        (2, "main_extension"),
        (5, "main_extension"),
    ]
    assert "another user's device" in info.value.lines[0].detail


# -- export and the round trip ----------------------------------------------------------------


async def populate(services: Services) -> dict[str, int]:
    """Devices, accounts and primaries made through the single-object services."""
    ids: dict[str, int] = {}
    for name, display, main in (
        ("rossi", "Anna Rossi", "200"),
        ("bianchi", "Bruno Bianchi", "210"),
        ("verdi", "Carlo Verdi", "220"),
    ):
        ids[name] = (
            await services.users.create(
                UserCreate(username=name, display_name=display, main_extension=main), "t"
            )
        )["id"]
    base = await services.devices.create(
        DeviceCreate(
            extension="500", model=BASE, mac="001565000050", user_id=ids["rossi"], label="Hall"
        ),
        "t",
    )
    for slot, ext, user, label, active in (
        (2, "502", ids["bianchi"], "Bruno", True),
        (3, "503", ids["verdi"], None, False),
        (5, "505", None, "spare", True),
        (4, "504", ids["rossi"], None, True),
    ):
        put = AccountPut(extension=ext, user_id=user, label=label, active=active)
        await services.accounts.put(base["id"], slot, put, move=False, actor="t")
    desk = await services.devices.create(
        DeviceCreate(extension="211", model=DESK, mac="001565000011", user_id=ids["bianchi"]), "t"
    )
    await services.assignments.set_primary(ids["bianchi"], desk["id"], actor="t")  # main 211
    await services.assignments.set_primary(ids["rossi"], base["id"], slot=4, actor="t")  # 504
    ids["base"], ids["desk"] = base["id"], desk["id"]
    await services.devices.create(
        DeviceCreate(extension="600", model=DESK, mac="001565000060"), "t"
    )
    return ids


async def owners_and_primaries(services: Services) -> list[tuple[Any, ...]]:
    """Each user's main extension, primary line (by extension) and lines."""
    found = []
    for user in (await services.users.list())["items"]:
        lines = {d["id"]: d for d in user["devices"]}
        primary = user["primary_slot"]
        if primary == 1:
            shown = lines[user["primary_device_id"]]["extension"]
        else:
            shown = next(
                a["extension"]
                for a in user["accounts"]
                if (a["device_id"], a["slot"]) == (user["primary_device_id"], primary)
            )
        found.append(
            (
                user["username"],
                user["display_name"],
                user["main_extension"],
                shown,
                sorted(d["extension"] for d in user["devices"]),
                sorted((a["slot"], a["extension"]) for a in user["accounts"]),
            )
        )
    return sorted(found)


async def test_export_lists_accounts_after_their_device(services: Services) -> None:
    ids = await populate(services)
    rows = await services.fleet.export_rows()
    assert [(r["extension"], r["slot"], r["username"], r["primary"]) for r in rows] == [
        ("211", 1, "bianchi", True),  # users by name, primary first
        ("500", 1, "rossi", False),  # rossi's primary is an account of the base
        ("502", 2, "bianchi", False),
        ("503", 3, "verdi", True),  # verdi's one line, an account: primary
        ("504", 4, "rossi", True),
        ("505", 5, None, False),
        ("600", 1, None, False),  # unassigned devices last
    ]
    assert {r["mac"] for r in rows[1:6]} == {"00:15:65:00:00:50"}
    assert {r["model"] for r in rows[1:6]} == {BASE}
    assert (rows[2]["label"], rows[3]["active"], rows[5]["label"]) == ("Bruno", False, "spare")
    text = await services.fleet.export_csv()
    assert text.splitlines()[0].endswith(",label,slot,keys,device_keys")
    assert (
        text.splitlines()[3]
        == "00:15:65:00:00:50,yealink-w80b,502,bianchi,Bruno Bianchi,0,211,1,Bruno,2,,"
    )
    assert "sip_password" not in text
    assert ids["base"] > 0


async def test_export_import_round_trip_with_accounts(
    services: Services,
    fresh: Services,  # noqa: F811 (the fixture imported above)
) -> None:
    await populate(services)
    exported = await services.fleet.export_csv()
    result = await fresh.fleet.import_csv(exported, "t")
    assert (result["devices_created"], result["accounts_created"]) == (3, 4)
    assert await fresh.fleet.export_csv() == exported
    assert await fresh.fleet.export_rows() == await services.fleet.export_rows()
    assert await owners_and_primaries(fresh) == await owners_and_primaries(services)
    rossi = await user_by_name(fresh, "rossi")
    assert (rossi["main_extension"], rossi["primary_slot"]) == ("504", 4)


async def test_json_round_trip_with_accounts(
    services: Services,
    fresh: Services,  # noqa: F811
) -> None:
    await populate(services)
    rows = await services.fleet.export_rows()
    await fresh.fleet.import_json(rows, "t")
    assert await fresh.fleet.export_rows() == rows
    assert await owners_and_primaries(fresh) == await owners_and_primaries(services)


# -- over HTTP ---------------------------------------------------------------------------------


async def test_api_import_and_export_with_slots(api: Api) -> None:
    rows = [
        {"mac": "001565000001", "model": BASE, "extension": "501"},
        {"mac": "001565000001", "model": BASE, "extension": "502", "slot": 2},
    ]
    answer = await api.ok("POST", "/api/v1/import", rows)
    assert (answer["devices_created"], answer["accounts_created"]) == (1, 1)
    exported = await api.ok("GET", "/api/v1/export?format=json")
    assert [(r["extension"], r["slot"]) for r in exported] == [("501", 1), ("502", 2)]
    bad = [{"mac": "001565000001", "model": BASE, "extension": "503", "slot": 2}]
    reply = await api.call("POST", "/api/v1/import", bad)
    assert reply.status == 422
    assert [(e["line"], e["field"]) for e in reply.json["lines"]] == [(1, "slot")]
    assert "exists already" in reply.json["lines"][0]["detail"]


@pytest.mark.parametrize("slot", ["", "1", "01"])
async def test_slot_one_is_the_device(services: Services, slot: str) -> None:
    text = csv(f"00:15:65:00:00:01,{DESK},201,,,,{slot}")
    assert (await services.fleet.import_csv(text, "t"))["devices_created"] == 1
