"""The devices panel of a user: assign, unassign and choose the primary device (rules 1-3, 5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, NotFound
from provisiond.domain.rules import LineRef
from provisiond.services.context import MAX_ID, ServiceContext, audit
from provisiond.services.key_follow import move_main_extension
from provisiond.services.platform import effective_platform
from provisiond.services.users import check_main_extension, load_user
from provisiond.services.views import user_view
from provisiond.storage.models import Device, DeviceAccount, User


async def load_device(session: AsyncSession, device_id: int, field: str = "device_id") -> Device:
    """A device by id, or NotFound naming `field`."""
    device = await session.get(Device, device_id) if 0 < device_id <= MAX_ID else None
    if device is None:
        raise NotFound(f"device {device_id} does not exist", field=field)
    return device


def lines_of(user: User) -> dict[LineRef, str]:
    """The user's lines (devices, then further accounts they own) and their extensions."""
    lines = {LineRef(d.id): d.extension for d in user.devices}
    lines.update({LineRef(a.device_id, a.slot): a.extension for a in user.accounts})
    return lines


def primary_of(user: User) -> LineRef | None:
    """The user's primary line."""
    if user.primary_device_id is not None:
        return LineRef(user.primary_device_id)
    account = next((a for a in user.accounts if a.id == user.primary_account_id), None)
    return None if account is None else LineRef(account.device_id, account.slot)


async def _account(session: AsyncSession, line: LineRef) -> DeviceAccount:
    account = await session.scalar(
        select(DeviceAccount).where(
            DeviceAccount.device_id == line.device_id, DeviceAccount.slot == line.slot
        )
    )
    if account is None:
        raise NotFound(f"device {line.device_id} has no account in slot {line.slot}", field="slot")
    return account


async def _set_primary(session: AsyncSession, user: User, line: LineRef | None) -> None:
    """Point the user's primary at `line` (a device, or one of their accounts)."""
    if line is None or line.slot == 1:
        user.primary_account_id = None
        user.primary_device_id = None if line is None else line.device_id
    else:
        user.primary_device_id = None
        user.primary_account_id = (await _account(session, line)).id
    await session.flush()


async def _set_owner(session: AsyncSession, line: LineRef, owner: int | None) -> None:
    """Give the line (the device itself, or one of its accounts) to `owner` (None: nobody)."""
    if line.slot == 1:
        (await load_device(session, line.device_id)).user_id = owner
    else:
        (await _account(session, line)).user_id = owner
    await session.flush()


async def attach_line(session: AsyncSession, user: User, line: LineRef, extension: str) -> None:
    """Give a line to `user` (rule 1 and the extension rule); the caller checked rule 5."""
    owners = (await session.scalars(select(User.id).where(User.main_extension == extension))).all()
    rules.check_device_extension_for_owner(
        extension, owner_id=user.id, main_extension_user_ids=owners
    )
    current = primary_of(user)
    await _set_owner(session, line, user.id)
    await _set_primary(
        session, user, rules.primary_after_assign(current_primary_id=current, device_id=line)
    )


async def attach(session: AsyncSession, user: User, device: Device) -> None:
    """Give `device` (its first account) to `user`."""
    await attach_line(session, user, LineRef(device.id), device.extension)


async def detach_line(
    session: AsyncSession, user: User, line: LineRef, new_primary: LineRef | None
) -> None:
    """Take a line from `user` (rule 3); the new primary follows rule 2."""
    current = primary_of(user)
    primary = rules.primary_after_unassign(
        device_id=line,
        current_primary_id=current,
        remaining_ids=lines_of(user),
        new_primary_id=new_primary,
    )
    if primary is not None and primary != current:
        await promote_line(session, user, primary)
    elif primary is None:
        await _set_primary(session, user, None)
    # The primary key moved before the line leaves (composite foreign keys).
    await _set_owner(session, line, None)


async def detach(
    session: AsyncSession, user: User, device: Device, new_primary: int | LineRef | None
) -> None:
    """Take `device` (its first account) from `user` (rule 3)."""
    chosen = LineRef(new_primary) if isinstance(new_primary, int) else new_primary
    await detach_line(session, user, LineRef(device.id), chosen)


async def promote_line(
    session: AsyncSession, user: User, line: LineRef
) -> rules.PrimaryChange[LineRef]:
    """Make one of the user's lines primary; its extension becomes the main extension."""
    extension = lines_of(user).get(line)
    if extension is None:
        what = f"device {line.device_id}" if line.slot == 1 else f"account {line}"
        raise Conflict(f"{what} does not belong to user {user.id}", field="device_id")
    change = rules.select_primary(
        device_id=line, device_extension=extension, main_extension=user.main_extension
    )
    if change.changed:
        await check_main_extension(session, change.main_extension, user.id)
        await move_main_extension(session, user, change.main_extension)
    await _set_primary(session, user, line)
    return change


async def promote(
    session: AsyncSession, user: User, device_id: int
) -> rules.PrimaryChange[LineRef]:
    """Make one of the user's devices primary (rule 2)."""
    return await promote_line(session, user, LineRef(device_id))


class AssignmentService:
    """PUT/DELETE /users/{id}/devices/{device_id} and PUT /users/{id}/primary-device."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _view(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        session.expunge_all()
        platform = await effective_platform(session, self.ctx.settings.platform)
        return user_view(await load_user(session, user_id), platform.team_app)

    async def assign(
        self, user_id: int, device_id: int, *, move: bool, actor: str
    ) -> dict[str, Any]:
        """Assign a device; one owned by another user moves only with `move` (rule 5).

        A device that is another user's primary moves only when it is their last device, so
        that user is never left with devices and no primary (rule 1); otherwise choose their
        new primary first.
        """
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            device = await load_device(session, device_id)
            if device.user_id == user_id:
                return before
            rules.check_assign(device_owner_id=device.user_id, user_id=user_id, move=move)
            previous_owner = device.user_id
            if previous_owner is not None:
                source = await load_user(session, previous_owner)
                if primary_of(source) == LineRef(device.id) and len(lines_of(source)) > 1:
                    raise Conflict(
                        f"device {device.id} is the primary device of user {source.id}; choose "
                        "another primary for that user first",
                        field="move",
                    )
                await detach(session, source, device, None)
            await attach(session, user, device)
            after = await self._view(session, user_id)
            audit(
                session,
                actor,
                "user.assign_device",
                "user",
                user_id,
                before,
                {**after, "device_id": device_id, "moved_from": previous_owner},
            )
        return after

    async def unassign(
        self, user_id: int, device_id: int, *, new_primary: int | LineRef | None, actor: str
    ) -> dict[str, Any]:
        """Unassign a device; removing the primary while others remain needs `new_primary`."""
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            device = await load_device(session, device_id)
            if device.user_id != user_id:
                raise NotFound(
                    f"device {device_id} is not assigned to user {user_id}", field="device_id"
                )
            old_main = user.main_extension
            await detach(session, user, device, new_primary)
            after = await self._view(session, user_id)
            audit(session, actor, "user.unassign_device", "user", user_id, before, after)
        return _with_change(after, old_main)

    async def set_primary(
        self, user_id: int, device_id: int, *, slot: int = 1, actor: str
    ) -> dict[str, Any]:
        """Rule 2: choose the primary line (a device, or slot 2.. of one); the answer reports a
        main-extension change."""
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            await load_device(session, device_id)
            old_main = user.main_extension
            await promote_line(session, user, LineRef(device_id, slot))
            after = await self._view(session, user_id)
            audit(session, actor, "user.set_primary", "user", user_id, before, after)
        return _with_change(after, old_main)


def _with_change(view: dict[str, Any], old_main: str) -> dict[str, Any]:
    if view["main_extension"] != old_main:
        return {**view, "main_extension_changed": {"old": old_main, "new": view["main_extension"]}}
    return view
