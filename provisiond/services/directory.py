"""Who answers a number: the PBX's view of the Devices tab (DESIGN.md section 1).

Dialling a main extension reaches the user: every *active* device rings, plus the Team App and
the web phone when enabled. Dialling a device extension reaches that device's user the same way
(the number identifies the user). The presented CLI is the custom CLI or the main extension.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from provisiond.domain import rules
from provisiond.domain.errors import NotFound
from provisiond.services.context import ServiceContext
from provisiond.services.platform import effective_platform
from provisiond.services.users import load_user
from provisiond.settings import TeamAppDefaults
from provisiond.storage.models import Device, User


def ring_targets(user: User, defaults: TeamAppDefaults) -> list[dict[str, Any]]:
    """What rings when the user is called, primary device first."""
    devices = sorted(user.devices, key=lambda d: (d.id != user.primary_device_id, d.extension))
    targets: list[dict[str, Any]] = [
        {
            "type": "device",
            "device_id": d.id,
            "extension": d.extension,
            "model": d.model_id,
            "primary": d.id == user.primary_device_id,
        }
        for d in devices
        if d.active
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
                "ring_targets": ring_targets(user, defaults),
            }
