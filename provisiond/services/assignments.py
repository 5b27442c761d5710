"""The devices panel of a user: assign, unassign and choose the primary device (rules 1-3, 5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, NotFound
from provisiond.services.context import MAX_ID, ServiceContext, audit
from provisiond.services.platform import effective_platform
from provisiond.services.users import check_main_extension, load_user
from provisiond.services.views import user_view
from provisiond.storage.models import Device, User


async def load_device(session: AsyncSession, device_id: int, field: str = "device_id") -> Device:
    """A device by id, or NotFound naming `field`."""
    device = await session.get(Device, device_id) if 0 < device_id <= MAX_ID else None
    if device is None:
        raise NotFound(f"device {device_id} does not exist", field=field)
    return device


async def attach(session: AsyncSession, user: User, device: Device) -> None:
    """Give `device` to `user` (rules 1 and the extension rule); the caller checked rule 5."""
    owners = (
        await session.scalars(select(User.id).where(User.main_extension == device.extension))
    ).all()
    rules.check_device_extension_for_owner(
        device.extension, owner_id=user.id, main_extension_user_ids=owners
    )
    device.user_id = user.id
    await session.flush()
    user.primary_device_id = rules.primary_after_assign(
        current_primary_id=user.primary_device_id, device_id=device.id
    )
    await session.flush()


async def detach(
    session: AsyncSession, user: User, device: Device, new_primary: int | None
) -> None:
    """Take `device` from `user` (rule 3); the new primary follows rule 2."""
    remaining = [d.id for d in user.devices]
    primary = rules.primary_after_unassign(
        device_id=device.id,
        current_primary_id=user.primary_device_id,
        remaining_ids=remaining,
        new_primary_id=new_primary,
    )
    if primary is not None and primary != user.primary_device_id:
        await promote(session, user, primary)
    elif primary is None:
        user.primary_device_id = None
    await session.flush()  # the primary key moves before the device leaves (composite FK)
    device.user_id = None
    await session.flush()


async def promote(session: AsyncSession, user: User, device_id: int) -> rules.PrimaryChange:
    """Make one of the user's devices primary; its extension becomes the main extension."""
    device = next((d for d in user.devices if d.id == device_id), None)
    if device is None:
        raise Conflict(f"device {device_id} does not belong to user {user.id}", field="device_id")
    change = rules.select_primary(
        device_id=device.id, device_extension=device.extension, main_extension=user.main_extension
    )
    if change.changed:
        await check_main_extension(session, change.main_extension, user.id)
        user.main_extension = change.main_extension
    user.primary_device_id = device.id
    await session.flush()
    return change


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
                if source.primary_device_id == device.id and len(source.devices) > 1:
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
        self, user_id: int, device_id: int, *, new_primary: int | None, actor: str
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

    async def set_primary(self, user_id: int, device_id: int, *, actor: str) -> dict[str, Any]:
        """Rule 2: choose the primary device; the answer reports a main-extension change."""
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            await load_device(session, device_id)
            old_main = user.main_extension
            await promote(session, user, device_id)
            after = await self._view(session, user_id)
            audit(session, actor, "user.set_primary", "user", user_id, before, after)
        return _with_change(after, old_main)


def _with_change(view: dict[str, Any], old_main: str) -> dict[str, Any]:
    if view["main_extension"] != old_main:
        return {**view, "main_extension_changed": {"old": old_main, "new": view["main_extension"]}}
    return view
