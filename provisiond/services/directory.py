"""Who answers a number: the PBX's view of the Devices tab (DESIGN.md section 1).

Dialling a main extension reaches the user: every *active* device rings, plus the Team App and
the web phone when enabled. Dialling a device extension reaches that device's user the same way
(the number identifies the user). The presented CLI is the custom CLI or the main extension.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import rules
from provisiond.domain.errors import NotFound
from provisiond.domain.rules import LineRef
from provisiond.services.assignments import primary_of
from provisiond.services.context import ServiceContext
from provisiond.services.platform import effective_platform
from provisiond.services.users import load_user
from provisiond.settings import TeamAppDefaults
from provisiond.storage.models import Device, DeviceAccount, User


def ring_targets(
    user: User, defaults: TeamAppDefaults, account_models: dict[int, str]
) -> list[dict[str, Any]]:
    """What rings when the user is called: every active line (devices and the accounts the
    user owns on any device), primary first. `account_models`: device id -> model of the
    devices carrying the user's accounts."""
    primary = primary_of(user)
    lines = [(LineRef(d.id), d.extension, d.model_id) for d in user.devices if d.active] + [
        (LineRef(a.device_id, a.slot), a.extension, account_models[a.device_id])
        for a in user.accounts
        if a.active
    ]
    lines.sort(key=lambda line: (line[0] != primary, line[1]))
    targets: list[dict[str, Any]] = [
        {
            "type": "device",
            "device_id": ref.device_id,
            "slot": ref.slot,
            "extension": extension,
            "model": model,
            "primary": ref == primary,
        }
        for ref, extension, model in lines
    ]
    if user.team_app_enabled:
        app: dict[str, Any] = {"type": "team_app", "smart_working": user.team_app_smart_working}
        if user.team_app_gsm_mode:
            timeout = user.team_app_fallback_timeout_s
            callback = user.team_app_callback_enabled
            app["gsm"] = {
                "number": user.team_app_gsm_number,
                "fallback_timeout_s": defaults.fallback_timeout_s if timeout is None else timeout,
                "callback_enabled": defaults.callback_enabled if callback is None else callback,
            }
        targets.append(app)
    if user.client_enabled and user.client_web_phone:
        targets.append({"type": "web_phone", "video_calls": user.client_video_calls})
    return targets


async def _models(session: AsyncSession, user: User) -> dict[int, str]:
    ids = {a.device_id for a in user.accounts}
    if not ids:
        return {}
    rows = await session.execute(select(Device.id, Device.model_id).where(Device.id.in_(ids)))
    return {row.id: row.model_id for row in rows}


class DirectoryService:
    """GET /api/v1/directory/{number}."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def lookup(self, number: str) -> dict[str, Any]:
        """The user reached by `number` (main or device extension), CLI and ring targets."""
        rules.check_extension(number, "number")
        async with self.ctx.db.read() as session:
            user_id = await session.scalar(select(User.id).where(User.main_extension == number))
            via = "main_extension"
            if user_id is None:
                user_id = await session.scalar(
                    select(Device.user_id).where(Device.extension == number)
                )
                via = "device_extension"
            if user_id is None:
                user_id = await session.scalar(
                    select(DeviceAccount.user_id).where(DeviceAccount.extension == number)
                )
            if user_id is None:
                raise NotFound(f"no user answers {number}", field="number")
            user = await load_user(session, user_id)
            defaults = (await effective_platform(session, self.ctx.settings.platform)).team_app
            return {
                "number": number,
                "matched": via,
                "user": {
                    "id": user.id,
                    "username": user.username,
                    "display_name": user.display_name,
                    "main_extension": user.main_extension,
                },
                "presented_cli": rules.presented_cli(user.main_extension, user.cli_custom),
                "ring_targets": ring_targets(user, defaults, await _models(session, user)),
            }
