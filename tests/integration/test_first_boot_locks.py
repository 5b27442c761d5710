"""First boots of many devices at once (issue 14: the benchmark's storm found it).

`ActivityRecorder.lock` started one task per device, and each task rewrote every lock still
pending when it began: 1,000 first boots in a `lock_on_first_boot` site cost about a million
UPDATEs and 36 CPU-seconds after the storm. Locks are now written by one writer at a time, each
pass taking what is pending. The statements are counted on the real database's engine.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select

from provisiond.provisioning.activity import ActivityRecorder
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate
from provisiond.services.sites import SiteCreate
from provisiond.storage.database import Database
from provisiond.storage.models import AuditEntry, Device

COUNT = 200


async def test_a_storm_of_first_boots_writes_each_lock_once(
    db: Database, services: Services
) -> None:
    site = await services.sites.create(
        SiteCreate(name="office", networks=["127.0.0.0/8"], lock_on_first_boot=True), "test"
    )
    for n in range(COUNT):
        await services.devices.create(
            DeviceCreate(extension=str(3000 + n), model="yealink-t46s", mac=f"0015650{n:05x}"),
            "test",
        )
    async with db.read() as session:
        ids = list(await session.scalars(select(Device.id)))
    assert len(ids) == COUNT

    updates = 0

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal updates
        if statement.lstrip().upper().startswith("UPDATE DEVICES"):
            updates += 1

    engines = {db.engine.sync_engine, db._write_engine.sync_engine}
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        recorder = ActivityRecorder(db, interval=3600)
        for device_id in ids:  # a storm: every first boot within one turn of the loop
            recorder.lock(device_id, int(site["id"]))
        await recorder.stop()  # waits for the lock writer
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", count)

    assert updates <= 2 * COUNT, f"{updates} UPDATEs for {COUNT} locks"
    async with db.read() as session:
        bound = await session.scalar(
            select(func.count()).select_from(Device).where(Device.site_id == site["id"])
        )
        audited = await session.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "device.lock")
        )
    assert bound == COUNT
    assert audited == COUNT
