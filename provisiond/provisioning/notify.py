"""PostgreSQL LISTEN/NOTIFY: wake every instance's change feed as soon as a change commits.

The change feed (provisiond.provisioning.changes) already follows the audit log by polling;
this only makes other instances look *now* instead of at their next poll. `notify_changes` is
the sender: the process that committed an admin write calls it afterwards (a
`Database.after_write` hook), and PostgreSQL delivers ``NOTIFY provisiond_changes`` to every
listening session at commit. `ChangeListener` is the receiver: one dedicated asyncpg connection
per process that LISTENs and calls `on_notify` (the feed's `poll`) for each wake-up, bursts
coalesced into one call.

A notification is a hint, never the data: it may be lost (the sender's connection drops, the
listener is reconnecting) and nothing breaks, since the poll reads everything after the feed's
last id. So the listener also calls `on_notify` after every (re)connect — whatever was sent
while it was away is picked up by that one poll — and reconnects with exponential backoff. A
periodic ``SELECT 1`` notices a connection that died silently (no FIN, e.g. a dropped route).
SQLite has no NOTIFY: there `notify_changes` does nothing and the polling feed is the whole story.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from provisiond.storage.database import Database

log = logging.getLogger(__name__)

CHANNEL = "provisiond_changes"
CONNECT_TIMEOUT_S = 10.0
CHECK_TIMEOUT_S = 5.0
# What a lost connection or an unreachable server raises (TimeoutError is an OSError).
_CONNECTION_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def notify_changes(db: Database, payload: str = "") -> None:
    """Tell every listening instance that changes were committed (PostgreSQL; else nothing).

    Call it after the commit. Never raises: the write is already committed, and a lost
    notification only delays the other instances until their next poll.
    """
    if db.is_sqlite:
        return
    try:
        async with db.engine.connect() as conn:
            await conn.execute(select(func.pg_notify(CHANNEL, payload)))
            await conn.commit()  # NOTIFY is delivered at commit
    except (SQLAlchemyError, OSError) as exc:
        log.warning(
            "could not notify the other instances (they follow at their next poll): %s", exc
        )


def asyncpg_dsn(url: str) -> str:
    """The DSN asyncpg takes, from a SQLAlchemy URL such as ``postgresql+asyncpg://...``."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """LISTENs on its own asyncpg connection and calls `on_notify` on each (coalesced) wake-up.

    `on_notify` also runs after every successful (re)connect, so nothing sent while the
    connection was down is missed. `connections` counts successful LISTENs (1 after start,
    2 after the first reconnect...); `backend_pid` is the server process listening, if any.
    """

    def __init__(
        self,
        url: str,
        on_notify: Callable[[], Awaitable[Any]],
        *,
        channel: str = CHANNEL,
        backoff: tuple[float, float] = (0.1, 10.0),
        check_every: float = 30.0,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._on_notify = on_notify
        self._channel = channel
        self._min_delay, self._max_delay = backoff
        self._check_every = check_every
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.connections = 0
        self.backend_pid: int | None = None

    def start(self) -> None:
        """Connect and listen in the background (returns at once)."""
        self._tasks = [
            asyncio.create_task(self._listen(), name="change-listener"),
            asyncio.create_task(self._deliver(), name="change-listener-deliver"),
        ]

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def _on_message(self, _conn: Any, _pid: int, _channel: str, _payload: str) -> None:
        self._wake.set()

    async def _deliver(self) -> None:
        """Run `on_notify` once per wake-up; a burst during a run becomes one more run."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._on_notify()
            except Exception:  # the database may be briefly away: the next wake-up retries
                log.exception("change listener: on_notify failed")

    async def _listen(self) -> None:
        delay = self._min_delay
        while True:
            conn = await self._connect()
            if conn is None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)
                continue
            delay = self._min_delay
            try:
                await self._hold(conn)
            finally:
                self.backend_pid = None
                with contextlib.suppress(*_CONNECTION_ERRORS):
                    await asyncio.wait_for(conn.close(), CHECK_TIMEOUT_S)
                conn.terminate()  # closes the socket if close() did not
            log.warning("change listener: connection lost, reconnecting")
            await asyncio.sleep(self._min_delay)

    async def _connect(self) -> Any:
        """A listening connection, or None (logged) when the server cannot be reached."""
        try:
            conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT_S)
        except _CONNECTION_ERRORS as exc:
            log.warning("change listener: cannot connect (%s), retrying", exc)
            return None
        try:
            await conn.add_listener(self._channel, self._on_message)
        except _CONNECTION_ERRORS as exc:
            log.warning("change listener: cannot LISTEN (%s), retrying", exc)
            conn.terminate()
            return None
        self.connections += 1
        self.backend_pid = conn.get_server_pid()
        self._wake.set()  # catch up on whatever was sent while we were not listening
        return conn

    async def _hold(self, conn: Any) -> None:
        """Return when the connection is lost (reported by asyncpg, or a failed check)."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self._check_every)
            if lost.is_set() or not await _alive(conn):
                return


async def _alive(conn: Any) -> bool:
    try:
        await conn.fetchval("SELECT 1", timeout=CHECK_TIMEOUT_S)
    except _CONNECTION_ERRORS:
        return False
    return True
