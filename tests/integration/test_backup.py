"""`provisiond backup` / `restore`: a full round trip on each backend and across them.

A world is built through the services (users, devices, a primary switch, licences, sites,
settings, tokens, phone activity, audit rows). The backup runs while an admin change and a
phone-side last-seen flush commit between its tables; it must hold the state of its start
(one snapshot), and the restored database (fresh, on the same and on the other backend) must
dump identically to it, decrypt its SIP passwords with the same keyring and keep generating
ids. Damaged files are refused with a clear error and nothing written.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from provisiond.app import build_services
from provisiond.cli import main
from provisiond.provisioning.activity import ActivityRecorder, Sighting
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, DevicePatch, TokenCreate, UserCreate
from provisiond.services.sites import SiteCreate
from provisiond.settings import Settings
from provisiond.storage.backup import BackupError, backup, restore, verify
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, utcnow
from provisiond.storage.secrets import SecretBox
from tests.databases import pg_database, sqlite_copy
from tests.dbdump import dump, refused

ACTOR = "backup@test"
CHOSEN = "Chosen-Sip-Pass-7f3Q"  # a SIP password that must never appear in the file


@pytest.fixture(params=["same", "other"])
def target_url(
    request: pytest.FixtureRequest, database_url: str, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """A fresh migrated database on the source's backend ("same") or the other one."""
    source = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    backend = source if request.param == "same" else {"sqlite": "postgresql"}.get(source, "sqlite")
    if backend == "sqlite":
        yield sqlite_copy(sqlite_template, tmp_path / "restored.db")
        return
    template = request.getfixturevalue("pg_template")  # skips without PostgreSQL
    with pg_database("provisiond_r", template) as url:
        yield url


async def build_world(services: Services, db: Database) -> dict[str, Any]:
    """Every kind of row, through the same code paths as the API and the phone side."""
    await services.platform.put_licences({"APP_USERS": 3, "USER_CLIENT": 2}, ACTOR)
    await services.platform.put_settings(
        {"ntp_server": "ntp.restore.test", "sip": {"registrar": "pbx.restore.test"}}, ACTOR
    )
    site = await services.sites.create(
        SiteCreate(name="hq", networks=["10.0.0.0/8", "2001:db8::/32"], lock_on_first_boot=True),
        ACTOR,
    )
    mario = await services.users.create(
        UserCreate(username="mrossi", display_name="Mario Rossi", main_extension="200"), ACTOR
    )
    anna = await services.users.create(
        UserCreate(username="abianchi", display_name="Anna", main_extension="300"), ACTOR
    )
    gone = await services.users.create(
        UserCreate(username="gone", display_name="Gone", main_extension="900"), ACTOR
    )
    await services.users.delete(gone["id"], ACTOR)  # a gap in the ids
    first = await services.devices.create(
        DeviceCreate(
            extension="200", model="yealink-t46s", mac="001565000001", user_id=mario["id"]
        ),
        ACTOR,
    )
    second = await services.devices.create(
        DeviceCreate(extension="201", model="snom-d785", mac="000413000002", user_id=mario["id"]),
        ACTOR,
    )
    await services.assignments.set_primary(mario["id"], second["id"], actor=ACTOR)
    spare = await services.devices.create(
        DeviceCreate(
            extension="250", model="yealink-t46s", mac="001565000003", sip_password=CHOSEN
        ),
        ACTOR,
    )
    await services.devices.create(
        DeviceCreate(
            extension="300", model="polycom-vvx-410", mac="0004f2000004", user_id=anna["id"]
        ),
        ACTOR,
    )
    await services.tokens.create(TokenCreate(name="ops"), ACTOR)
    await services.tokens.create(TokenCreate(name="viewer", scope="read"), ACTOR)
    phones = ActivityRecorder(db)
    phones.seen(first["id"], Sighting("001565000001", utcnow(), "10.1.2.3", "Yealink", "66.86"))
    phones.unknown(Sighting("001565abcdef", utcnow(), "10.1.2.4", "Yealink SIP-T48S"))
    phones.lock(first["id"], site["id"])
    await phones.flush()
    return {"mario": mario, "spare": spare, "first": first}


async def _sql_nulls(db: Database, ids: set[int]) -> tuple[int, int]:
    """Audit rows among `ids` whose before/after is SQL NULL (rather than a JSON null)."""
    counts = []
    async with db.read() as session:
        for column in (AuditEntry.before, AuditEntry.after):
            query = select(func.count()).where(AuditEntry.id.in_(ids), column.is_(None))
            counts.append(await session.scalar(query) or 0)
    return counts[0], counts[1]


async def test_round_trip_while_writing(
    services: Services,
    db: Database,
    secrets: SecretBox,
    settings: Settings,
    target_url: str,
    tmp_path: Path,
) -> None:
    world = await build_world(services, db)
    phones = ActivityRecorder(db)

    async def serving_meanwhile(table: str, _rows: int) -> None:
        if table != "api_tokens":  # the first table: every later one is read after this
            return
        await services.devices.update(world["spare"]["id"], DevicePatch(label="moved"), ACTOR)
        phones.seen(world["first"]["id"], Sighting("001565000001", utcnow(), "10.9.9.9", "Y"))
        phones.unknown(Sighting("001565fedcba", utcnow(), "10.9.9.8", "Yealink"))
        await phones.flush()

    snapshot = await dump(db)
    file = tmp_path / "world.backup"
    written = await backup(db, file, progress=serving_meanwhile)
    assert await dump(db) != snapshot, "the writes during the backup committed"
    assert written.rows["devices"] == 4
    assert written.rows["users"] == 2
    assert file.stat().st_mode & 0o777 == 0o600
    text = gzip.decompress(file.read_bytes()).decode()
    assert CHOSEN not in text
    assert "enc1:" in text
    assert "moved" not in text, "the backup is one snapshot"
    assert "10.9.9.9" not in text, "the backup is one snapshot"

    target = Database(target_url)
    try:
        restored = await restore(target, file)
        assert restored.rows == written.rows
        assert await dump(target) == snapshot
        # The phone's lock audit has no "before" (SQL NULL); admin rows store a JSON null.
        ids = {row["id"] for row in snapshot["audit_log"]}
        source_nulls = await _sql_nulls(db, ids)
        assert source_nulls[0] >= 1
        assert await _sql_nulls(target, ids) == source_nulls
        await _check_restored(target, settings, secrets, world)
    finally:
        await target.dispose()


async def _check_restored(
    target: Database, settings: Settings, secrets: SecretBox, world: dict[str, Any]
) -> None:
    """Secrets decrypt with the same keyring; new rows get fresh ids (sequences follow)."""
    services = build_services(settings, target, secrets)
    revealed = await services.devices.reveal_password(world["spare"]["id"], ACTOR)
    assert revealed["sip_password"] == CHOSEN
    await services.devices.reveal_password(world["first"]["id"], ACTOR)
    mario = await services.users.get(world["mario"]["id"])
    assert mario["main_extension"] == "201"
    newcomer = await services.users.create(
        UserCreate(username="new", display_name="New", main_extension="400"), ACTOR
    )
    assert newcomer["id"] > world["mario"]["id"] + 1
    device = await services.devices.create(
        DeviceCreate(extension="400", model="yealink-t46s", mac="001565000009"), ACTOR
    )
    assert device["id"] > world["spare"]["id"]
    await services.sites.create(SiteCreate(name="branch", networks=["192.0.2.0/24"]), ACTOR)
    await services.tokens.create(TokenCreate(name="after-restore"), ACTOR)


# -- refusals ----------------------------------------------------------------------------------


def _rewrite(source: Path, target: Path, edit: Callable[[list[str]], list[str]]) -> Path:
    lines = gzip.decompress(source.read_bytes()).decode().splitlines(keepends=True)
    target.write_bytes(gzip.compress("".join(edit(lines)).encode()))
    return target


def _edit_row(table: str, change: Callable[[list[Any]], None]) -> Callable[[list[str]], list[str]]:
    """An edit that changes the first row of `table` (column values by position)."""

    def edit(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith(f'{{"table":"{table}"'))
        row = json.loads(lines[start + 1])
        change(row)
        lines[start + 1] = json.dumps(row) + "\n"
        return lines

    return edit


@pytest.fixture
async def world_file(services: Services, db: Database, tmp_path: Path) -> Path:
    """A backup of the built world."""
    await build_world(services, db)
    file = tmp_path / "world.backup"
    await backup(db, file)
    return file


async def test_damaged_files_are_refused_and_nothing_is_written(
    db: Database, world_file: Path, tmp_path: Path
) -> None:
    raw = world_file.read_bytes()
    truncated = tmp_path / "truncated"
    truncated.write_bytes(raw[: len(raw) // 2])
    flipped = tmp_path / "flipped"
    middle = len(raw) // 2
    flipped.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :])
    cut = _rewrite(world_file, tmp_path / "cut", lambda lines: lines[:-1])
    not_gzip = tmp_path / "plain"
    not_gzip.write_bytes(b'{"format": "something else"}\n')
    bad_mac = _rewrite(world_file, tmp_path / "mac", _edit_row("devices", _set(3, "zz")))
    expectations = {
        truncated: "truncated or corrupt",
        flipped: str(flipped),  # where deflate notices depends on the byte: any clear error
        cut: "truncated",
        not_gzip: "truncated or corrupt",
        bad_mac: "devices.mac",
        tmp_path / "missing": "no such file",
    }
    for file, message in expectations.items():
        # force: even a restore allowed to replace everything must leave the database alone.
        async with refused(db, BackupError) as info:
            await restore(db, file, force=True)
        assert message in info.value.detail, (file.name, info.value.detail)
    with pytest.raises(BackupError):
        verify(flipped)


def _set(index: int, value: Any) -> Callable[[list[Any]], None]:
    def change(row: list[Any]) -> None:
        row[index] = value

    return change


async def test_load_failure_rolls_everything_back(
    db: Database, world_file: Path, tmp_path: Path
) -> None:
    """A file that parses but breaks a unique key: the deletes of --force are undone too."""

    def duplicate_mac(lines: list[str]) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith('{"table":"devices"'))
        first, second = json.loads(lines[start + 1]), json.loads(lines[start + 2])
        second[3] = first[3]
        lines[start + 2] = json.dumps(second) + "\n"
        return lines

    broken = _rewrite(world_file, tmp_path / "dup", duplicate_mac)
    verify(broken)  # well-formed: only the database can tell
    async with refused(db, BackupError) as info:
        await restore(db, broken, force=True)
    assert "nothing was restored" in info.value.detail


async def test_refuses_a_non_empty_database_without_force(
    db: Database, world_file: Path, services: Services
) -> None:
    async with refused(db, BackupError) as info:
        await restore(db, world_file)
    assert "--force" in info.value.detail
    snapshot = await dump(db)
    await services.users.create(
        UserCreate(username="later", display_name="Later", main_extension="700"), ACTOR
    )
    await restore(db, world_file, force=True)
    assert await dump(db) == snapshot


async def test_refuses_another_schema_revision(
    db: Database, world_file: Path, tmp_path: Path
) -> None:
    def older(lines: list[str]) -> list[str]:
        head = json.loads(lines[0])
        head["schema_revision"] = "0001"
        return [json.dumps(head) + "\n", *lines[1:]]

    old = _rewrite(world_file, tmp_path / "old", older)
    async with refused(db, BackupError) as info:
        await restore(db, old, force=True)
    assert "0001" in info.value.detail
    assert "provisiond db upgrade" in info.value.detail


async def test_refuses_a_database_that_was_never_migrated(world_file: Path, tmp_path: Path) -> None:
    empty = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(BackupError, match="db upgrade"):
            await restore(empty, world_file)
    finally:
        await empty.dispose()


# -- the command line --------------------------------------------------------------------------


def test_command_line_round_trip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """backup prints where the keyring is (not in the file); restore refuses, then --force."""
    for name in ("PROVISIOND_DATABASE_URL", "PROVISIOND_KEYRING"):
        monkeypatch.delenv(name, raising=False)
    source, copy, file = tmp_path / "a", tmp_path / "b", tmp_path / "site.backup"

    def run(data_dir: Path, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("PROVISIOND_DATA_DIR", str(data_dir))
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert (
        run(
            source,
            "device",
            "create",
            "--extension",
            "200",
            "--model",
            "yealink-t46s",
            "--mac",
            "001565aabbcc",
            "--sip-password",
            CHOSEN,
        )[0]
        == 0
    )
    code, out, _ = run(source, "backup", str(file))
    assert code == 0
    assert "keyring" in json.loads(out)["note"]
    code, out, _ = run(copy, "restore", str(file))
    assert code == 0
    assert "lacks keys k1" in json.loads(out)["note"]
    code, _, err = run(copy, "restore", str(file))
    assert code == 1
    assert err.startswith("provisiond: error: the database is not empty")
    (copy / "keys").mkdir(mode=0o700)
    shutil.copy(source / "keys" / "secrets.json", copy / "keys" / "secrets.json")
    code, out, _ = run(copy, "restore", "--force", str(file))
    assert code == 0
    assert "lacks" not in json.loads(out)["note"]
    code, out, _ = run(copy, "device", "reveal-password", "1")
    assert json.loads(out)["sip_password"] == CHOSEN
