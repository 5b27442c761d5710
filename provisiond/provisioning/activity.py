"""Batched phone-side bookkeeping: last-seen data of known devices and unprovisioned MACs.

A phone request only puts a small record in a dict (latest wins per MAC); a background task
writes the batch every `interval` seconds in one transaction. (First-boot locks, once per
device, are written at once by their own task, audited under the admin write lock.) So the
request path never waits
on the database, and a boot storm of 10,000 phones costs a handful of writes, not 10,000.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, cast

import netaddr
from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, Device, UnprovisionedDevice, utcnow

log = logging.getLogger(__name__)
MAX_PENDING = 100_000  # beyond this, new unknown MACs are dropped until the next flush
# Unprovisioned MACs kept for the administrator: beyond this the least recently seen go, so
# walkers inside a site (each banned after a few dozen) can never grow the table without end.
MAX_UNPROVISIONED = 10_000
# What of an unknown phone's User-Agent is kept: a real one is under 200 characters, and a
# flood of 60 KB User-Agents must not grow the table (the known devices keep 256 too).
UNPROVISIONED_UA_CHARS = 256


_DEVICES = cast(Table, Device.__table__)
REWRITE_AFTER_S = 60.0  # an unchanged sighting is written again only after this long
_LAST_SEEN = (
    update(_DEVICES)
    .where(_DEVICES.c.id == bindparam("device_id"))
    .values(
        last_seen_at=bindparam("at"),
        last_seen_ip=bindparam("ip"),
        last_seen_user_agent=bindparam("ua"),
        last_seen_firmware=bindparam("firmware"),
        updated_at=_DEVICES.c.updated_at,  # last seen is not a configuration change
    )
)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One request's facts about a phone."""

    mac: str
    at: datetime
    ip: str
    user_agent: str | None
    firmware: str | None = None
    vendor: str | None = None
    model_guess: str | None = None
    path: str | None = None


class ActivitySink(Protocol):
    """Where the resolver reports phone activity."""

    def seen(self, device_id: int, sighting: Sighting) -> None:
        """A known device asked for a file."""

    def current(
        self, device_id: int, ip: str, user_agent: str | None, firmware: str | None
    ) -> bool:
        """Whether a sighting with these facts would change nothing now (the caller then
        builds none: a boot storm's requests mostly repeat what is known)."""

    def unknown(self, sighting: Sighting) -> None:
        """An unknown MAC asked for a file."""

    def lock(self, device_id: int, site_id: int) -> None:
        """Bind a device to the site of its first boot."""


class DiscardActivity:
    """Records nothing: for `provisiond render`, which must not look like a phone."""

    def current(
        self, device_id: int, ip: str, user_agent: str | None, firmware: str | None
    ) -> bool:
        """Always: nothing is recorded."""
        return True

    def seen(self, device_id: int, sighting: Sighting) -> None:
        """Ignored."""

    def unknown(self, sighting: Sighting) -> None:
        """Ignored."""

    def lock(self, device_id: int, site_id: int) -> None:
        """Ignored."""


class ActivityRecorder:
    """Collects sightings and flushes them in batches."""

    def __init__(self, db: Database, interval: float = 2.0) -> None:
        self._db = db
        self._interval = interval
        self._seen: dict[int, Sighting] = {}
        self._unknown: dict[str, tuple[Sighting, int]] = {}
        self._locks: dict[int, int] = {}
        # device id -> (at, ip, user agent, firmware) of the last sighting written
        # (monotonic time, ip, user agent, firmware): `seen` skips what repeats them
        self._written: dict[int, tuple[float, str, str | None, str | None]] = {}
        self._lock_writer: asyncio.Task[None] | None = None
        self._task: asyncio.Task[None] | None = None

    def seen(self, device_id: int, sighting: Sighting) -> None:
        """A known device asked for a file.

        Skipped when the last written sighting of the device says the same (address,
        User-Agent, firmware) and is under a minute old: a phone fetches several files per
        boot, and last-seen to the minute is all an administrator needs.
        """
        if not self.current(device_id, sighting.ip, sighting.user_agent, sighting.firmware):
            self._seen[device_id] = sighting

    def current(
        self, device_id: int, ip: str, user_agent: str | None, firmware: str | None
    ) -> bool:
        """True when the same facts are waiting for the next flush, or were written under a
        minute ago (`REWRITE_AFTER_S`)."""
        pending = self._seen.get(device_id)
        if pending is not None:
            return (pending.ip, pending.user_agent, pending.firmware) == (ip, user_agent, firmware)
        written = self._written.get(device_id)
        return (
            written is not None
            and written[1:] == (ip, user_agent, firmware)
            and time.monotonic() - written[0] < REWRITE_AFTER_S
        )

    def unknown(self, sighting: Sighting) -> None:
        """An unknown MAC asked for a file."""
        agent = sighting.user_agent
        if agent is not None and len(agent) > UNPROVISIONED_UA_CHARS:
            sighting = dataclasses.replace(sighting, user_agent=agent[:UNPROVISIONED_UA_CHARS])
        previous = self._unknown.get(sighting.mac)
        if previous is None and len(self._unknown) >= MAX_PENDING:
            return
        self._unknown[sighting.mac] = (sighting, (previous[1] if previous else 0) + 1)

    def lock(self, device_id: int, site_id: int) -> None:
        """Bind a device to a site (first boot); written at once, off the request path.

        Not batched like last-seen: a lock happens once per device, and an admin who releases
        it right after must not see a stale pending lock written later.
        """
        if device_id not in self._locks:
            self._locks[device_id] = site_id
            # One writer at a time, each pass taking every lock pending by then: a storm of
            # first boots is a few transactions, not one task per device each rewriting all
            # pending locks (which was quadratic: 36 CPU-seconds for 1,000 first boots).
            if self._lock_writer is None or self._lock_writer.done():
                self._lock_writer = asyncio.create_task(
                    self._write_pending_locks(), name="first-boot-locks"
                )

    def start(self) -> None:
        """Start the periodic flush."""
        self._task = asyncio.create_task(self._run(), name="activity-flush")

    async def stop(self) -> None:
        """Stop the periodic flush and write what is pending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._lock_writer is not None:
            await asyncio.gather(self._lock_writer, return_exceptions=True)
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # a failed batch must not stop later ones
                log.exception("could not record phone activity")

    async def _write_pending_locks(self) -> None:
        """Write locks until none is pending (locks taken meanwhile join the next pass)."""
        while self._locks:
            try:
                await self._write_locks()
            except Exception:  # kept pending: the next lock or flush tries again
                log.exception("could not record first-boot locks")
                return

    async def _write_locks(self) -> None:
        """Write pending first-boot locks, each audited so other processes follow.

        Through `Database.write()`, under the admin write lock like every audit row: the change
        feed reads audit ids in order and must never see a later one commit first.
        """
        locks = dict(self._locks)
        if not locks:
            return
        async with self._db.write() as session:
            for device_id, site_id in locks.items():
                # Only the first boot binds: a lock set meanwhile is not overwritten.
                result = await session.execute(
                    update(Device)
                    .where(Device.id == device_id, Device.site_id.is_(None))
                    .values(site_id=site_id, updated_at=Device.updated_at)
                    .execution_options(synchronize_session=False)
                )
                if getattr(result, "rowcount", 0):
                    session.add(
                        AuditEntry(
                            actor="phone",
                            action="device.lock",
                            object_type="device",
                            object_id=str(device_id),
                            after={"site_id": site_id},
                        )
                    )
        for device_id in locks:
            self._locks.pop(device_id, None)

    async def flush(self) -> None:
        """Write every pending sighting in one transaction."""
        await self._write_locks()
        seen, self._seen = self._seen, {}
        unknown, self._unknown = self._unknown, {}
        if not seen and not unknown:
            return
        async with self._db.background() as session:
            if seen:
                # One executemany for the whole batch (a storm sees thousands of devices).
                await (await session.connection()).execute(
                    _LAST_SEEN,
                    [
                        {
                            "device_id": device_id,
                            "at": s.at,
                            "ip": s.ip,
                            "ua": (s.user_agent or "")[:256] or None,
                            "firmware": s.firmware,
                        }
                        for device_id, s in seen.items()
                    ],
                )
                if len(self._written) > MAX_PENDING:
                    self._written.clear()  # bounded; at worst a few rows are written again
                written_at = time.monotonic()
                for device_id, s in seen.items():
                    self._written[device_id] = (written_at, s.ip, s.user_agent, s.firmware)
            for mac, (s, count) in unknown.items():
                eui = netaddr.EUI(int(mac, 16), version=48)
                if await session.scalar(select(Device.id).where(Device.mac == eui)) is not None:
                    continue  # claimed since the request
                row = await session.get(UnprovisionedDevice, eui)
                if row is None:
                    row = UnprovisionedDevice(mac=eui, first_seen_at=s.at, requests=0)
                    session.add(row)
                row.last_seen_at, row.last_ip, row.path = s.at, s.ip, s.path
                row.user_agent = s.user_agent
                row.vendor = s.vendor or row.vendor
                row.model_guess = s.model_guess or row.model_guess
                row.requests += count
            if unknown:
                # Trimmed after the new rows are in: the rows an address just added count
                # against it when the heaviest address is chosen.
                await session.flush()
                await _trim(session)


async def _trim(session: AsyncSession) -> None:
    """Forget unprovisioned MACs beyond the cap: the least recently seen of the address that
    holds the most. A flood from one address (MAC walking inside a site
    whose answers count nothing, such as a digest site's challenges) then evicts its own rows,
    never the real new phones other addresses reported."""
    rows = await session.scalar(select(func.count()).select_from(UnprovisionedDevice)) or 0
    excess = rows - MAX_UNPROVISIONED
    while excess > 0:
        heaviest = await session.scalar(
            select(UnprovisionedDevice.last_ip)
            .group_by(UnprovisionedDevice.last_ip)
            .order_by(func.count().desc(), func.min(UnprovisionedDevice.last_seen_at))
            .limit(1)
        )
        source = (
            UnprovisionedDevice.last_ip.is_(None)
            if heaviest is None
            else UnprovisionedDevice.last_ip == heaviest
        )
        oldest = (
            select(UnprovisionedDevice.mac)
            .where(source)
            .order_by(UnprovisionedDevice.last_seen_at)
            .limit(excess)
            .scalar_subquery()
        )
        result = await session.execute(
            delete(UnprovisionedDevice).where(UnprovisionedDevice.mac.in_(oldest))
        )
        removed = getattr(result, "rowcount", 0) or 0
        if removed <= 0:
            return
        excess -= removed


def now() -> datetime:
    """The sighting clock."""
    return utcnow()
