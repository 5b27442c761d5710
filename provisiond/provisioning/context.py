"""The template context of docs/templates.md, built from a device and the platform settings."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta
from typing import Any

from provisiond.domain.identify import FileKind
from provisiond.domain.rules import presented_cli
from provisiond.provisioning.directory import ModelInfo, PhoneDevice
from provisiond.settings import PlatformSettings


def utc_offset(timezone: str, at: datetime | None = None) -> tuple[str, int, bool]:
    """("+1", 60, dst) for an IANA zone now: the standard offset phones want, and DST in use."""
    moment = (at or datetime.now(UTC)).astimezone(zoneinfo.ZoneInfo(timezone))
    offset = moment.utcoffset() or timedelta(0)
    dst = moment.dst() or timedelta(0)
    standard = int((offset - dst).total_seconds() // 60)
    sign = "-" if standard < 0 else "+"
    hours, minutes = divmod(abs(standard), 60)
    text = f"{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    return text, standard, bool(dst)


def _server(platform: PlatformSettings) -> dict[str, Any]:
    proxy, _, proxy_port = platform.sip.outbound_proxy.partition(":")
    return {
        "registrar": platform.sip.registrar,
        "port": platform.sip.port,
        "transport": platform.sip.transport,
        "outbound_proxy": proxy,
        "outbound_proxy_port": int(proxy_port) if proxy_port.isdigit() else platform.sip.port,
    }


def build_context(
    kind: FileKind,
    *,
    platform: PlatformSettings,
    provisioning: dict[str, Any],
    model: ModelInfo | None,
    device: PhoneDevice | None = None,
    sip_password: str = "",
    firmware_url: str = "",
    firmware_version: str = "",
) -> dict[str, Any]:
    """The names a file of `kind` may use; `line` (with the password) only for device files."""
    offset, minutes, dst = utc_offset(platform.timezone)
    context: dict[str, Any] = {
        "model": None
        if model is None
        else {
            "id": model.id,
            "vendor": model.vendor,
            "name": model.name,
            "family": model.family,
        },
        "server": _server(platform),
        "provisioning": provisioning,
        "firmware": {"url": firmware_url, "version": firmware_version},
        "time": {
            "ntp_server": platform.ntp_server,
            "timezone": platform.timezone,
            "utc_offset": offset,
            "utc_offset_minutes": minutes,
            "dst": dst,
        },
        "language": platform.language,
    }
    if device is None or kind not in (FileKind.DEVICE, FileKind.DEVICE_BOOT):
        return context
    mac = device.mac
    context["device"] = {
        "mac": mac,
        "mac_upper": mac.upper(),
        "mac_colon": ":".join(mac[i : i + 2] for i in range(0, 12, 2)),
        "mac_dash": "-".join(mac[i : i + 2] for i in range(0, 12, 2)).upper(),
        "extension": device.extension,
        "model": device.model.id,
    }
    if kind is FileKind.DEVICE:
        display = device.user_display_name or device.extension
        main = device.main_extension or device.extension
        cli = presented_cli(main, device.cli_custom)
        context["line"] = {
            "enabled": device.active,
            "extension": device.extension,
            "auth_username": device.sip_username,
            "password": sip_password,
            "display_name": display,
            "cli": cli,
            # Without a label of its own, the line key shows the presented number: several
            # vendors have no caller-id key, and the label is where users see it.
            "label": device.label or cli,
        }
        context["user"] = {"display_name": display, "main_extension": main}
    return context
