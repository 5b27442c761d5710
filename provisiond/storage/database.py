"""The async engine and the transaction boundaries every use case goes through.

SQLite (aiosqlite) is the embedded default: WAL journal, foreign keys on, a busy timeout, and
``BEGIN IMMEDIATE`` for admin writes so that two writers never both read-then-write (write skew
on licence counts or the primary device). PostgreSQL (asyncpg) is the scale-out: admin writes
take one transaction-scoped advisory lock, which gives the same serial order across instances.
Admin writes are human-paced, so serialising them costs nothing and keeps every rule simple.
Phone-side bookkeeping (last seen, unprovisioned MACs) uses `Database.background()`, which
never takes that lock.

The lock also orders the audit log, which is the change feed every serving process follows
(provisiond.provisioning.changes reads `id > last seen`): an audit id is drawn after the lock is
taken and the row is visible before the lock is released, so ids become visible in increasing
order and a follower can never read past a change still to commit. That holds only if every
audit row is written under the lock, so a `background()` session refuses to flush one
(`AuditOutsideLock`): a phone-side change that other processes must learn of (a first-boot
site lock) is written through `write()`.

The SQLite file holds every device and user (SIP secrets encrypted, but names, extensions and
the audit log in clear), so it is private to the service's user whatever the umask: an engine
creates the file with mode 0600 before SQLite opens it, and narrows an existing file and its
``-wal``, ``-shm`` and ``-journal`` files to 0600 (SQLite gives those the mode of the database
file when it creates them). systemd's ``UMask=0077`` does the same; this also holds outside it.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc, make_url, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from provisiond.storage.models import AuditEntry

# Arbitrary constant: the advisory lock that serialises admin writes on PostgreSQL.
ADMIN_WRITE_LOCK = 0x70726F76


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, foreign_keys: bool = True) -> None:
    # The driver's own transaction handling is off; we emit BEGIN ourselves (see _begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


_SIDE_FILES = ("-wal", "-shm", "-journal")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL; None for an in-memory or URI-style (``file:``) database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def private_sqlite_files(path: Path) -> None:
    """Create the database file 0600 if missing; narrow it and its side files to 0600.

    A file owned by someone else is left alone (chmod would fail; it is theirs to fix).
    """
    with contextlib.suppress(FileExistsError, FileNotFoundError):  # no directory: SQLite says
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600))
    for name in (path, *(path.with_name(path.name + end) for end in _SIDE_FILES)):
        with contextlib.suppress(OSError):
            found = os.stat(name, follow_symlinks=False)
            if stat.S_ISREG(found.st_mode) and found.st_mode & 0o077:
                os.chmod(name, stat.S_IMODE(found.st_mode) & 0o600)


def _make_begin(mode: str) -> Any:
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(f"BEGIN {mode}")

    return _begin


def create_engine(
    url: str, *, immediate: bool = False, migrating: bool = False, **kwargs: Any
) -> AsyncEngine:
    """An AsyncEngine with our SQLite pragmas; `immediate` makes every SQLite BEGIN IMMEDIATE.

    `migrating` turns SQLite's foreign-key enforcement off: Alembic rebuilds a table to alter it
    (copy, drop, rename), which would trip the keys that point at it; migrate.py checks the
    keys with PRAGMA foreign_key_check afterwards.
    """
    if url.startswith("sqlite"):
        path = sqlite_path(url)
        if path is not None:
            private_sqlite_files(path)
        engine = create_async_engine(url, **kwargs)

        def on_connect(conn: Any, record: Any) -> None:
            _sqlite_pragmas(conn, record, foreign_keys=not migrating)
            if path is not None:  # side files an older version left readable
                private_sqlite_files(path)

        event.listen(engine.sync_engine, "connect", on_connect)
        event.listen(engine.sync_engine, "begin", _make_begin("IMMEDIATE" if immediate else ""))
        return engine
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    kwargs.setdefault("pool_pre_ping", True)
    return create_async_engine(url, **kwargs)


_FULL = ("database or disk is full", "no space left on device", "could not extend file")


def fault_of(error: BaseException) -> str | None:
    """What a database error says about the database rather than the request: "disk_full"
    (SQLite's or PostgreSQL's disk), "unavailable" (refused, dropped, restarting, busy), or
    None for anything else (a bug, a constraint: not the operator's to fix)."""
    if isinstance(error, exc.DBAPIError):
        if any(words in str(error).lower() for words in _FULL):
            return "disk_full"
        if error.connection_invalidated or isinstance(
            error, exc.OperationalError | exc.InterfaceError
        ):
            return "unavailable"
    if isinstance(error, ConnectionError | exc.TimeoutError):
        return "unavailable"
    return None


class AuditOutsideLock(RuntimeError):
    """An audit row was about to be written without the admin write lock."""


class _BackgroundSession(Session):
    """The session class of `Database.background()`: refuses audit rows (see the module doc)."""


@event.listens_for(_BackgroundSession, "before_flush")
def _refuse_audit(session: Session, _context: Any, _instances: Any) -> None:
    if any(isinstance(row, AuditEntry) for row in session.new):
        raise AuditOutsideLock(
            "audit rows are written through Database.write() only: the change feed relies on "
            "their ids committing in order"
        )


class Database:
    """Owns the engines and hands out sessions, one per unit of work."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine = create_engine(url)
        self._write_engine = create_engine(url, immediate=True) if self.is_sqlite else self.engine
        self._reads = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writes = async_sessionmaker(self._write_engine, expire_on_commit=False)
        self._background = async_sessionmaker(
            self._write_engine, expire_on_commit=False, sync_session_class=_BackgroundSession
        )
        # Awaited after every committed admin write (e.g. to wake the change feed at once).
        self.after_write: list[Callable[[], Awaitable[None]]] = []

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One admin write transaction: committed on success, rolled back on any exception."""
        async with self._writes() as session, session.begin():
            if not self.is_sqlite:
                await session.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADMIN_WRITE_LOCK}
                )
            yield session
        for hook in self.after_write:
            await hook()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (never blocks writers on SQLite's WAL)."""
        async with self._reads() as session, session.begin():
            yield session

    @asynccontextmanager
    async def background(self) -> AsyncIterator[AsyncSession]:
        """Phone-side bookkeeping writes (last seen, unprovisioned): no admin lock, no audit."""
        async with self._background() as session, session.begin():
            yield session

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
        if self._write_engine is not self.engine:
            await self._write_engine.dispose()
