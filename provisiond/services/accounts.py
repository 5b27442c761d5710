"""A device's further SIP accounts (slot 2 and up): DECT handsets, ATA ports, extra lines.

DESIGN.md, "Accounts": an account is an extension of a user like a device is, so the same
rules hold (unique extensions, the main-extension rule, one primary line per user, rule 5 for
taking another user's account). Each public method is one transaction with audit rows for the
device and for every user whose lines changed, so the phone directory re-reads both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import device_rules, rules
from provisiond.domain.catalogue import account_limit_problem
from provisiond.domain.errors import InvalidInput, NotFound
from provisiond.domain.rules import LineRef
from provisiond.services.assignments import (
    attach_line,
    detach_line,
    lines_of,
    load_device,
    primary_of,
)
from provisiond.services.commands import AccountPut
from provisiond.services.context import ServiceContext, audit
from provisiond.services.devices import (
    check_extension_free,
    check_password,
    check_sip_username,
    generate_password,
)
from provisiond.services.key_follow import move_main_extension
from provisiond.services.platform import effective_platform
from provisiond.services.users import load_user
from provisiond.services.views import account_view, device_view, user_view
from provisiond.storage.models import Device, DeviceAccount, DeviceModel, User

__all__ = ["AccountService"]


async def _slots(session: AsyncSession, device: Device) -> int:
    return (
        await session.scalar(select(DeviceModel.accounts).where(DeviceModel.id == device.model_id))
        or 1
    )


def _check_slot(slot: int, limit: int, device: Device) -> None:
    if slot == 1:
        raise InvalidInput(
            f"slot 1 is device {device.id}'s own account: change it with PATCH "
            f"/api/v1/devices/{device.id}",
            field="slot",
        )
    problem = account_limit_problem(slot, limit, device.model_id)
    if problem is not None:
        raise InvalidInput(problem, field="slot")


def _check_new_primary(user: User, new_primary: LineRef | None) -> None:
    if new_primary is not None and new_primary not in lines_of(user):
        raise InvalidInput(
            f"new_primary {new_primary} is not a line of user {user.id}", field="new_primary"
        )


class AccountService:
    """GET /devices/{id}/accounts, PUT/DELETE /devices/{id}/accounts/{slot}."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def list(self, device_id: int) -> dict[str, Any]:
        """Every account of the device: slot 1 (the device) first, and the model's count."""
        async with self.ctx.db.read() as session:
            device = await load_device(session, device_id)
            first = {
                "id": None,
                "device_id": device.id,
                "slot": 1,
                "extension": device.extension,
                "user_id": device.user_id,
                "sip_username": device.sip_username,
                "label": device.label,
                "active": device.active,
            }
            items = [first, *(account_view(a) for a in device.accounts)]
            return {"items": items, "slots": await _slots(session, device)}

    async def _users(self, session: AsyncSession, ids: set[int | None]) -> dict[int, Any]:
        session.expunge_all()
        defaults = (await effective_platform(session, self.ctx.settings.platform)).team_app
        return {
            user_id: user_view(await load_user(session, user_id), defaults)
            for user_id in sorted(i for i in ids if i is not None)
        }

    def _audit_users(
        self, session: AsyncSession, actor: str, before: dict[int, Any], after: dict[int, Any]
    ) -> None:
        for user_id in sorted(set(before) | set(after)):
            if before.get(user_id) != after.get(user_id):
                audit(
                    session,
                    actor,
                    "user.account_change",
                    "user",
                    user_id,
                    before.get(user_id),
                    after.get(user_id),
                )

    async def put(
        self,
        device_id: int,
        slot: int,
        cmd: AccountPut,
        *,
        move: bool,
        actor: str,
        new_primary: LineRef | None = None,
    ) -> dict[str, Any]:
        """Create or replace the account in `slot`; another user's account moves only with
        `move` (rule 5); taking its owner's primary line away while they have others names
        their `new_primary` (rule 3). The answer is the device with its accounts; the audit
        row holds this account only (a base's other handsets are not copied into it)."""
        extension = rules.check_extension(cmd.extension, "extension")
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            _check_slot(slot, await _slots(session, device), device)
            account = next((a for a in device.accounts if a.slot == slot), None)
            owner = None if account is None else account.user_id
            users_before = await self._users(session, {owner, cmd.user_id})
            device = await load_device(session, device_id)
            account = next((a for a in device.accounts if a.slot == slot), None)
            before = None if account is None else account_view(account)
            await check_extension_free(
                session, extension, None, None if account is None else account.id
            )
            if cmd.user_id is not None:
                rules.check_assign(device_owner_id=owner, user_id=cmd.user_id, move=move)
                await load_user(session, cmd.user_id)  # NotFound before anything changes
            line = LineRef(device.id, slot)
            if account is None:
                account = DeviceAccount(
                    device_id=device.id,
                    slot=slot,
                    extension=extension,
                    sip_username=check_sip_username(cmd.sip_username or extension),
                    sip_password=self.ctx.secrets.encrypt(
                        check_password(cmd.sip_password)
                        if cmd.sip_password
                        else generate_password()
                    ),
                )
                session.add(account)
            else:
                if owner is not None and owner != cmd.user_id:
                    old_owner = await load_user(session, owner)
                    _check_new_primary(old_owner, new_primary)
                    await detach_line(session, old_owner, line, new_primary)
                await self._change_extension(session, account, extension)
                account.sip_username = check_sip_username(cmd.sip_username or extension)
                if cmd.sip_password:
                    account.sip_password = self.ctx.secrets.encrypt(
                        check_password(cmd.sip_password)
                    )
            account.extension = extension
            account.label = device_rules.check_label(cmd.label)
            account.active = cmd.active
            await session.flush()
            if cmd.user_id is not None and cmd.user_id != account.user_id:
                await attach_line(session, await load_user(session, cmd.user_id), line, extension)
            after_users = await self._users(session, {owner, cmd.user_id})
            after = device_view(await load_device(session, device_id))
            changed = {"sip_password": "changed"} if cmd.sip_password else {}
            stored = next(a for a in after["accounts"] if a["slot"] == slot)
            audit(
                session,
                actor,
                "device.account_put",
                "device",
                device_id,
                before,
                {**stored, **changed},
            )
            self._audit_users(session, actor, users_before, after_users)
        return after

    async def _change_extension(
        self, session: AsyncSession, account: DeviceAccount, extension: str
    ) -> None:
        """A primary account's extension is its owner's main extension (rule 2): they move
        together; otherwise the new extension must not be another user's main extension."""
        if extension == account.extension or account.user_id is None:
            return
        mains = (
            await session.scalars(select(User.id).where(User.main_extension == extension))
        ).all()
        rules.check_device_extension_for_owner(
            extension, owner_id=account.user_id, main_extension_user_ids=mains
        )
        user = await load_user(session, account.user_id)
        if primary_of(user) == LineRef(account.device_id, account.slot) and (
            user.main_extension == account.extension
        ):
            await move_main_extension(session, user, extension)

    async def delete(
        self, device_id: int, slot: int, *, new_primary: LineRef | None, actor: str
    ) -> dict[str, Any]:
        """Remove the account in `slot`; removing its owner's primary line while they have
        others needs `new_primary` (rule 3)."""
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            account = next((a for a in device.accounts if a.slot == slot), None)
            if account is None:
                raise NotFound(f"device {device_id} has no account in slot {slot}", field="slot")
            owner = account.user_id
            users_before = await self._users(session, {owner})
            device = await load_device(session, device_id)
            account = next(a for a in device.accounts if a.slot == slot)
            before = account_view(account)
            if owner is not None:
                user = await load_user(session, owner)
                _check_new_primary(user, new_primary)
                await detach_line(session, user, LineRef(device_id, slot), new_primary)
            await session.execute(
                delete(DeviceAccount).where(
                    DeviceAccount.device_id == device_id, DeviceAccount.slot == slot
                )
            )
            after_users = await self._users(session, {owner})
            after = device_view(await load_device(session, device_id))
            audit(session, actor, "device.account_delete", "device", device_id, before, None)
            self._audit_users(session, actor, users_before, after_users)
        return after
