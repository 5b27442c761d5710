"""The change feed: how every process learns of admin changes, from the audit log.

Every admin mutation writes an audit row in its own transaction (provisiond.services.context
.audit), so the audit log is a transactional outbox: a row exists exactly when the change
committed. Each serving process follows it (`SELECT ... WHERE id > last`, an index range scan on
the primary key) and hands the new rows to its in-memory directory. This one mechanism serves a
single process, `serve --workers N` and several instances on one PostgreSQL alike.

Reading `id > last` is gap-proof because audit ids commit in order: every audit row is written
under the admin write lock (provisiond.storage.database: the PostgreSQL advisory lock, SQLite's
single writer), which is taken before the id is drawn and released after the row is visible; a
phone-side session cannot write one. So when a follower sees id N, every id below N that will
ever exist is already visible.

A follower polls every `interval` seconds as a safety net; on PostgreSQL a NOTIFY after each
commit wakes every instance at once (provisiond.provisioning.notify), and the process that made
a change polls right after its commit, so its own phone side never lags. A poll that fails (the
database restarting) is retried at the next interval from the same `last`: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import func, select

from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry

log = logging.getLogger(__name__)
BATCH = 1000
# Changes whose audit row lists in `after` the devices and users they altered: one change that
# alters many phones' files (a BLF following a main extension, services/key_follow.py).
FAN_OUT_ACTIONS = frozenset({"user.blf_follow"})


@dataclass(frozen=True, slots=True)
class Change:
    """One committed admin change."""

    id: int
    action: str
    object_type: str
    object_id: str | None


class ChangeFeed:
    """Follows the audit log and calls `apply` with each batch of new changes, in order."""

    def __init__(
        self,
        db: Database,
        apply: Callable[[list[Change]], Awaitable[None]],
        interval: float = 0.5,
    ) -> None:
        self._db = db
        self._apply = apply
        self._interval = interval
        self.last_id = 0
        self._task: asyncio.Task[None] | None = None
        self._polling = asyncio.Lock()  # the background loop and a caller never interleave

    async def mark(self) -> int:
        """Start after the newest change (call before loading the state the changes patch)."""
        async with self._db.read() as session:
            self.last_id = await session.scalar(select(func.max(AuditEntry.id))) or 0
        return self.last_id

    def start(self) -> None:
        """Follow in the background."""
        self._task = asyncio.create_task(self._run(), name="change-feed")

    async def stop(self) -> None:
        """Stop following."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.poll()
            except Exception:  # the database may be briefly away: keep following
                log.exception("could not follow the change feed")

    async def poll(self) -> int:
        """Apply every change committed since the last poll; returns how many."""
        async with self._polling:
            return await self._poll()

    async def _poll(self) -> int:
        total = 0
        while True:
            async with self._db.read() as session:
                rows = (
                    await session.execute(
                        select(
                            AuditEntry.id,
                            AuditEntry.action,
                            AuditEntry.object_type,
                            AuditEntry.object_id,
                        )
                        .where(AuditEntry.id > self.last_id)
                        .order_by(AuditEntry.id)
                        .limit(BATCH)
                    )
                ).all()
            if not rows:
                return total
            changes = [Change(r.id, r.action, r.object_type, r.object_id) for r in rows]
            await self._apply(changes)
            self.last_id = changes[-1].id
            total += len(changes)


async def fanned_out(db: Database, change_ids: list[int]) -> tuple[set[int], set[int]]:
    """(devices, users) a fan-out change names in its audit row's `after` ("devices",
    "users"): one change that alters many phones' files (a BLF following a main extension)."""
    async with db.read() as session:
        rows = await session.scalars(select(AuditEntry.after).where(AuditEntry.id.in_(change_ids)))
        devices: set[int] = set()
        users: set[int] = set()
        for after in rows:
            if isinstance(after, dict):
                devices |= {int(i) for i in after.get("devices", ()) if isinstance(i, int)}
                users |= {int(i) for i in after.get("users", ()) if isinstance(i, int)}
    return devices, users
