"""Migrations on each backend: models and migrations agree, head is applied, down/up works."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.util.exc import CommandError
from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from provisiond.storage import migrate
from provisiond.storage.database import Database, create_engine
from provisiond.storage.models import Base, DeviceModel

# The vendors migration 0001 seeded; start-up's catalogue sync (models.toml) adds the rest.
SEEDED_VENDORS = {
    "yealink",
    "polycom",
    "cisco_spa",
    "cisco_sep",
    "grandstream",
    "snom",
    "fanvil",
    "gigaset",
    "aastra",
    "panasonic",
    "htek",
}
VENDORS = SEEDED_VENDORS | {"alcatel", "avaya", "sangoma", "obihai"}


def _alembic(connection: Connection, url: str, direction: str, revision: str) -> None:
    config = migrate.alembic_config(url)
    config.attributes["connection"] = connection
    if direction == "downgrade":
        command.downgrade(config, revision)
    else:
        command.upgrade(config, revision)


async def run_alembic(url: str, direction: str, revision: str) -> None:
    """Run an Alembic upgrade/downgrade on our own engine, as provisiond.storage.migrate does
    (SQLite foreign keys off while tables are rebuilt, then checked)."""
    engine = create_engine(url, migrating=True)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_alembic, url, direction, revision)
            await connection.commit()
            if connection.dialect.name == "sqlite":
                broken = (await connection.exec_driver_sql("PRAGMA foreign_key_check")).all()
                assert broken == []
    finally:
        await engine.dispose()


async def table_names(url: str) -> set[str]:
    """The tables that exist in the database."""
    engine = create_engine(url)
    try:
        async with engine.connect() as connection:
            names = await connection.run_sync(lambda c: inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def catalogue_vendors(url: str) -> dict[str, int]:
    """How many catalogue models each vendor has."""
    db = Database(url)
    try:
        async with db.read() as session:
            rows = (await session.scalars(select(DeviceModel))).all()
    finally:
        await db.dispose()
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.vendor] = counts.get(row.vendor, 0) + 1
    return counts


async def test_models_and_migrations_agree(database_url: str) -> None:
    await migrate.check(database_url)


async def test_database_is_at_head(database_url: str) -> None:
    head = migrate.head_revision()
    assert head is not None
    assert await migrate.current_revision(database_url) == head


async def test_catalogue_has_the_models_of_every_vendor(database_url: str) -> None:
    counts = await catalogue_vendors(database_url)
    assert set(counts) == VENDORS
    assert all(n >= 1 for n in counts.values())


async def test_downgrade_to_base_then_upgrade(database_url: str) -> None:
    await run_alembic(database_url, "downgrade", "base")
    assert await migrate.current_revision(database_url) is None
    assert not (await table_names(database_url)) & set(Base.metadata.tables)
    with pytest.raises(CommandError):
        await migrate.check(database_url)  # proves `check` can fail: the schema is missing
    await run_alembic(database_url, "upgrade", "head")
    assert await migrate.current_revision(database_url) == migrate.head_revision()
    assert set(Base.metadata.tables) <= await table_names(database_url)
    await migrate.check(database_url)
    assert set(await catalogue_vendors(database_url)) == SEEDED_VENDORS
