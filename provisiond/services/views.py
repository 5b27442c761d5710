"""JSON-ready views of stored objects. Secrets never appear here."""

from __future__ import annotations

from typing import Any

from provisiond.domain.mac import mac_colon
from provisiond.domain.rules import presented_cli
from provisiond.settings import TeamAppDefaults
from provisiond.storage.models import (
    AuditEntry,
    Device,
    DeviceAccount,
    DeviceModel,
    UnprovisionedDevice,
    User,
)


def device_view(device: Device) -> dict[str, Any]:
    """A device as the API shows it, with its further accounts; `sip_password` is
    write-only and never included."""
    last_seen = None
    if device.last_seen_at is not None:
        last_seen = {
            "at": device.last_seen_at.isoformat(),
            "ip": device.last_seen_ip,
            "user_agent": device.last_seen_user_agent,
            "firmware": device.last_seen_firmware,
        }
    return {
        "id": device.id,
        "extension": device.extension,
        "model": device.model_id,
        "mac": mac_colon(device.mac),
        "active": device.active,
        "user_id": device.user_id,
        "sip_username": device.sip_username,
        "label": device.label,
        "site_id": device.site_id,
        "last_seen": last_seen,
        "accounts": [account_view(a) for a in device.accounts],
    }


def account_view(account: DeviceAccount) -> dict[str, Any]:
    """A further account of a device (slot 2 and up); `sip_password` is never included."""
    return {
        "id": account.id,
        "device_id": account.device_id,
        "slot": account.slot,
        "extension": account.extension,
        "user_id": account.user_id,
        "sip_username": account.sip_username,
        "label": account.label,
        "active": account.active,
    }


def user_view(user: User, defaults: TeamAppDefaults) -> dict[str, Any]:
    """A user with devices; Team App timeout/callback show the effective value and its source."""
    timeout = user.team_app_fallback_timeout_s
    callback = user.team_app_callback_enabled
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "main_extension": user.main_extension,
        "cli_custom": user.cli_custom,
        "presented_cli": presented_cli(user.main_extension, user.cli_custom),
        "team_app": {
            "enabled": user.team_app_enabled,
            "smart_working": user.team_app_smart_working,
            "gsm_mode": user.team_app_gsm_mode,
            "gsm_number": user.team_app_gsm_number,
            "fallback_timeout_s": defaults.fallback_timeout_s if timeout is None else timeout,
            "callback_enabled": defaults.callback_enabled if callback is None else callback,
            "fallback_timeout_inherited": timeout is None,
            "callback_inherited": callback is None,
        },
        "client": {
            "enabled": user.client_enabled,
            "smart_working": user.client_smart_working,
            "web_phone": user.client_web_phone,
            "video_calls": user.client_video_calls,
        },
        "devices": [device_view(d) for d in user.devices],
        "accounts": [account_view(a) for a in user.accounts],
        # The primary line: slot `primary_slot` of device `primary_device_id`.
        **_primary(user),
    }


def _primary(user: User) -> dict[str, Any]:
    if user.primary_account_id is None:
        slot = None if user.primary_device_id is None else 1
        return {"primary_device_id": user.primary_device_id, "primary_slot": slot}
    account = next(a for a in user.accounts if a.id == user.primary_account_id)
    return {"primary_device_id": account.device_id, "primary_slot": account.slot}


def model_view(model: DeviceModel) -> dict[str, Any]:
    """A catalogue entry (docs/templates.md, "Model catalogue", says what each field means)."""
    return {
        "id": model.id,
        "vendor": model.vendor,
        "name": model.name,
        "family": model.family,
        "series": model.series,
        "boot": list(model.boot),
        "protocols": list(model.protocols),
        "auth": list(model.auth),
        "accounts": model.accounts,
        "line_keys": model.line_keys,
        "expansion_modules": model.expansion_modules,
        "module_keys": model.module_keys,
        "handsets": model.handsets,
        "dect": model.dect,
        "ata": model.ata,
        "user_agent": model.user_agent,
        "in_catalogue": model.in_catalogue,
    }


def unprovisioned_view(row: UnprovisionedDevice) -> dict[str, Any]:
    """A MAC that asked for a configuration and is not a known device."""
    return {
        "mac": mac_colon(row.mac),
        "vendor": row.vendor,
        "model_guess": row.model_guess,
        "first_seen": row.first_seen_at.isoformat(),
        "last_seen": row.last_seen_at.isoformat(),
        "ip": row.last_ip,
        "user_agent": row.user_agent,
        "path": row.path,
        "requests": row.requests,
    }


def audit_view(entry: AuditEntry) -> dict[str, Any]:
    """One audit-log row."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "before": entry.before,
        "after": entry.after,
    }


def page(items: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The envelope of every list answer."""
    return {"items": items, "total": total, "limit": limit, "offset": offset}
