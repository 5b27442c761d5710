"""Bulk import and export, and the Asterisk export, over a real database (SQLite and PostgreSQL).

Import is all or nothing: a file with one bad line is refused with every problem listed by
line and column, and the database dump is unchanged. A good file creates users, devices,
assignments and primaries by the domain rules; export -> import into a fresh database gives
the same export back. The Asterisk export is parsed and checked against the database: every
device has its endpoint, auth and aor, and dialling a main extension rings exactly the user's
active devices.
"""

from __future__ import annotations

import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisiond.app import build_services
from provisiond.domain.errors import Conflict
from provisiond.services import Services
from provisiond.services.asterisk import write_config
from provisiond.services.commands import DeviceCreate, DevicePatch, UserCreate, UserPatch
from provisiond.services.fleet import ImportRefused
from provisiond.settings import Settings
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, UnprovisionedDevice
from provisiond.storage.secrets import SecretBox
from tests.databases import create_pg_database, drop_pg_database, pg_url, sqlite_copy
from tests.dbdump import dump, refused

HEADER = "mac,model,extension,username,display_name,primary\n"


def csv(*lines: str, header: str = HEADER) -> str:
    return header + "".join(line + "\n" for line in lines)


async def user_by_name(services: Services, username: str) -> dict[str, Any]:
    found = await services.users.list(search=username)
    return next(u for u in found["items"] if u["username"] == username)


# -- refusals -------------------------------------------------------------------------------


async def test_one_bad_line_refuses_everything_with_a_report(
    services: Services, db: Database
) -> None:
    """Every problem of every line, by line number and column; nothing changes."""
    await services.users.create(
        UserCreate(username="bob", display_name="Bob", main_extension="300"), "t"
    )
    await services.devices.create(
        DeviceCreate(extension="301", model="yealink-t46s", mac="00:15:65:00:00:99"), "t"
    )
    text = csv(
        "00:15:65:00:00:01,yealink-t46s,201,mrossi,Mario Rossi,1",  # 2: fine
        "zz,yealink-t99,20x,mrossi,,maybe",  # 3: four bad fields
        "00:15:65:00:00:01,yealink-t46s,202,mrossi,,",  # 4: MAC of line 2
        "00:15:65:00:00:03,yealink-t46s,201,,,",  # 5: extension of line 2
        "00:15:65:00:00:04,yealink-t46s,301,,,",  # 6: extension of an existing device
        "00:15:65:00:00:99,yealink-t46s,204,,,",  # 7: MAC of an existing device
        "00:15:65:00:00:05,yealink-t46s,205,newbie,,",  # 8: a new user needs a display name
        "00:15:65:00:00:06,yealink-t46s,300,carla,Carla,",  # 9: bob's main extension
        "00:15:65:00:00:07,yealink-t46s,207,bob,Robert,",  # 10: bob is called Bob
        "00:15:65:00:00:08,yealink-t46s,208,,Nobody,1",  # 11: no user for these
        "00:15:65:00:00:09,yealink-t46s,209,mrossi,Mario Rossi,yes",  # 12: second primary
    )
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    found = [(e.line, e.field) for e in info.value.lines]
    assert found == [
        (3, "mac"),
        (3, "model"),
        (3, "extension"),
        (3, "primary"),
        (4, "mac"),
        (5, "extension"),
        (6, "extension"),
        (7, "mac"),
        (8, "display_name"),
        (9, "extension"),
        (10, "display_name"),
        (11, "display_name"),
        (11, "primary"),
        (12, "primary"),
    ]
    details = {(e.line, e.field): e.detail for e in info.value.lines}
    assert "line 2" in details[(4, "mac")]
    assert "300 belongs to another user" in details[(9, "extension")]
    assert info.value.detail == "14 problem(s) on 10 line(s); nothing was imported"


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("mac,model,extension,username,primary\n", "missing column 'display_name'"),
        (HEADER.rstrip() + ",colour\n", "unknown column 'colour'"),
        ("mac,mac,model,extension,username,display_name,primary\n", "appears twice"),
        ("", "empty"),
    ],
)
async def test_header_problems(services: Services, db: Database, header: str, problem: str) -> None:
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(header, "t")
    assert info.value.lines[0].line == 1
    assert problem in info.value.lines[0].detail


async def test_rules_refused_in_planning(services: Services, db: Database) -> None:
    """Rules between users: a main extension that is another user's device extension."""
    text = csv(
        "mac,model,extension,username,display_name,primary,main_extension",
        header="",
    )
    text += "00:15:65:00:00:01,yealink-t46s,201,anna,Anna,,\n"
    text += "00:15:65:00:00:02,yealink-t46s,202,bruno,Bruno,,201\n"
    async with refused(db, ImportRefused) as info:
        await services.fleet.import_csv(text, "t")
    assert [(e.line, e.field) for e in info.value.lines] == [(3, "main_extension")]


# -- what a good import does ------------------------------------------------------------------


async def test_import_creates_users_devices_and_primaries(services: Services, db: Database) -> None:
    await services.users.create(
        UserCreate(username="bob", display_name="Bob", main_extension="300"), "t"
    )
    await services.users.create(
        UserCreate(username="carla", display_name="Carla", main_extension="400"), "t"
    )
    carla_first = await services.devices.create(
        DeviceCreate(extension="401", model="yealink-t46s", mac="00:15:65:00:01:01"), "t"
    )
    carla = await user_by_name(services, "carla")
    await services.assignments.assign(carla["id"], carla_first["id"], move=False, actor="t")
    async with db.background() as session:
        session.add(UnprovisionedDevice(mac="001565000001", vendor="yealink"))
    text = csv(
        "001565000001,yealink-t46s,201,mrossi,Mario Rossi,",
        "00-15-65-00-00-02,yealink-t46s,202,mrossi,,1",  # primary: main becomes 202
        "0015.6500.0003,snom-d785,203,anna,Anna,",  # one device: primary, main 203
        "00:15:65:00:00:04,yealink-t46s,204,,,",  # unassigned
        "00:15:65:00:00:05,yealink-t46s,301,bob,Bob,1",  # bob had none: rule 1, main stays
        "00:15:65:00:00:06,yealink-t46s,402,carla,,1",  # carla had one: rule 2, main -> 402
    )
    result = await services.fleet.import_csv(text, "admin")
    assert result == {
        "lines": 6,
        "devices_created": 6,
        "accounts_created": 0,
        "users_created": 2,
        "users_updated": 2,
        "main_extension_changed": [{"username": "carla", "old": "400", "new": "402"}],
    }
    mario = await user_by_name(services, "mrossi")
    assert (mario["display_name"], mario["main_extension"]) == ("Mario Rossi", "202")
    primary = next(d for d in mario["devices"] if d["id"] == mario["primary_device_id"])
    assert primary["extension"] == "202"
    assert [d["sip_username"] for d in mario["devices"]] == ["201", "202"]
    assert (await user_by_name(services, "anna"))["main_extension"] == "203"
    bob = await user_by_name(services, "bob")
    assert bob["main_extension"] == "300"
    assert bob["devices"][0]["id"] == bob["primary_device_id"]
    carla = await user_by_name(services, "carla")
    assert carla["main_extension"] == "402"
    assert [d["extension"] for d in carla["devices"] if d["id"] == carla["primary_device_id"]] == [
        "402"
    ]
    loose = (await services.devices.list(extension_prefix="204"))["items"][0]
    assert loose["user_id"] is None
    async with db.read() as session:
        assert await session.scalar(select(func.count()).select_from(UnprovisionedDevice)) == 0
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert actions.count("device.create") == 7  # carla's first device + 6 imported
    assert actions.count("user.create") == 4
    assert actions.count("user.assign_device") == 3  # carla by the API, bob and carla here
    assert actions.count("fleet.import") == 1
    # The directory service sees the result: dialling 202 rings both of Mario's devices.
    answer = await services.directory.lookup("202")
    rings = [t["extension"] for t in answer["ring_targets"] if t["type"] == "device"]
    assert rings == ["202", "201"]


async def test_json_rows_and_the_display_name_alias(services: Services) -> None:
    result = await services.fleet.import_json(
        {
            "rows": [
                {
                    "mac": "001565000001",
                    "model": "yealink-t46s",
                    "extension": "201",
                    "username": "anna",
                    "display_name": "Anna",
                    "primary": True,
                    "active": False,
                },
            ]
        },
        "t",
    )
    assert result["devices_created"] == 1
    text = "MAC;Model;Extension;Username;Display Name;Primary\n001565000002;yealink-t46s;202;;;\n"
    assert (await services.fleet.import_csv(text, "t"))["devices_created"] == 1
    anna = await user_by_name(services, "anna")
    assert anna["devices"][0]["active"] is False


# -- export and the round trip ----------------------------------------------------------------


@pytest.fixture
async def fresh(
    request: pytest.FixtureRequest,
    database_url: str,
    sqlite_template: Path,
    tmp_path: Path,
    settings: Settings,
    secrets: SecretBox,
) -> AsyncIterator[Services]:
    """A second, empty migrated database on the same backend as the test's."""
    if database_url.startswith("sqlite"):
        url, name = sqlite_copy(sqlite_template, tmp_path / "fresh.db"), None
    else:
        name = await create_pg_database("provisiond_f", request.getfixturevalue("pg_template"))
        url = pg_url(name)
    database = Database(url)
    yield build_services(settings, database, secrets)
    await database.dispose()
    if name is not None:
        await drop_pg_database(name)


async def populate(services: Services) -> None:
    """Users and devices made through the single-object services (not the import)."""
    mario = await services.users.create(
        UserCreate(username="mrossi", display_name="Mario Rossi", main_extension="200"), "t"
    )
    for ext, n in (("201", 1), ("202", 2)):
        await services.devices.create(
            DeviceCreate(
                extension=ext,
                model="yealink-t46s",
                mac=f"0015650000{n:02x}",
                user_id=mario["id"],
                label="desk" if n == 1 else None,
            ),
            "t",
        )  # rule 1: 201 is primary, the main extension stays 200
    anna = await services.users.create(
        UserCreate(username="anna", display_name="Anna Bianchi", main_extension="300"), "t"
    )
    second = None
    for ext, n in (("300", 3), ("301", 4)):
        second = await services.devices.create(
            DeviceCreate(
                extension=ext,
                model="snom-d785",
                mac=f"0015650000{n:02x}",
                user_id=anna["id"],
                active=n == 3,
            ),
            "t",
        )
    assert second is not None
    await services.assignments.set_primary(anna["id"], second["id"], actor="t")  # main 301
    await services.devices.create(
        DeviceCreate(extension="500", model="polycom-vvx-400", mac="001565000005"), "t"
    )


async def test_export_import_round_trip(services: Services, fresh: Services) -> None:
    await populate(services)
    exported = await services.fleet.export_csv()
    assert exported.splitlines()[:2] == [
        "mac,model,extension,username,display_name,primary,main_extension,active,label,slot,"
        "keys,device_keys",
        "00:15:65:00:00:04,snom-d785,301,anna,Anna Bianchi,1,301,0,,1,,",
    ]
    await fresh.fleet.import_csv(exported, "t")
    assert await fresh.fleet.export_csv() == exported
    assert await fresh.fleet.export_rows() == await services.fleet.export_rows()
    mario = await user_by_name(fresh, "mrossi")
    assert mario["main_extension"] == "200"  # rule 1 state survives: main != primary's


async def test_json_round_trip(services: Services, fresh: Services) -> None:
    await populate(services)
    rows = await services.fleet.export_rows()
    await fresh.fleet.import_json(rows, "t")
    assert await fresh.fleet.export_rows() == rows


# -- the Asterisk export ----------------------------------------------------------------------


def parse_conf(text: str) -> list[tuple[str, dict[str, str]]]:
    """Asterisk-style sections, repeated names allowed; ``\\;`` is a literal semicolon."""
    sections: list[tuple[str, dict[str, str]]] = []
    for raw in text.splitlines():
        line = re.split(r"(?<!\\);", raw, maxsplit=1)[0].strip().replace("\\;", ";")
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append((line[1:-1], {}))
        elif "=>" in line:
            key, value = line.split("=>", 1)
            sections[-1][1].setdefault(key.strip(), "")
            sections[-1][1][key.strip()] += value.strip() + "\n"
        else:
            key, value = line.split("=", 1)
            sections[-1][1][key.strip()] = value.strip()
    return sections


async def test_asterisk_export_matches_the_database(
    services: Services, db: Database, tmp_path: Path
) -> None:
    await populate(services)
    mario = await user_by_name(services, "mrossi")
    await services.users.update(mario["id"], UserPatch(cli_custom="0612345"), "t")
    await services.users.update(mario["id"], UserPatch(display_name='Mario "Semi;colon"'), "t")
    tricky = mario["devices"][1]["id"]
    await services.devices.update(tricky, DevicePatch(sip_password="pa;ss[w]ord!"), "t")
    config = await services.fleet.asterisk("admin")
    sections = parse_conf(config.pjsip)
    devices = (await services.devices.list(limit=500))["items"]
    assert config.endpoints == len(devices) == 5
    for device in devices:
        name = device["sip_username"]
        kinds = {body["type"]: body for section, body in sections if section == name}
        assert set(kinds) == {"endpoint", "auth", "aor"}, name
        assert (kinds["endpoint"]["auth"], kinds["endpoint"]["aors"]) == (name, name)
        assert kinds["auth"]["auth_type"] == "userpass"
        assert kinds["auth"]["username"] == name
        revealed = await services.devices.reveal_password(device["id"], "t")
        assert kinds["auth"]["password"] == revealed["sip_password"]
        assert kinds["aor"]["max_contacts"] == "1"
        owner = await services.users.get(device["user_id"]) if device["user_id"] else None
        number = owner["presented_cli"] if owner else device["extension"]
        assert kinds["endpoint"]["callerid"].endswith(f"<{number}>")
    assert len(sections) == 3 * len(devices)
    # The dialplan: one context; a main extension rings exactly the user's active devices.
    [(context, body)] = parse_conf(config.extensions)
    assert context == "provisiond-users"
    dial = {}
    for line in body["exten"].splitlines():
        found = re.fullmatch(r"(\d+),1,Dial\(([^,]+),30\)", line)
        assert found is not None, line
        assert found[1] not in dial, line  # each number once
        dial[found[1]] = [t.removeprefix("PJSIP/") for t in found[2].split("&")]
    by_name = {d["sip_username"]: d for d in devices}
    for user in (await services.users.list())["items"]:
        active = [d["sip_username"] for d in user["devices"] if d["active"]]
        assert sorted(dial[user["main_extension"]]) == sorted(active)
        primary = next(d for d in user["devices"] if d["id"] == user["primary_device_id"])
        if primary["active"]:
            assert dial[user["main_extension"]][0] == primary["sip_username"]  # primary first
    for targets in dial.values():
        assert all(by_name[t]["active"] for t in targets)  # an inactive device never rings
    assert dial["201"] == ["201"]  # a device extension dials that device alone
    assert dial["500"] == ["500"]  # unassigned devices too
    assert dial["301"] == ["300"]  # Anna's main: her inactive primary does not ring
    written = write_config(config, tmp_path / "asterisk")
    assert [stat.S_IMODE(p.stat().st_mode) for p in written] == [0o600, 0o600]
    assert written[0].read_text() == config.pjsip
    async with db.read() as session:
        actions = (await session.scalars(select(AuditEntry.action))).all()
    assert "fleet.export_asterisk" in actions


async def test_asterisk_refuses_shared_sip_usernames(services: Services, db: Database) -> None:
    for ext, n in (("201", 1), ("202", 2)):
        await services.devices.create(
            DeviceCreate(
                extension=ext, model="yealink-t46s", mac=f"0015650000{n:02x}", sip_username="shared"
            ),
            "t",
        )
    async with refused(db, Conflict) as info:
        await services.fleet.asterisk("t")
    assert "shared" in info.value.detail


async def test_export_of_an_empty_database(services: Services, db: Database) -> None:
    assert (await services.fleet.export_csv()).count("\n") == 1
    assert await services.fleet.export_rows() == []
    before = await dump(db)
    result = await services.fleet.import_csv(HEADER, "t")
    assert result["devices_created"] == 0
    assert {k: v for k, v in (await dump(db)).items() if k != "audit_log"} == {
        k: v for k, v in before.items() if k != "audit_log"
    }
