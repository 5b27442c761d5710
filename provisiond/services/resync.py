"""Resync: ask phones to fetch their files again (or reboot), with the vendor's SIP NOTIFY.

The NOTIFY goes to the address the device was last seen from (the phone side records it), on
the configured SIP port; the vendor's event comes from its vendor.toml (`resync_event`). A
phone that challenges gets one digest answer with the device's own SIP credentials. Each
resync is audited with its outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import netaddr
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.services.assignments import load_device
from provisiond.services.context import ServiceContext, audit
from provisiond.services.sites import load_site
from provisiond.services.users import load_user
from provisiond.sip import send_notify
from provisiond.storage.models import Device, DeviceAccount

MAX_BULK = 10_000  # devices one API request may resync (its answer lists each)
CHUNK = 1_000  # devices read per query when every device a change altered is resynced
_NO_EVENT = {
    False: "model {model} has no SIP NOTIFY for this (reboot=False): it re-reads its files "
    "only when it boots; send a reboot instead",
    True: "model {model} has no SIP NOTIFY for this (reboot=True): restart it by hand; a "
    "resync makes it re-read its files",
}


def _seen() -> Select[Device]:
    """Devices that have asked for their files (so have an address to notify), with models."""
    return (
        select(Device).options(selectinload(Device.model)).where(Device.last_seen_ip.is_not(None))
    )


def _not_sent(device: Device, port: int, reboot: bool) -> dict[str, Any]:
    """The result of a device whose model has no event for the action: nothing was sent."""
    return {
        "device_id": device.id,
        "address": f"{device.last_seen_ip}:{port}",
        "event": "",
        "reboot": reboot,
        "status": None,
        "reason": _NO_EVENT[reboot].format(model=device.model.id),
        "attempts": 0,
        "elapsed_s": 0.0,
    }


class ResyncService:
    """POST /devices/{id}/resync and POST /resync (by user, model or site)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    def _event(self, device: Device, reboot: bool) -> str:
        """The Event for this device's model: "" when its family has no such action."""
        vendor = self.ctx.vendors[device.model.vendor]
        resync_event, reboot_event = vendor.events(device.model.family)
        return reboot_event if reboot else resync_event

    async def resync(self, device_id: int, *, reboot: bool, actor: str) -> dict[str, Any]:
        """Send one device its NOTIFY and report the phone's answer."""
        async with self.ctx.db.read() as session:
            await load_device(session, device_id)  # NotFound naming the field
            device = await session.scalar(
                select(Device).where(Device.id == device_id).options(selectinload(Device.model))
            )
        assert device is not None
        if not self._event(device, reboot):
            raise Conflict(_NO_EVENT[reboot].format(model=device.model.id), field="reboot")
        if device.last_seen_ip is None:
            raise Conflict(
                f"device {device_id} has never asked for its files: no address to notify",
                field="device_id",
            )
        return await self._send(device, reboot, actor)

    async def resync_many(
        self,
        *,
        user_id: int | None = None,
        model: str | None = None,
        site: int | None = None,
        reboot: bool,
        actor: str,
    ) -> list[dict[str, Any]]:
        """Resync every device of a user, of a model, or last seen inside a site's networks.

        At most MAX_BULK devices: a selection that holds more is refused with its size, never
        cut short (the answer would claim a site done while part of it was never told).
        """
        if [user_id, model, site].count(None) != 2:
            raise InvalidInput("name exactly one of user_id, model, site", field="body")
        query = _seen()
        networks: netaddr.IPSet | None = None
        async with self.ctx.db.read() as session:
            if user_id is not None:
                await load_user(session, user_id)  # NotFound (also for ids out of range)
                # The user's lines: their devices and the devices carrying their accounts.
                carrying = select(DeviceAccount.device_id).where(DeviceAccount.user_id == user_id)
                query = query.where((Device.user_id == user_id) | Device.id.in_(carrying))
            elif model is not None:
                query = query.where(Device.model_id == model)
            else:
                assert site is not None
                networks = netaddr.IPSet((await load_site(session, site)).networks)
        devices: list[Device] = []
        async for chunk in self._chunks(query):
            # A site's networks are CIDRs the database cannot match for us on SQLite: filter
            # each chunk here, so the bound counts the site's devices, not the first rows read.
            devices += [d for d in chunk if networks is None or d.last_seen_ip in networks]
            if len(devices) > MAX_BULK:
                raise Conflict(
                    f"more than {MAX_BULK} devices match; resync by model or user to split the "
                    "request",
                    field="body",
                )
        return await self._send_all(devices, reboot, actor)

    async def resync_changed(
        self, device_ids: set[int], user_ids: set[int], *, everyone: bool, actor: str
    ) -> list[dict[str, Any]]:
        """Resync devices a change altered: these devices, these users' devices, or all
        (`everyone`, after a platform settings change); never-seen devices are skipped.

        Every one of them, however many: read and notified CHUNK devices at a time."""
        query = _seen()
        if not everyone:
            if not device_ids and not user_ids:
                return []
            # A user's lines include accounts on other users' devices (a DECT base's handsets).
            carrying = select(DeviceAccount.device_id).where(DeviceAccount.user_id.in_(user_ids))
            query = query.where(
                Device.id.in_(device_ids) | Device.user_id.in_(user_ids) | Device.id.in_(carrying)
            )
        results: list[dict[str, Any]] = []
        async for chunk in self._chunks(query):
            results += await self._send_all(chunk, False, actor)
        return results

    async def _chunks(self, query: Select[Device]) -> AsyncIterator[Sequence[Device]]:
        """The devices `query` selects, CHUNK at a time in id order (keyset pagination)."""
        after = 0
        while True:
            async with self.ctx.db.read() as session:
                chunk = (
                    await session.scalars(
                        query.where(Device.id > after).order_by(Device.id).limit(CHUNK)
                    )
                ).all()
            if not chunk:
                return
            yield chunk
            after = chunk[-1].id

    async def _send_all(
        self, devices: Sequence[Device], reboot: bool, actor: str
    ) -> list[dict[str, Any]]:
        limit = asyncio.Semaphore(self.ctx.settings.resync.concurrency)

        async def one(device: Device) -> dict[str, Any]:
            async with limit:
                return await self._send(device, reboot, actor)

        return list(await asyncio.gather(*(one(d) for d in devices)))

    async def _send(self, device: Device, reboot: bool, actor: str) -> dict[str, Any]:
        settings = self.ctx.settings.resync
        event = self._event(device, reboot)
        assert device.last_seen_ip is not None
        if not event:  # in bulk: reported, never sent (a resync must not become a reboot)
            return _not_sent(device, settings.port, reboot)
        result = await send_notify(
            device.last_seen_ip,
            settings.port,
            event=event,
            user=device.sip_username,
            reboot=reboot,
            credentials=(device.sip_username, self.ctx.secrets.decrypt(device.sip_password)),
            t1=settings.t1,
            timeout=settings.timeout_s,
        )
        answer = {
            "device_id": device.id,
            "address": f"{device.last_seen_ip}:{settings.port}",
            "event": event,
            "reboot": reboot,
            "status": result.status,
            "reason": result.reason,
            "attempts": result.attempts,
            "elapsed_s": round(result.elapsed_s, 3),
        }
        async with self.ctx.db.write() as session:
            audit(session, actor, "device.resync", "device", device.id, None, answer)
        return answer
