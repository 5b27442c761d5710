"""The seed's main-extension semantics for keys: a BLF follows its colleague's main extension.

When a user's main extension moves (a new primary device, the primary's extension edited, the
main extension set), every BLF key of every user and device that watched the old main
extension watches the new one, in the same transaction, with one audit row naming the users
and devices whose files changed (the phone directory and resync on change read it).
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.services.context import audit
from provisiond.storage.models import DeviceKey, User, UserKey

__all__ = ["FOLLOW_ACTOR", "move_main_extension"]

FOLLOW_ACTOR = "provisiond (BLF follows main extension)"


async def move_main_extension(session: AsyncSession, user: User, extension: str) -> None:
    """Set `user`'s main extension; BLF keys on the old one follow to `extension`."""
    old = user.main_extension
    user.main_extension = extension
    if old is None or old == extension:
        return
    users = (
        await session.scalars(
            select(UserKey.user_id).where(UserKey.type == "blf", UserKey.value == old).distinct()
        )
    ).all()
    devices = (
        await session.scalars(
            select(DeviceKey.device_id)
            .where(DeviceKey.type == "blf", DeviceKey.value == old)
            .distinct()
        )
    ).all()
    if not users and not devices:
        return
    for table in (UserKey, DeviceKey):
        await session.execute(
            update(table)
            .where(table.type == "blf", table.value == old)
            .values(value=extension)
            .execution_options(synchronize_session=False)
        )
    audit(
        session,
        FOLLOW_ACTOR,
        "user.blf_follow",
        "user",
        user.id,
        {"main_extension": old},
        {"main_extension": extension, "users": sorted(users), "devices": sorted(devices)},
    )
