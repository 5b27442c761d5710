"""Device use cases: create (optionally straight onto a user), change, delete, search."""

from __future__ import annotations

import re
import secrets
import string
from typing import Any

import netaddr
from sqlalchemy import delete, false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import device_rules, rules
from provisiond.domain.catalogue import account_limit_problem
from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.domain.mac import mac_compact, parse_mac
from provisiond.domain.rules import LineRef
from provisiond.services.assignments import attach, detach, detach_line, load_device
from provisiond.services.commands import DeviceCreate, DevicePatch
from provisiond.services.context import MAX_ID, ServiceContext, audit, clamp_page
from provisiond.services.key_follow import move_main_extension
from provisiond.services.sites import load_site
from provisiond.services.users import load_user
from provisiond.services.views import device_view, page
from provisiond.storage.models import Device, DeviceAccount, DeviceModel, UnprovisionedDevice, User
from provisiond.storage.secrets import SecretBox

_PASSWORD_ALPHABET = string.ascii_letters + string.digits
# Printable ASCII without space, quotes, backslash and "#": characters that Panasonic (quoted
# values) or Aastra ("#" starts a comment) files cannot hold.
_PASSWORD = re.compile(r"[!$-&(-\[\]-~]{8,64}")
_SIP_USER = re.compile(r"[A-Za-z0-9._+-]{1,64}")
AUTOCOMPLETE_CAP = 20


def provisioning_username(mac: netaddr.EUI) -> str:
    """The HTTP digest user name a device fetches its files with: its MAC, 12 hex digits."""
    return mac_compact(mac)


def credentials(
    secrets: SecretBox, extension: str, sip_username: str | None, sip_password: str | None
) -> dict[str, str]:
    """A new device's SIP and provisioning credentials, sealed: the defaults every way of
    creating a device shares (the extension as user name, strong random passwords)."""
    password = _check_password(sip_password) if sip_password else generate_password()
    return {
        "sip_username": _check_sip_username(sip_username or extension),
        "sip_password": secrets.encrypt(password),
        "provisioning_password": secrets.encrypt(generate_password()),
    }


def generate_password() -> str:
    """A strong random SIP password: 20 letters and digits (~119 bits)."""
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(20))


def _check_password(value: str) -> str:
    if not _PASSWORD.fullmatch(value):
        raise InvalidInput(
            "sip_password must be 8-64 printable ASCII characters without spaces, quotes, '#' or "
            "backslashes",
            field="sip_password",
        )
    return value


async def check_slots_fit(session: AsyncSession, device: Device) -> None:
    """A model change never strands an account beyond the new model's count."""
    limit = await session.scalar(
        select(DeviceModel.accounts).where(DeviceModel.id == device.model_id)
    )
    highest = max((a.slot for a in device.accounts), default=1)
    problem = account_limit_problem(highest, limit or 1, device.model_id)
    if problem is not None:
        raise InvalidInput(
            f"{problem}: remove account {highest} before changing the model", field="model"
        )


def check_sip_username(value: str) -> str:
    """A SIP authentication user name (as every vendor's files can hold it)."""
    return _check_sip_username(value)


def check_password(value: str) -> str:
    """A SIP password (as every vendor's files can hold it)."""
    return _check_password(value)


def _check_sip_username(value: str) -> str:
    if not _SIP_USER.fullmatch(value):
        raise InvalidInput(
            "sip_username must be 1-64 of letters, digits, . _ + -", field="sip_username"
        )
    return value


async def check_extension_free(
    session: AsyncSession, extension: str, device_id: int | None, account_id: int | None = None
) -> None:
    """An extension is free when no other device and no other account has it."""
    holder = await session.scalar(select(Device.id).where(Device.extension == extension))
    device_rules.check_extension_free(extension, holder=holder, device_id=device_id)
    account = (
        await session.execute(
            select(DeviceAccount.id, DeviceAccount.device_id, DeviceAccount.slot).where(
                DeviceAccount.extension == extension
            )
        )
    ).first()
    if account is not None and account.id != account_id:
        raise Conflict(
            f"extension {extension} is already account {account.slot} of device "
            f"{account.device_id}",
            field="extension",
        )


async def _check_mac_free(session: AsyncSession, mac: netaddr.EUI, device_id: int | None) -> None:
    holder = await session.scalar(select(Device.id).where(Device.mac == mac))
    device_rules.check_mac_free(mac, holder=holder, device_id=device_id)


async def _check_model(session: AsyncSession, model_id: str) -> str:
    known = (await session.scalars(select(DeviceModel.id).where(DeviceModel.id == model_id))).all()
    return device_rules.check_model_known(model_id, known)


class DeviceService:
    """GET/POST /devices, GET/PATCH/DELETE /devices/{id}."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(
        self,
        *,
        extension_prefix: str | None = None,
        mac: str | None = None,
        user_id: int | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> dict[str, Any]:
        """Devices ordered by extension. `extension_prefix` is the autocomplete (capped at 20)."""
        lim, off = clamp_page(limit, offset)
        query = select(Device)
        if extension_prefix is not None:
            rules.check_extension(extension_prefix, "extension_prefix")
            # A range on the unique index: ':' sorts right after '9', so this is "starts with".
            query = query.where(
                Device.extension >= extension_prefix, Device.extension < extension_prefix + ":"
            )
            lim = min(lim, AUTOCOMPLETE_CAP)
        if mac is not None:
            query = query.where(Device.mac == parse_mac(mac))
        if user_id is not None:
            query = query.where(Device.user_id == user_id if user_id <= MAX_ID else false())
        async with self.ctx.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
            rows = (
                await session.scalars(query.order_by(Device.extension).limit(lim).offset(off))
            ).all()
            return page([device_view(d) for d in rows], total, lim, off)

    async def get(self, device_id: int) -> dict[str, Any]:
        """One device."""
        async with self.ctx.db.read() as session:
            return device_view(await load_device(session, device_id))

    async def create(self, cmd: DeviceCreate, actor: str) -> dict[str, Any]:
        """Create a device; an unprovisioned record with the same MAC is claimed (removed)."""
        extension = rules.check_extension(cmd.extension, "extension")
        mac = parse_mac(cmd.mac)
        async with self.ctx.db.write() as session:
            await _check_model(session, cmd.model)
            await check_extension_free(session, extension, None)
            await _check_mac_free(session, mac, None)
            device = Device(
                accounts=[],
                extension=extension,
                model_id=cmd.model,
                mac=mac,
                active=cmd.active,
                label=device_rules.check_label(cmd.label),
                **credentials(self.ctx.secrets, extension, cmd.sip_username, cmd.sip_password),
            )
            if cmd.site_id is not None:
                device.site_id = (await load_site(session, cmd.site_id)).id
            session.add(device)
            await session.flush()
            if cmd.user_id is not None:
                user = await load_user(session, cmd.user_id)
                await attach(session, user, device)
            await session.execute(delete(UnprovisionedDevice).where(UnprovisionedDevice.mac == mac))
            view = device_view(device)
            audit(session, actor, "device.create", "device", device.id, None, view)
        return view

    async def update(self, device_id: int, patch: DevicePatch, actor: str) -> dict[str, Any]:
        """Change a device's own fields. A new extension keeps the owner's rules true."""
        sent = patch.model_fields_set
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            before = device_view(device)
            if "extension" in sent:
                await self._change_extension(
                    session, device, rules.check_extension(patch.extension, "extension")
                )
            if "model" in sent:
                device.model_id = await _check_model(session, patch.model or "")
                await check_slots_fit(session, device)
            if "mac" in sent:
                mac = parse_mac(patch.mac or "")
                await _check_mac_free(session, mac, device.id)
                device.mac = mac
            if "active" in sent:
                if patch.active is None:
                    raise InvalidInput("active must be true or false", field="active")
                device.active = patch.active
            if "sip_username" in sent:
                device.sip_username = _check_sip_username(patch.sip_username or "")
            if "sip_password" in sent:
                device.sip_password = self.ctx.secrets.encrypt(
                    _check_password(patch.sip_password or "")
                )
            if "label" in sent:
                device.label = device_rules.check_label(patch.label)
            if "site_id" in sent:
                site_id = patch.site_id
                device.site_id = None if site_id is None else (await load_site(session, site_id)).id
            await session.flush()
            after = device_view(device)
            changed = {"sip_password": "changed"} if "sip_password" in sent else {}
            audit(
                session, actor, "device.update", "device", device_id, before, {**after, **changed}
            )
        return after

    async def _change_extension(
        self, session: AsyncSession, device: Device, extension: str
    ) -> None:
        if extension == device.extension:
            return
        await check_extension_free(session, extension, device.id)
        owners = (
            await session.scalars(select(User.id).where(User.main_extension == extension))
        ).all()
        rules.check_device_extension_for_owner(
            extension, owner_id=device.user_id, main_extension_user_ids=owners
        )
        if device.user_id is not None:
            user = await load_user(session, device.user_id)
            if user.primary_device_id == device.id and user.main_extension == device.extension:
                # The primary's extension is the main extension (rule 2): they move together.
                await move_main_extension(session, user, extension)
        device.extension = extension

    async def reveal_password(self, device_id: int, actor: str) -> dict[str, Any]:
        """The device's SIP and provisioning passwords, in clear; every call is audited."""
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            sealed = device.provisioning_password
            answer = {
                "id": device.id,
                "sip_username": device.sip_username,
                "sip_password": self.ctx.secrets.decrypt(device.sip_password),
                "provisioning_username": provisioning_username(device.mac),
                "provisioning_password": self.ctx.secrets.decrypt(sealed) if sealed else None,
            }
            revealed = {"revealed": ["sip_password", "provisioning_password"]}
            audit(session, actor, "device.reveal_password", "device", device_id, None, revealed)
        return answer

    async def delete(
        self, device_id: int, *, new_primary: int | LineRef | None, actor: str
    ) -> None:
        """Delete a device; deleting a user's primary follows rule 3 (`new_primary`)."""
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            before = device_view(device)
            if device.user_id is not None:
                await detach(session, await load_user(session, device.user_id), device, new_primary)
            # Its further accounts go with it; an account that is its owner's primary line
            # while the owner has others is refused (rule 3: choose that user's primary first).
            for account in list(device.accounts):
                if account.user_id is not None:
                    owner = await load_user(session, account.user_id)
                    try:
                        await detach_line(session, owner, LineRef(device.id, account.slot), None)
                    except Conflict as exc:
                        raise Conflict(
                            f"account {account.slot} of device {device.id} is the primary line "
                            f"of user {owner.id}, who has other lines: choose that user's "
                            "primary first",
                            field="new_primary",
                        ) from exc
            await session.execute(delete(Device).where(Device.id == device_id))
            audit(session, actor, "device.delete", "device", device_id, before, None)
