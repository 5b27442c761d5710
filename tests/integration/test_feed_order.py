"""The change feed never reads past a change still to commit (issue 13, bug 1).

The feed follows the audit log with `id > last`. That is only gap-proof if audit ids become
visible in increasing order, which the admin write lock guarantees for every writer: these tests
hold an admin transaction open with its audit id drawn, let a phone's first boot try to write its
site lock (an audit row too) meanwhile, and check that the feed sees neither before the admin
commits, then both, in order. Before the fix the lock was written without the admin lock, with a
higher id, and committed first: the feed stepped over the admin change for good.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from provisiond.provisioning.activity import ActivityRecorder
from provisiond.provisioning.changes import Change, ChangeFeed
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate
from provisiond.services.context import audit
from provisiond.services.sites import SiteCreate
from provisiond.storage.database import AuditOutsideLock, Database
from provisiond.storage.models import AuditEntry


async def _device_and_site(services: Services) -> tuple[int, int]:
    site = await services.sites.create(
        SiteCreate(name="office", networks=["127.0.0.0/8"], lock_on_first_boot=True), "test"
    )
    device = await services.devices.create(
        DeviceCreate(extension="201", model="yealink-t46s", mac="001565000201"), "test"
    )
    return int(device["id"]), int(site["id"])


async def test_a_first_boot_lock_waits_for_an_open_admin_change(
    db: Database, services: Services
) -> None:
    device_id, site_id = await _device_and_site(services)
    seen: list[Change] = []

    async def apply(changes: list[Change]) -> None:
        seen.extend(changes)

    feed = ChangeFeed(db, apply)
    await feed.mark()
    recorder = ActivityRecorder(db)
    admin_open, admin_may_commit = asyncio.Event(), asyncio.Event()

    async def admin_change() -> None:
        async with db.write() as session:
            audit(session, "admin", "settings.update", "settings", None, None, {"x": 1})
            await session.flush()  # the audit id is drawn now
            admin_open.set()
            await admin_may_commit.wait()

    admin = asyncio.create_task(admin_change())
    await admin_open.wait()
    recorder.lock(device_id, site_id)  # a first boot meanwhile
    await asyncio.sleep(0.3)  # time enough for the lock to commit if it could
    assert await feed.poll() == 0, "the feed saw a change while an earlier one was uncommitted"
    admin_may_commit.set()
    await admin
    await recorder.stop()  # waits for the lock write
    await feed.poll()
    assert [c.action for c in seen] == ["settings.update", "device.lock"]
    assert seen[0].id < seen[1].id


async def test_phone_side_sessions_cannot_write_audit_rows(db: Database) -> None:
    with pytest.raises(AuditOutsideLock):
        async with db.background() as session:
            session.add(AuditEntry(actor="phone", action="x", object_type="device"))
    async with db.read() as session:
        assert await session.scalar(select(AuditEntry.id).where(AuditEntry.action == "x")) is None
