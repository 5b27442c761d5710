"""LISTEN/NOTIFY against the local PostgreSQL: a NOTIFY wakes the listener, a killed listener
connection comes back by itself and catches up on what it missed while away.

Every wait is bounded (a hang becomes a failure); nothing asserts how fast it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest
from sqlalchemy import event

from provisiond.provisioning.changes import ChangeFeed
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.provisioning.notify import ChangeListener, asyncpg_dsn, notify_changes
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate
from provisiond.storage.database import Database
from tests.databases import pg_database

BOUND_S = 20.0  # generous: only there so that a broken listener fails instead of hanging


@pytest.fixture
def database_url(pg_template: str) -> Iterator[str]:
    """PostgreSQL only (overrides the conftest fixture that also runs SQLite)."""
    with pg_database("provisiond_n", pg_template) as url:
        yield url


class Calls:
    """Counts `on_notify` calls; `reach(n)` waits (bounded) until there were n."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def __call__(self) -> None:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()

    async def reach(self, count: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= count), BOUND_S)


async def _terminate(url: str, pid: int) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (bounded) until the async predicate holds."""
    for _ in range(int(BOUND_S / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_notify_wakes_the_listener_and_it_survives_termination(
    db: Database, database_url: str
) -> None:
    calls = Calls()
    listener = ChangeListener(database_url, calls, backoff=(0.05, 0.5))
    listener.start()
    try:
        await calls.reach(1)  # the catch-up call after connecting
        assert listener.connections == 1
        await notify_changes(db)
        await calls.reach(2)
        first_pid = listener.backend_pid
        assert first_pid is not None
        await _terminate(database_url, first_pid)
        await calls.reach(3)  # reconnected, and caught up
        assert listener.connections == 2
        assert listener.backend_pid not in (None, first_pid)
        await notify_changes(db)
        await calls.reach(4)  # the new connection listens too
    finally:
        await listener.stop()


async def test_a_feed_driven_by_the_listener_catches_up_after_a_lost_connection(
    db: Database, database_url: str, services: Services
) -> None:
    """The server's wiring: on_notify = feed.poll, and no polling loop at all here."""
    other = Database(database_url)  # another instance's connections
    directory = MemoryDirectory(other, services.ctx.settings.platform)
    feed = ChangeFeed(other, directory.apply)
    await feed.mark()
    await directory.load()
    listener = ChangeListener(database_url, feed.poll, backoff=(0.05, 0.5))
    listener.start()
    try:
        await _until(lambda: _listening(listener))
        await services.devices.create(
            DeviceCreate(extension="200", model="yealink-t46s", mac="001565000001"), "t"
        )
        await notify_changes(db)
        await _until(lambda: _known(directory, "001565000001"))
        # Committed and never notified (as if the NOTIFY was lost while the listener was away):
        # only the catch-up after the reconnect can bring it.
        await services.devices.create(
            DeviceCreate(extension="201", model="yealink-t46s", mac="001565000002"), "t"
        )
        assert not await _known(directory, "001565000002")
        pid = listener.backend_pid
        assert pid is not None
        await _terminate(database_url, pid)
        await _until(lambda: _known(directory, "001565000002"))
        assert listener.connections == 2
    finally:
        await listener.stop()
        await other.dispose()


async def _listening(listener: ChangeListener) -> bool:
    return listener.backend_pid is not None


async def _known(directory: MemoryDirectory, mac: str) -> bool:
    return directory.device_by_mac(mac) is not None


async def test_notify_is_a_no_op_on_sqlite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SQLite has no NOTIFY: no connection is even taken from the pool, and nothing is logged."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/x.db")
    checkouts: list[object] = []
    event.listen(db.engine.sync_engine, "checkout", lambda *args: checkouts.append(args))
    try:
        await notify_changes(db)
        assert checkouts == []
        assert caplog.records == []
        async with db.engine.connect():  # what sending a NOTIFY would do: the listener sees it
            pass
        assert len(checkouts) == 1
    finally:
        await db.dispose()
