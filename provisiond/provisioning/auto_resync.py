"""Resync on change: when an admin change alters devices' rendered files, tell those phones.

Fed by the change feed of the first serving process (so each change is acted on once per
instance, whichever process or command made it), it picks the changes that alter what a phone
gets, and hands them to the resync service in the background. The resync's own audit rows are
not among them, so it never feeds itself.
"""

from __future__ import annotations

import asyncio
import logging

from provisiond.provisioning.changes import FAN_OUT_ACTIONS, Change, fanned_out
from provisiond.services.resync import ResyncService

log = logging.getLogger(__name__)

DEVICE_ACTIONS = frozenset(
    {"device.update", "device.account_put", "device.account_delete", "device.keys_set"}
)
USER_ACTIONS = frozenset(
    {
        "user.update",
        "user.assign_device",
        "user.unassign_device",
        "user.set_primary",
        "user.account_change",
        "user.keys_set",
    }
)
EVERYONE_ACTIONS = frozenset({"settings.update"})


class AutoResync:
    """Turns committed changes into resyncs of the devices they altered."""

    def __init__(self, resync: ResyncService) -> None:
        self._resync = resync
        self._tasks: set[asyncio.Task[None]] = set()

    def notice(self, changes: list[Change]) -> None:
        """Called with each batch of the feed; sends nothing itself (a background task does)."""
        devices: set[int] = set()
        users: set[int] = set()
        everyone = False
        for change in changes:
            digits = change.object_id is not None and change.object_id.isdigit()
            if change.action in EVERYONE_ACTIONS:
                everyone = True
            elif change.action in DEVICE_ACTIONS and digits:
                devices.add(int(change.object_id or 0))
            elif change.action in USER_ACTIONS and digits:
                users.add(int(change.object_id or 0))
        fanned = [c.id for c in changes if c.action in FAN_OUT_ACTIONS]
        if everyone or devices or users or fanned:
            task = asyncio.create_task(
                self._run(devices, users, everyone, fanned), name="auto-resync"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(
        self, devices: set[int], users: set[int], everyone: bool, fanned: list[int]
    ) -> None:
        try:
            if fanned:  # a BLF following a main extension: the row names whom it changed
                more_devices, more_users = await fanned_out(self._resync.ctx.db, fanned)
                devices, users = devices | more_devices, users | more_users
            results = await self._resync.resync_changed(
                devices, users, everyone=everyone, actor="provisiond (resync on change)"
            )
        except Exception:  # a failed resync must not disturb the feed
            log.exception("resync on change failed")
            return
        answered = sum(1 for r in results if r["status"] is not None)
        log.info("resync on change: %d phones notified, %d answered", len(results), answered)

    async def drain(self) -> None:
        """Wait for the resyncs in flight (tests, shutdown)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
