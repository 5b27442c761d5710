"""Resync: ask phones to fetch their files again (or reboot), with the vendor's SIP NOTIFY.

The NOTIFY goes to the address the device was last seen from (the phone side records it), on
the configured SIP port; the vendor's event comes from its vendor.toml (`resync_event`). A
phone that challenges gets one digest answer with the device's own SIP credentials. Each
resync is audited with its outcome.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import netaddr
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.domain.identify import VendorSpec
from provisiond.provisioning.vendors import load_vendors
from provisiond.services.assignments import load_device
from provisiond.services.context import ServiceContext, audit
from provisiond.services.sites import load_site
from provisiond.sip import send_notify
from provisiond.storage.models import Device

MAX_BULK = 10_000
_NO_EVENT = (
    "model {model} has no SIP NOTIFY for this (reboot={reboot}): "
    "it re-reads its files only when it boots; send a reboot instead"
)


def _not_sent(device: Device, port: int, reboot: bool) -> dict[str, Any]:
    """The result of a device whose model has no event for the action: nothing was sent."""
    return {
        "device_id": device.id,
        "address": f"{device.last_seen_ip}:{port}",
        "event": "",
        "reboot": reboot,
        "status": None,
        "reason": _NO_EVENT.format(model=device.model.id, reboot=reboot),
        "attempts": 0,
        "elapsed_s": 0.0,
    }


class ResyncService:
    """POST /devices/{id}/resync and POST /resync (by user, model or site)."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    @functools.cached_property
    def _vendors(self) -> Mapping[str, VendorSpec]:
        """vendor id -> its description (events per family), read once."""
        return {v.id: v for v in load_vendors(self.ctx.settings.templates_dir)}

    def _event(self, device: Device, reboot: bool) -> str:
        """The Event for this device's model: "" when its family has no such action."""
        resync_event, reboot_event = self._vendors[device.model.vendor].events(device.model.family)
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
            raise Conflict(_NO_EVENT.format(model=device.model.id, reboot=reboot), field="reboot")
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
        """Resync every device of a user, of a model, or last seen inside a site's networks."""
        if [user_id, model, site].count(None) != 2:
            raise InvalidInput("name exactly one of user_id, model, site", field="body")
        query = (
            select(Device)
            .options(selectinload(Device.model))
            .where(Device.last_seen_ip.is_not(None))
        )
        networks: netaddr.IPSet | None = None
        async with self.ctx.db.read() as session:
            if user_id is not None:
                query = query.where(Device.user_id == user_id)
            elif model is not None:
                query = query.where(Device.model_id == model)
            else:
                assert site is not None
                networks = netaddr.IPSet((await load_site(session, site)).networks)
            devices = (await session.scalars(query.order_by(Device.id).limit(MAX_BULK))).all()
        if networks is not None:
            devices = [d for d in devices if d.last_seen_ip and d.last_seen_ip in networks]
        return await self._send_all(devices, reboot, actor)

    async def resync_changed(
        self, device_ids: set[int], user_ids: set[int], *, everyone: bool, actor: str
    ) -> list[dict[str, Any]]:
        """Resync devices a change altered: these devices, these users' devices, or all
        (`everyone`, after a platform settings change); never-seen devices are skipped."""
        query = (
            select(Device)
            .options(selectinload(Device.model))
            .where(Device.last_seen_ip.is_not(None))
        )
        if not everyone:
            if not device_ids and not user_ids:
                return []
            query = query.where(Device.id.in_(device_ids) | Device.user_id.in_(user_ids))
        async with self.ctx.db.read() as session:
            devices = (await session.scalars(query.order_by(Device.id).limit(MAX_BULK))).all()
        return await self._send_all(devices, False, actor)

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
