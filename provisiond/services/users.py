"""User use cases: the user form, its Team App and Client panels, and its devices panel.

Each public method is one transaction (DESIGN.md rule 7): it gathers facts, lets the pure rules
in provisiond.domain.rules decide, applies the outcome and writes one audit row; any refusal
raises before commit, so nothing changes.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, InvalidInput, NotFound
from provisiond.services.commands import ClientInput, TeamAppInput, UserCreate, UserPatch
from provisiond.services.context import MAX_ID, ServiceContext, audit, clamp_page
from provisiond.services.key_follow import move_main_extension
from provisiond.services.platform import effective_platform, licence_counts, licences_used
from provisiond.services.views import page, user_view
from provisiond.settings import PlatformSettings
from provisiond.storage.models import Device, DeviceAccount, User

_CLI = re.compile(r"\+?[0-9]{1,15}")  # E.164: at most 15 digits (the column holds 16)


async def load_user(session: AsyncSession, user_id: int) -> User:
    """The user with its devices, or NotFound."""
    if not 0 < user_id <= MAX_ID:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    user = await session.scalar(
        select(User).where(User.id == user_id).options(selectinload(User.devices))
    )
    if user is None:
        raise NotFound(f"user {user_id} does not exist", field="user_id")
    return user


async def check_main_extension(session: AsyncSession, extension: str, user_id: int | None) -> None:
    """Main extension unique among users and not another user's device (or account) extension."""
    users = (await session.scalars(select(User.id).where(User.main_extension == extension))).all()
    owners = [
        *(await session.scalars(select(Device.user_id).where(Device.extension == extension))),
        *(
            await session.scalars(
                select(DeviceAccount.user_id).where(DeviceAccount.extension == extension)
            )
        ),
    ]
    rules.check_main_extension_free(
        extension, user_id=user_id, user_ids_with_main=users, device_owner_ids=owners
    )


def _check_cli(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _CLI.fullmatch(value):
        raise InvalidInput(
            "cli_custom must be 1-15 digits with an optional leading +", field="cli_custom"
        )
    return value


def _team_app(user: User) -> rules.TeamApp:
    return rules.TeamApp(
        enabled=user.team_app_enabled,
        smart_working=user.team_app_smart_working,
        gsm_mode=user.team_app_gsm_mode,
        gsm_number=user.team_app_gsm_number,
        fallback_timeout_s=user.team_app_fallback_timeout_s,
        callback_enabled=user.team_app_callback_enabled,
    )


def _client(user: User) -> rules.Client:
    return rules.Client(
        enabled=user.client_enabled,
        smart_working=user.client_smart_working,
        web_phone=user.client_web_phone,
        video_calls=user.client_video_calls,
    )


def _patched(current: Any, patch: TeamAppInput | ClientInput | None, panel: str) -> Any:
    """Apply the fields present in `patch`; turning a switch off also turns off every option
    that needs it (rules.dependants), unless the same request sets those explicitly, which the
    rules then judge."""
    if patch is None:
        return current
    sent = patch.model_fields_set
    changes = {name: getattr(patch, name) for name in sent}
    for switch in sent:
        if changes[switch] is False:
            for option in rules.dependants(f"{panel}.{switch}"):
                changes.setdefault(option.removeprefix(f"{panel}."), False)
    for name in ("enabled", "smart_working", "gsm_mode", "web_phone", "video_calls"):
        if name in changes and changes[name] is None:
            raise InvalidInput(f"{panel}.{name} must be true or false", field=f"{panel}.{name}")
    return replace(current, **changes)


async def _apply_features(
    session: AsyncSession,
    user: User,
    platform: PlatformSettings,
    app_patch: TeamAppInput | None,
    client_patch: ClientInput | None,
) -> None:
    before_app, before_client = _team_app(user), _client(user)
    app = rules.check_team_app(
        _patched(before_app, app_patch, "team_app"),
        mcs_interconnected=platform.mcs_interconnected,
    )
    client = rules.check_client(
        _patched(before_client, client_patch, "client"),
        mcs_interconnected=platform.mcs_interconnected,
    )
    rules.check_licences(
        rules.licences_needed(before_app, before_client),
        rules.licences_needed(app, client),
        await licence_counts(session),
        await licences_used(session),
    )
    user.team_app_enabled, user.team_app_smart_working = app.enabled, app.smart_working
    user.team_app_gsm_mode, user.team_app_gsm_number = app.gsm_mode, app.gsm_number
    user.team_app_fallback_timeout_s = app.fallback_timeout_s
    user.team_app_callback_enabled = app.callback_enabled
    user.client_enabled, user.client_smart_working = client.enabled, client.smart_working
    user.client_web_phone, user.client_video_calls = client.web_phone, client.video_calls


class UserService:
    """Users and their devices panel."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _platform(self, session: AsyncSession) -> PlatformSettings:
        return await effective_platform(session, self.ctx.settings.platform)

    async def _view(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        session.expunge_all()  # re-read: flushes above may have changed relationships
        user = await load_user(session, user_id)
        return user_view(user, (await self._platform(session)).team_app)

    async def list(
        self, search: str | None = None, limit: int | None = None, offset: int | None = None
    ) -> dict[str, Any]:
        """Users ordered by username; `search` matches username, display name or extension."""
        lim, off = clamp_page(limit, offset)
        query = select(User)
        if search:
            like = f"%{search.replace('%', '').replace('_', '')}%"
            query = query.where(
                or_(
                    User.username.ilike(like),
                    User.display_name.ilike(like),
                    User.main_extension.like(like),
                )
            )
        async with self.ctx.db.read() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery())) or 0
            users = (
                await session.scalars(
                    query.options(selectinload(User.devices))
                    .order_by(User.username)
                    .limit(lim)
                    .offset(off)
                )
            ).all()
            defaults = (await self._platform(session)).team_app
            return page([user_view(u, defaults) for u in users], total, lim, off)

    async def get(self, user_id: int) -> dict[str, Any]:
        """One user with devices."""
        async with self.ctx.db.read() as session:
            return await self._view(session, user_id)

    async def create(self, cmd: UserCreate, actor: str) -> dict[str, Any]:
        """Create a user; features are checked against licences like any change."""
        username = rules.check_username(cmd.username)
        display = rules.check_text(cmd.display_name, "display_name", allow_empty=False)
        main = rules.check_extension(cmd.main_extension, "main_extension")
        async with self.ctx.db.write() as session:
            if await session.scalar(select(User.id).where(User.username == username)):
                raise Conflict(f"username {username!r} is taken", field="username")
            await check_main_extension(session, main, None)
            user = User(
                username=username,
                display_name=display,
                main_extension=main,
                cli_custom=_check_cli(cmd.cli_custom),
            )
            user.devices = []
            await _apply_features(
                session, user, await self._platform(session), cmd.team_app, cmd.client
            )
            session.add(user)
            await session.flush()
            view = await self._view(session, user.id)
            audit(session, actor, "user.create", "user", user.id, None, view)
        return view

    async def update(self, user_id: int, patch: UserPatch, actor: str) -> dict[str, Any]:
        """Change the user form's fields."""
        sent = patch.model_fields_set
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            if "username" in sent:
                name = rules.check_username(patch.username)
                if name != user.username and await session.scalar(
                    select(User.id).where(User.username == name)
                ):
                    raise Conflict(f"username {name!r} is taken", field="username")
                user.username = name
            if "display_name" in sent:
                user.display_name = rules.check_text(
                    patch.display_name, "display_name", allow_empty=False
                )
            if "main_extension" in sent:
                main = rules.check_extension(patch.main_extension, "main_extension")
                await check_main_extension(session, main, user_id)
                await move_main_extension(session, user, main)
            if "cli_custom" in sent:
                user.cli_custom = _check_cli(patch.cli_custom)
            await _apply_features(
                session, user, await self._platform(session), patch.team_app, patch.client
            )
            await session.flush()
            after = await self._view(session, user_id)
            audit(session, actor, "user.update", "user", user_id, before, after)
        return after

    async def delete(self, user_id: int, actor: str) -> None:
        """Delete a user; their devices stay, unassigned. Licences are freed."""
        async with self.ctx.db.write() as session:
            before = await self._view(session, user_id)
            user = await load_user(session, user_id)
            user.primary_device_id = None
            user.primary_account_id = None
            await session.flush()
            for device in user.devices:
                device.user_id = None
            for account in user.accounts:
                account.user_id = None
            await session.flush()
            await session.execute(delete(User).where(User.id == user_id))
            audit(session, actor, "user.delete", "user", user_id, before, None)
