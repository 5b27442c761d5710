"""Secrets at rest on a real database: a stolen file reveals nothing; rotation while serving.

The file-copy tests run on SQLite (the embedded default, where "the database" is a file); the
rotation tests run on every backend through the `db` fixture.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Integer, String, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from provisiond.storage.database import Database
from provisiond.storage.models import Device
from provisiond.storage.secrets import (
    SecretBox,
    SecretError,
    census,
    init_keyring,
    key_id_of,
    open_secret_box,
    reencrypt,
    retire_keys,
    rotate_keyring,
    secret_columns,
)

SIP_PASSWORD = [Device.sip_password]


@pytest.fixture
def keyring(tmp_path: Path) -> Path:
    """A keyring with k1, outside the database's directory as in production."""
    path = tmp_path / "keys" / "secrets.json"
    init_keyring(path)
    return path


@pytest.fixture
async def sqlite_db(sqlite_template: Path, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite file of our own (its path is `db.url`'s), disposed afterwards."""
    path = tmp_path / "data" / "provisiond.db"
    path.parent.mkdir()
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite+aiosqlite:///{path}")
    yield database
    await database.dispose()


def db_file(db: Database) -> Path:
    """The SQLite file behind `db`."""
    return Path(db.url.removeprefix("sqlite+aiosqlite:///"))


def new_password(n: int) -> str:
    """A distinctive SIP password: 24 characters nothing else in the file could contain."""
    return f"Pw{n:04d}" + secrets.token_hex(9)


async def add_devices(
    db: Database, first: int, count: int, seal: SecretBox | None
) -> dict[int, str]:
    """`count` devices; their passwords encrypted by `seal` (None: legacy plaintext rows)."""
    plain: dict[int, str] = {}
    async with db.write() as session:
        for n in range(first, first + count):
            password = new_password(n)
            device = Device(
                extension=str(1000 + n),
                model_id="yealink-t46s",
                mac=f"001565{n:06x}",
                sip_username=f"user{n}",
                sip_password=seal.encrypt(password) if seal else password,
                label=f"LABEL-MARKER-{n:04d}",
            )
            session.add(device)
            await session.flush()
            plain[device.id] = password
    return plain


async def stored_passwords(db: Database) -> dict[int, str]:
    """device id -> the sip_password column as stored."""
    async with db.read() as session:
        rows = await session.execute(select(Device.id, Device.sip_password))
        return {row[0]: row[1] for row in rows}


def stolen_bytes(db: Database, into: Path) -> bytes:
    """What an attacker gets by copying the database file (and its WAL) alone."""
    into.mkdir()
    data = b""
    for suffix in ("", "-wal"):
        source = Path(f"{db_file(db)}{suffix}")
        if source.exists():
            copy = into / source.name
            shutil.copy(source, copy)
            data += copy.read_bytes()
    return data


async def test_copied_database_file_reveals_no_password(
    sqlite_db: Database, keyring: Path, tmp_path: Path
) -> None:
    box = SecretBox(keyring)
    plain = await add_devices(sqlite_db, 0, 40, box)
    stored = await stored_passwords(sqlite_db)
    assert all(stored[i] != plain[i] and key_id_of(stored[i]) == "k1" for i in plain)

    data = stolen_bytes(sqlite_db, tmp_path / "stolen")  # copied while the server runs
    for n in range(40):
        assert f"LABEL-MARKER-{n:04d}".encode() in data  # control: the copy holds the rows
    for password in plain.values():
        assert password.encode() not in data
    assert stored[next(iter(plain))].encode() in data

    # The copy opened elsewhere, with a keyring of its own: still nothing.
    copy = tmp_path / "stolen" / db_file(sqlite_db).name
    with sqlite3.connect(copy) as conn:
        values = [row[0] for row in conn.execute("SELECT sip_password FROM devices")]
    other = tmp_path / "attacker" / "secrets.json"
    init_keyring(other)
    for value in values:
        with pytest.raises(SecretError):
            SecretBox(other).decrypt(value)


async def test_legacy_plaintext_is_encrypted_and_leaves_no_trace(
    sqlite_db: Database, keyring: Path, tmp_path: Path
) -> None:
    plain = await add_devices(sqlite_db, 0, 30, None)
    before = stolen_bytes(sqlite_db, tmp_path / "before")
    assert all(p.encode() in before for p in plain.values())  # control: grep finds plaintext

    box = SecretBox(keyring)
    assert await reencrypt(sqlite_db, box, SIP_PASSWORD, batch_size=7) == 30
    stored = await stored_passwords(sqlite_db)
    assert {i: box.decrypt(v) for i, v in stored.items()} == plain
    after = stolen_bytes(sqlite_db, tmp_path / "after")
    assert [p for p in plain.values() if p.encode() in after] == []


async def test_rotation_while_serving(db: Database, keyring: Path) -> None:
    """`keys rotate` (rotate + reencrypt + retire) while a serving process keeps decrypting."""
    cli = SecretBox(keyring)
    serving = SecretBox(keyring)  # stands for `provisiond serve`, loaded before the rotation
    plain = await add_devices(db, 0, 25, cli)
    one_k1_value = (await stored_passwords(db))[next(iter(plain))]

    assert rotate_keyring(keyring) == "k2"
    plain |= await add_devices(db, 25, 5, cli)  # admin writes during the rotation
    mixed = await stored_passwords(db)
    assert sorted(str(key_id_of(v)) for v in mixed.values()) == ["k1"] * 25 + ["k2"] * 5
    assert {i: serving.decrypt(v) for i, v in mixed.items()} == plain

    async with db.read() as session:
        stamps = dict((await session.execute(select(Device.id, Device.updated_at))).all())
    assert await reencrypt(db, cli, SIP_PASSWORD, batch_size=7) == 25
    assert await reencrypt(db, cli, SIP_PASSWORD, batch_size=7) == 0
    rotated = await stored_passwords(db)
    assert {key_id_of(v) for v in rotated.values()} == {"k2"}
    assert {i: serving.decrypt(v) for i, v in rotated.items()} == plain
    async with db.read() as session:
        # Re-encryption is not a configuration change: Last-Modified stays.
        assert dict((await session.execute(select(Device.id, Device.updated_at))).all()) == stamps

    in_use = await census(db, SIP_PASSWORD, batch_size=7)
    assert (dict(in_use.by_key), in_use.plaintext) == ({"k2": 30}, 0)
    assert retire_keys(keyring, keep=set(in_use.by_key)) == ("k1",)
    fresh = SecretBox(keyring)
    assert fresh.key_ids == ("k2",)
    assert {i: fresh.decrypt(v) for i, v in rotated.items()} == plain
    assert {i: serving.decrypt(v) for i, v in rotated.items()} == plain
    with pytest.raises(SecretError, match="unknown key id 'k1'"):
        fresh.decrypt(one_k1_value)


async def test_reencrypt_refuses_undecryptable_values(db: Database, keyring: Path) -> None:
    box = SecretBox(keyring)
    plain = await add_devices(db, 0, 3, box)
    victim = sorted(plain)[1]
    async with db.write() as session:
        forged = box.encrypt("forged")[:-6] + "AAAAAA"
        await session.execute(update(Device).where(Device.id == victim).values(sip_password=forged))
    rotate_keyring(keyring)
    before = await stored_passwords(db)
    with pytest.raises(SecretError, match=rf"devices\.sip_password row {victim}"):
        await reencrypt(db, box, SIP_PASSWORD)
    assert await stored_passwords(db) == before  # the failing batch wrote nothing


class TinyBase(DeclarativeBase):
    """A model family of the test's own, to check discovery by ``Column.info``."""


class Credential(TinyBase):
    """A row with one secret column (nullable, like a future digest secret) and one plain."""

    __tablename__ = "credentials"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    digest_secret: Mapped[str | None] = mapped_column(String(255), info={"secret": True})


async def test_marked_columns_are_found_and_reencrypted(tmp_path: Path, keyring: Path) -> None:
    assert secret_columns(TinyBase) == (Credential.digest_secret,)
    assert Device.sip_password in secret_columns()  # our own models, marked by Column.info
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'tiny.db'}")
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(TinyBase.metadata.create_all)
        async with db.write() as session:
            session.add_all(
                [Credential(id=n, name=f"c{n}", digest_secret=f"digest-{n}") for n in range(1, 12)]
                + [Credential(id=99, name="none", digest_secret=None)]
            )
        box = SecretBox(keyring)
        assert await reencrypt(db, box, secret_columns(TinyBase), batch_size=4) == 11
        async with db.read() as session:
            rows = dict(
                (await session.execute(select(Credential.id, Credential.digest_secret))).all()
            )
        assert rows.pop(99) is None
        assert {n: box.decrypt(v) for n, v in rows.items() if v} == {
            n: f"digest-{n}" for n in range(1, 12)
        }
    finally:
        await db.dispose()


async def test_open_secret_box_creates_on_first_start(db: Database, tmp_path: Path) -> None:
    plain = await add_devices(db, 0, 4, None)  # an install from before encryption
    path = tmp_path / "var" / "keys" / "secrets.json"
    box = await open_secret_box(db, path, create=True, columns=SIP_PASSWORD)
    assert path.exists()
    stored = await stored_passwords(db)
    assert {i: box.decrypt(v) for i, v in stored.items()} == plain


async def test_open_secret_box_never_strands_encrypted_values(
    db: Database, keyring: Path, tmp_path: Path
) -> None:
    await add_devices(db, 0, 2, SecretBox(keyring))
    lost = tmp_path / "lost" / "secrets.json"
    with pytest.raises(SecretError, match=r"missing .*k1"):
        await open_secret_box(db, lost, create=True, columns=SIP_PASSWORD)
    assert not lost.exists()
    with pytest.raises(SecretError, match="missing"):
        await open_secret_box(db, lost, create=False, columns=SIP_PASSWORD)

    wrong = tmp_path / "wrong" / "secrets.json"
    init_keyring(wrong)
    rotate_keyring(wrong)
    retire_keys(wrong, keep=set())  # holds k2 only
    with pytest.raises(SecretError, match="lacks keys k1"):
        await open_secret_box(db, wrong, create=True, columns=SIP_PASSWORD)
