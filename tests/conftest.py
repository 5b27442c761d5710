"""Shared fixtures: a real, migrated database per test, on SQLite and (when configured) PostgreSQL.

Set PROVISIOND_TEST_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/test to run every
database test on PostgreSQL too; without it those runs are skipped with that reason. Each
PostgreSQL test gets its own database cloned from a migrated template, so tests never see each
other's rows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from provisiond.app import build_services, sync_models
from provisiond.services import Services
from provisiond.settings import Settings, load_settings
from provisiond.storage import migrate
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry
from provisiond.storage.secrets import SecretBox, init_keyring
from tests.databases import (
    PG_URL,
    create_pg_database,
    drop_pg_database,
    pg_database,
    pg_url,
    sqlite_copy,
)

BACKENDS = ["sqlite", "postgresql"]


async def migrated_with_catalogue(url: str) -> None:
    """Migrate `url` and write the repository's model catalogue, as start-up does.

    The installation's own audit row (catalogue.sync) is removed: tests start from a fresh
    installation and count the audit rows their own changes write.
    """
    await migrate.upgrade(url)
    db = Database(url)
    try:
        await sync_models(Settings(database_url=url), db)
        async with db.engine.begin() as connection:
            await connection.execute(delete(AuditEntry))
    finally:
        await db.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating once keeps the suite fast)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    asyncio.run(migrated_with_catalogue(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL template database (session-wide), dropped at the end."""
    if not PG_URL:
        pytest.skip("PostgreSQL tests need PROVISIOND_TEST_DATABASE_URL (.ci/run sets it)")
    name = asyncio.run(create_pg_database("provisiond_tpl"))
    asyncio.run(migrated_with_catalogue(pg_url(name)))
    yield name
    asyncio.run(drop_pg_database(name))


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, sqlite_template: Path, tmp_path: Path
) -> Iterator[str]:
    """A fresh migrated database URL for one test, on each backend."""
    if request.param == "sqlite":
        yield sqlite_copy(sqlite_template, tmp_path / "provisiond.db")
        return
    with pg_database("provisiond_t", request.getfixturevalue("pg_template")) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for a test: its own data dir and database, a known registrar."""
    return load_settings(
        environ={
            "PROVISIOND_DATA_DIR": str(tmp_path / "var"),
            "PROVISIOND_DATABASE_URL": database_url,
            "PROVISIOND_SIP_REGISTRAR": "pbx.example.test",
            "PROVISIOND_NTP_SERVER": "ntp.example.test",
            "PROVISIOND_TIMEZONE": "Europe/Rome",
            "PROVISIOND_FIRMWARE_DIR": str(tmp_path / "firmware"),
        }
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The test's Database, disposed afterwards."""
    database = Database(settings.effective_database_url)
    yield database
    await database.dispose()


@pytest.fixture
def secrets(settings: Settings) -> SecretBox:
    """A fresh keyring for the test's SIP secrets (outside the database, as in production)."""
    init_keyring(settings.keyring_path)
    return SecretBox(settings.keyring_path)


@pytest.fixture
def services(db: Database, settings: Settings, secrets: SecretBox) -> Services:
    """The service layer over the test database."""
    return build_services(settings, db, secrets)
