"""Programmable keys in the bulk import and export (issue 16), on a real database (SQLite, and
PostgreSQL when PROVISIOND_TEST_DATABASE_URL is set).

Two optional columns: ``keys`` (the user's keys, on a line with a username) and
``device_keys`` (the device's own, on its slot-1 line); in CSV the list's JSON text, in JSON
rows the list itself. Every key is checked as the keys API checks it, each problem reported by
line and key (``keys[2].position``), and a file with any bad line changes nothing. A new user
or device gets its list, an existing user's keys are never changed, a user's lines must agree.
The export writes both columns and re-imports to the same keys.
"""

from __future__ import annotations

import csv as csv_module
import io
import json
from typing import Any

import pytest
from sqlalchemy import select

from provisiond.domain.keys import key_capacity
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, UserCreate
from provisiond.services.fleet import ImportRefused
from provisiond.services.keys import key_types_of
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry
from tests.dbdump import dump, refused
from tests.integration.api_fixtures import Api
from tests.integration.test_fleet import fresh  # noqa: F401 (a fixture: a second, empty database)

DESK = "yealink-t46s"
SMALL = "yealink-t21p-e2"  # 2 line keys, no module
BASE = "yealink-w80b"  # a DECT base: further accounts
COLUMNS = ("mac", "model", "extension", "username", "display_name", "primary", "slot")


def table(*rows: dict[str, Any]) -> str:
    """CSV text with the columns the rows use (lists become their JSON text, as documented)."""
    names = list(COLUMNS)
    for row in rows:
        names += [name for name in row if name not in names]
    out = io.StringIO()
    writer = csv_module.DictWriter(out, names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    return out.getvalue()


def line(n: int, extension: str, username: str = "", **more: Any) -> dict[str, Any]:
    """One line: a desk phone with MAC number `n`."""
    return {
        "mac": f"0015650000{n:02x}",
        "model": DESK,
        "extension": extension,
        "username": username,
        **more,
    }


async def user_id(services: Services, username: str) -> int:
    found = await services.users.list(search=username)
    return int(next(u["id"] for u in found["items"] if u["username"] == username))


async def device_id(services: Services, extension: str) -> int:
    found = await services.devices.list(extension_prefix=extension)
    return int(next(d["id"] for d in found["items"] if d["extension"] == extension))


def plain(items: list[dict[str, Any]]) -> list[tuple[int, str, str, str | None]]:
    return [(k["position"], k["type"], k["value"], k["label"]) for k in items]


async def model(services: Services, model_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        m for m in await services.catalogue.models() if m["id"] == model_id
    )
    return found


# -- a good import ----------------------------------------------------------------------------


async def test_import_creates_keys_and_the_services_show_them(
    services: Services, db: Database
) -> None:
    anna_keys: list[dict[str, Any]] = [
        {"type": "line"},
        {"type": "blf", "value": "202", "label": "Bruno"},  # created by this file (line 4)
        {"type": "blf", "value": "300"},  # carla's main extension, given by this file
        {"position": 6, "type": "speed_dial", "value": "0612345678", "label": "Reception"},
    ]
    # The same list with every position written out: the lines agree.
    explicit = [{**key, "position": n} for n, key in enumerate(anna_keys[:3], 1)] + anna_keys[3:]
    text = table(
        line(
            1,
            "201",
            "anna",
            display_name="Anna",
            primary="1",
            keys=anna_keys,
            device_keys=[{"position": 2, "type": "dnd", "label": "Quiet"}],
        ),
        line(2, "211", "anna", keys=explicit),
        line(3, "202", "bruno", display_name="Bruno"),  # keys left empty: none
        line(
            4,
            "301",
            "carla",
            display_name="Carla",
            main_extension="300",
            keys=[{"type": "blf", "value": "+390612345"}],
        ),
    )
    result = await services.fleet.import_csv(text, "admin")
    assert (result["devices_created"], result["users_created"]) == (4, 3)

    anna = await services.keys.user_keys(await user_id(services, "anna"))
    assert plain(anna["items"]) == [
        (1, "line", "1", None),
        (2, "blf", "202", "Bruno"),
        (3, "blf", "300", None),
        (6, "speed_dial", "0612345678", "Reception"),
    ]
    assert len(anna["devices"]) == 2
    desk = await services.keys.device_keys(await device_id(services, "201"))
    assert plain(desk["items"]) == [(2, "dnd", "", "Quiet")]
    assert [(k["position"], k["type"], k["source"]) for k in desk["effective"]] == [
        (1, "line", "user"),
        (2, "dnd", "device"),
        (3, "blf", "user"),
        (6, "speed_dial", "user"),
    ]
    bruno = await services.keys.user_keys(await user_id(services, "bruno"))
    assert bruno["items"] == []
    carla = await services.keys.user_keys(await user_id(services, "carla"))
    assert plain(carla["items"]) == [(1, "blf", "+390612345", None)]

    # One audit row per list, as KeyService writes them: the directory re-reads those phones.
    async with db.read() as session:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["user.keys_set", "device.keys_set"]))
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(r.action, r.object_type, r.object_id) for r in rows] == [
        ("user.keys_set", "user", str(await user_id(services, "anna"))),
        ("user.keys_set", "user", str(await user_id(services, "carla"))),
        ("device.keys_set", "device", str(await device_id(services, "201"))),
    ]
    assert rows[0].before == []
    assert {tuple((r.after or [()])[0]) for r in rows} == {("position", "type", "value", "label")}


async def test_the_documented_csv_cell(services: Services) -> None:
    """The CSV cell is the API's JSON text, CSV-quoted (JSON rows: the HTTP test below)."""
    text = (
        "mac,model,extension,username,display_name,primary,keys\n"
        '001565000001,yealink-t46s,201,anna,Anna,1,"[{""type"":""blf"",""value"":""202"",'
        '""label"":""Bruno""}]"\n'
        "001565000002,yealink-t46s,202,bruno,Bruno,,\n"
    )
    await services.fleet.import_csv(text, "t")
    anna = await services.keys.user_keys(await user_id(services, "anna"))
    assert plain(anna["items"]) == [(1, "blf", "202", "Bruno")]


# -- refusals: every problem by line and key, nothing changes ---------------------------------


async def test_a_bad_key_is_refused_by_line_and_field(services: Services, db: Database) -> None:
    text = table(
        line(1, "201", "anna", display_name="Anna"),  # 2: fine
        line(
            2,
            "202",
            "bruno",
            display_name="Bruno",
            keys=[{"type": "dnd"}, {"type": "line"}, {"position": 1, "type": "park"}],
        ),  # 3
        line(3, "203", device_keys=[{"type": "blf", "value": "299"}]),  # 4: no such extension
        line(4, "204", "carla", display_name="Carla", keys="[{"),  # 5: not JSON
        line(5, "205", keys=[{"type": "dnd"}]),  # 6: user keys without a user
        line(
            6,
            "206",
            "dario",
            display_name="Dario",
            keys=[{"type": "speed_dial", "value": "12a"}],
            device_keys=[{"type": "macro"}],
        ),
        {"mac": "001565000099", "model": BASE, "extension": "501"},  # 8: a DECT base
        {
            "mac": "001565000099",
            "model": BASE,
            "extension": "502",
            "slot": "2",
            "device_keys": [{"type": "dnd"}],
        },  # 9: an account has no keys of its own
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [
        (3, "keys[2].position"),
        (4, "device_keys[0].value"),
        (5, "keys"),
        (6, "keys"),
        (7, "keys[0].value"),
        (7, "device_keys[0].type"),
        (9, "device_keys"),
    ]
    details = {(e.line, e.field): e.detail for e in info.value.lines}
    assert "must come after position 2" in details[(3, "keys[2].position")]
    assert "'299' is no extension" in details[(4, "device_keys[0].value")]
    assert "JSON list" in details[(5, "keys")]
    assert "need a username" in details[(6, "keys")]
    assert "slot 1" in details[(9, "device_keys")]


async def test_json_rows_take_the_list_itself(services: Services, db: Database) -> None:
    rows: list[dict[str, Any]] = [
        {
            "mac": "001565000001",
            "model": DESK,
            "extension": "201",
            "username": "anna",
            "display_name": "Anna",
            "keys": json.dumps([{"type": "dnd"}]),
        },
    ]
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_json(rows, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [(1, "keys")]
    assert "must be a list" in info.value.lines[0].detail


async def test_lines_of_one_user_must_agree(services: Services, db: Database) -> None:
    text = table(
        line(1, "201", "anna", display_name="Anna", keys=[{"type": "dnd"}]),
        line(2, "202", "anna"),  # empty: agrees with anything
        line(3, "203", "anna", keys=[{"type": "dnd"}, {"type": "park"}]),
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [(4, "keys")]
    detail = info.value.lines[0].detail
    assert "user anna has other keys on line 2" in detail
    assert "1 keys there, 2 here" in detail


async def test_keys_beyond_the_model_name_its_limit(services: Services, db: Database) -> None:
    small = await model(services, SMALL)
    capacity = key_capacity(small["line_keys"], small["expansion_modules"], small["module_keys"])
    beyond = capacity + 1
    # A vendor whose templates write keys but no DND key (read from the catalogue, so the test
    # follows the vendors' files).
    no_dnd = next(
        m
        for m in await services.catalogue.models()
        if m["line_keys"] > 0 and "dnd" not in key_types_of(services.ctx, m["vendor"])
    )
    text = table(
        {
            "mac": "001565000001",
            "model": SMALL,
            "extension": "201",
            "device_keys": [{"position": beyond, "type": "dnd"}],
        },
        {
            "mac": "001565000002",
            "model": SMALL,
            "extension": "202",
            "username": "anna",
            "display_name": "Anna",
            "keys": [{"position": beyond, "type": "dnd"}],
        },
        {
            "mac": "001565000003",
            "model": no_dnd["id"],
            "extension": "203",
            "device_keys": [{"type": "dnd"}],
        },
        {
            "mac": "001565000004",
            "model": SMALL,
            "extension": "204",
            "username": "bruno",
            "display_name": "Bruno",
            "keys": [{"type": "line", "value": "9"}],
        },
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [
        (2, "device_keys[0].position"),
        (3, "keys[0].position"),
        (4, "device_keys[0].type"),
        (5, "keys[0].value"),
    ]
    details = [e.detail for e in info.value.lines]
    limit = f"{SMALL} has {capacity} key positions"
    assert "beyond the model" in details[0]
    assert limit in details[0]
    assert "beyond every phone of user anna" in details[1]
    assert limit in details[1]
    assert no_dnd["vendor"] in details[2]
    assert "account slot" in details[3]


async def test_an_existing_users_keys_are_left_as_they_are(
    services: Services, db: Database
) -> None:
    anna = await services.users.create(
        UserCreate(username="anna", display_name="Anna", main_extension="200"), "t"
    )
    stored = [{"type": "dnd", "label": "Quiet"}]
    await services.keys.set_user_keys(anna["id"], stored, actor="t")
    other = table(line(1, "201", "anna", keys=[{"type": "park"}]))
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(other, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [(2, "keys")]
    assert f"PUT /api/v1/users/{anna['id']}/keys" in info.value.lines[0].detail
    async with refused(db, ImportRefused):  # [] says "no keys": not theirs either
        await services.fleet.import_csv(table(line(1, "201", "anna", keys=[])), "t")
    # An empty cell leaves them; their own list repeated (positions written out) is fine.
    await services.fleet.import_csv(
        table(line(1, "201", "anna"), line(2, "202", "anna", keys=[{**stored[0], "position": 1}])),
        "t",
    )
    keys = await services.keys.user_keys(anna["id"])
    assert plain(keys["items"]) == [(1, "dnd", "", "Quiet")]
    async with db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions.count("user.keys_set") == 1  # the API's; the import changed nothing


async def test_a_moved_main_extension_takes_the_blf_keys_along(
    services: Services, db: Database
) -> None:
    """Rule 2 in an import moves a main extension: BLF keys on it follow, as in the API."""
    carla = await services.users.create(
        UserCreate(username="carla", display_name="Carla", main_extension="400"), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="401", model=DESK, mac="001565000101", user_id=carla["id"]), "t"
    )
    rossi = await services.users.create(
        UserCreate(username="rossi", display_name="Rossi", main_extension="500"), "t"
    )
    await services.keys.set_user_keys(rossi["id"], [{"type": "blf", "value": "400"}], actor="t")
    text = table(
        line(2, "402", "carla", primary="1"),  # rule 2: carla's main extension becomes 402
        line(3, "501", "dario", display_name="Dario", keys=[{"type": "blf", "value": "400"}]),
    )
    result = await services.fleet.import_csv(text, "t")
    assert result["main_extension_changed"] == [{"username": "carla", "old": "400", "new": "402"}]
    assert plain((await services.keys.user_keys(rossi["id"]))["items"]) == [(1, "blf", "402", None)]
    dario = await user_id(services, "dario")
    assert plain((await services.keys.user_keys(dario))["items"]) == [(1, "blf", "402", None)]
    async with db.read() as session:
        follow = (
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "user.blf_follow"))
        ).all()
    assert [(r.object_id, (r.after or {})["users"]) for r in follow] == [
        (str(carla["id"]), sorted([rossi["id"], dario]))
    ]


# -- export and the round trip ----------------------------------------------------------------


async def populate(services: Services) -> None:
    """Users, devices and keys made through the single-object services."""
    anna = await services.users.create(
        UserCreate(username="anna", display_name="Anna", main_extension="201"), "t"
    )
    bruno = await services.users.create(
        UserCreate(username="bruno", display_name="Bruno", main_extension="202"), "t"
    )
    desk = await services.devices.create(
        DeviceCreate(extension="201", model=DESK, mac="001565000001", user_id=anna["id"]), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="211", model=DESK, mac="001565000002", user_id=anna["id"]), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="202", model=DESK, mac="001565000003", user_id=bruno["id"]), "t"
    )
    loose = await services.devices.create(
        DeviceCreate(extension="300", model=DESK, mac="001565000004"), "t"
    )
    await services.keys.set_user_keys(
        anna["id"],
        [
            {"type": "line"},
            {"type": "blf", "value": "202", "label": '=HYPERLINK("http://x")'},
            {"position": 5, "type": "url", "value": "https://intranet.example/a,b"},
        ],
        actor="t",
    )
    await services.keys.set_device_keys(
        desk["id"], [{"position": 2, "type": "dnd", "label": "Ruhe, bitte"}], actor="t"
    )
    await services.keys.set_device_keys(
        loose["id"], [{"type": "speed_dial", "value": "+3906123"}], actor="t"
    )


async def test_export_writes_both_columns(services: Services) -> None:
    await populate(services)
    rows = await services.fleet.export_rows()
    by_extension = {r["extension"]: r for r in rows}
    assert plain(by_extension["211"]["keys"]) == plain(by_extension["201"]["keys"])
    assert by_extension["201"]["keys"][1]["label"] == '=HYPERLINK("http://x")'
    assert plain(by_extension["201"]["device_keys"]) == [(2, "dnd", "", "Ruhe, bitte")]
    assert (by_extension["211"]["device_keys"], by_extension["202"]["keys"]) == (None, None)
    assert by_extension["300"]["keys"] is None  # no user
    assert plain(by_extension["300"]["device_keys"]) == [(1, "speed_dial", "+3906123", None)]

    text = await services.fleet.export_csv()
    assert text.splitlines()[0].endswith(",slot,keys,device_keys")
    cells = [cell for row in csv_module.reader(io.StringIO(text)) for cell in row]
    for cell in cells:  # no cell a spreadsheet would run as a formula
        assert not cell or cell[0] not in "=+-@\t\r", cell
    exported = {row["extension"]: row for row in csv_module.DictReader(io.StringIO(text))}
    assert json.loads(exported["201"]["keys"]) == by_extension["201"]["keys"]
    assert exported["202"]["keys"] == ""


async def test_export_import_round_trip(services: Services, fresh: Services) -> None:  # noqa: F811
    await populate(services)
    exported = await services.fleet.export_csv()
    await fresh.fleet.import_csv(exported, "t")
    assert await fresh.fleet.export_csv() == exported
    assert await fresh.fleet.export_rows() == await services.fleet.export_rows()
    for name in ("anna", "bruno"):
        theirs = await services.keys.user_keys(await user_id(services, name))
        ours = await fresh.keys.user_keys(await user_id(fresh, name))
        assert theirs["items"] == ours["items"]
    for extension in ("201", "211", "202", "300"):
        theirs = await services.keys.device_keys(await device_id(services, extension))
        ours = await fresh.keys.device_keys(await device_id(fresh, extension))
        assert (theirs["items"], theirs["effective"]) == (ours["items"], ours["effective"])


async def test_json_round_trip(services: Services, fresh: Services) -> None:  # noqa: F811
    await populate(services)
    rows = await services.fleet.export_rows()
    await fresh.fleet.import_json(rows, "t")
    assert await fresh.fleet.export_rows() == rows


@pytest.mark.parametrize("cell", ["", "null", " "])
async def test_an_empty_cell_is_no_list(services: Services, db: Database, cell: str) -> None:
    text = "mac,model,extension,username,display_name,primary,keys,device_keys\n"
    text += f"001565000001,{DESK},201,anna,Anna,1,{cell},{cell}\n"
    await services.fleet.import_csv(text, "t")
    tables = await dump(db)
    assert (tables["user_keys"], tables["device_keys"]) == ([], [])


# -- over HTTP: the documented rows ------------------------------------------------------------


async def test_api_import_and_export_with_keys(api: Api) -> None:
    """The JSON export's answer validates against its documented row (ExportRowOut)."""
    rows: list[dict[str, Any]] = [
        {
            "mac": "001565000001",
            "model": DESK,
            "extension": "201",
            "username": "anna",
            "display_name": "Anna",
            "keys": [{"type": "blf", "value": "202", "label": "Bruno"}],
            "device_keys": [{"position": 2, "type": "dnd"}],
        },
        {"mac": "001565000002", "model": DESK, "extension": "202"},
    ]
    assert (await api.ok("POST", "/api/v1/import", rows))["devices_created"] == 2
    exported = await api.ok("GET", "/api/v1/export?format=json")
    assert [(r["extension"], r["keys"], r["device_keys"]) for r in exported] == [
        (
            "201",
            [{"position": 1, "type": "blf", "value": "202", "label": "Bruno"}],
            [{"position": 2, "type": "dnd", "value": "", "label": None}],
        ),
        ("202", None, None),
    ]
    bad = [
        {
            **rows[1],
            "mac": "001565000003",
            "extension": "203",
            "device_keys": [{"position": 2000, "type": "dnd"}],
        }
    ]
    reply = await api.call("POST", "/api/v1/import", bad)
    assert reply.status == 422
    assert [(e["line"], e["field"]) for e in reply.json["lines"]] == [
        (1, "device_keys[0].position")
    ]
