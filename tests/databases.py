"""Fresh test databases: a copy of the migrated SQLite template, or a PostgreSQL database
(empty, or cloned from the migrated template) that is dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.engine import make_url

from provisiond.provisioning.notify import asyncpg_dsn

PG_URL = os.environ.get("PROVISIOND_TEST_DATABASE_URL", "")


def pg_dsn(url: str = "") -> str:
    """The asyncpg form of a SQLAlchemy URL (default: the test server's maintenance DB)."""
    return asyncpg_dsn(url or PG_URL)


def pg_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the test server."""
    return make_url(PG_URL).set(database=name).render_as_string(False)


async def create_pg_database(prefix: str, template: str | None = None) -> str:
    """Create a uniquely named database (cloned from `template` when given); its name."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    clone = f' TEMPLATE "{template}"' if template else ""
    conn = await asyncpg.connect(pg_dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{clone}')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    """Drop a test database, even with sessions still open."""
    conn = await asyncpg.connect(pg_dsn())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextmanager
def pg_database(prefix: str, template: str | None = None) -> Iterator[str]:
    """A PostgreSQL database for the duration of the block; yields its URL."""
    name = asyncio.run(create_pg_database(prefix, template))
    try:
        yield pg_url(name)
    finally:
        asyncio.run(drop_pg_database(name))


def sqlite_copy(template: Path, path: Path) -> str:
    """A copy of the migrated SQLite template at `path`; its URL."""
    shutil.copy(template, path)
    return f"sqlite+aiosqlite:///{path}"
