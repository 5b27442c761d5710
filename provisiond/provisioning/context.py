"""The template context of docs/templates.md, built from a device and the platform settings.

`RenderInputs` is everything a rendered file depends on; the resolver caches rendered files by
`RenderInputs.key()`, and `RenderInputs.context()` is the only way it builds a context, so a
new input becomes part of both at once (tests/unit/test_render_inputs.py checks that every
field moves the key).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from provisiond.domain.identify import FileKind, VendorSpec
from provisiond.domain.keys import PhoneKey, key_place
from provisiond.domain.rules import presented_cli
from provisiond.domain.timezone import Transition, format_offset
from provisiond.provisioning.directory import ModelInfo, Phonebook, PhoneDevice
from provisiond.provisioning.timezones import vendor_zone, zone_rules
from provisiond.settings import PlatformSettings


@dataclass(frozen=True, slots=True)
class Endpoints:
    """How phones reach this server, for URLs rendered into files."""

    http_url: str  # ends with "/"
    tftp_host: str
    tftp_port: int


def render_key(
    kind: FileKind,
    vendor: VendorSpec,
    template: str | None,
    platform_revision: int,
    model: ModelInfo | None,
    device: PhoneDevice | None,
    firmware: tuple[str, str],
    endpoints: Endpoints,
    phonebook: Phonebook | None = None,
) -> Hashable:
    """`RenderInputs.key()` from the inputs themselves: the resolver looks a file up with it
    before building a `RenderInputs`, which it needs only to render (a cache miss)."""
    return (
        kind,
        vendor.id,
        template,
        platform_revision,
        model,
        None if device is None else (device.id, device.revision),
        firmware,
        endpoints,
        None if phonebook is None else phonebook.revision,
    )


@dataclass(frozen=True, slots=True)
class RenderInputs:
    """What one rendered file depends on, and nothing else (the context reads no clock)."""

    kind: FileKind
    vendor: VendorSpec
    template: str | None
    platform: PlatformSettings
    platform_revision: int  # changes whenever `platform` (or the sites) change
    model: ModelInfo | None
    device: PhoneDevice | None  # its `revision` changes whenever any of its fields does
    firmware: tuple[str, str]  # (url, version) offered, ("", "") for none
    endpoints: Endpoints
    phonebook: Phonebook | None = None  # for the phone book file only; by its revision

    def key(self) -> Hashable:
        """The render-cache key: equal keys give equal files.

        Large inputs stand in by their revision (the platform settings, the device) or their
        id (the vendor's spec, fixed for the process); the rest are small values.
        """
        return render_key(
            self.kind,
            self.vendor,
            self.template,
            self.platform_revision,
            self.model,
            self.device,
            self.firmware,
            self.endpoints,
            self.phonebook,
        )

    def context(self, open_secret: Callable[[str], str]) -> dict[str, Any]:
        """The template context; `open_secret` decrypts the device's sealed passwords."""
        device = self.device if self.kind in (FileKind.DEVICE, FileKind.DEVICE_BOOT) else None
        per_device = device if self.kind is FileKind.DEVICE else None
        sealed = per_device.provisioning_password_sealed if per_device is not None else None
        ends = self.endpoints
        return build_context(
            self.kind,
            vendor=self.vendor,
            platform=self.platform,
            # Digest credentials only in the protected per-device file (a boot file is served
            # inside the site without credentials, so it must not carry them).
            provisioning={
                "base_url": ends.http_url,
                "http_url": ends.http_url,
                "tftp_host": ends.tftp_host,
                "tftp_port": ends.tftp_port,
                "username": per_device.mac if per_device is not None and sealed else "",
                "password": open_secret(sealed) if sealed else "",
            },
            model=self.model,
            device=device,
            sip_password=open_secret(per_device.sip_password_sealed) if per_device else "",
            account_passwords=tuple(
                open_secret(account.sip_password_sealed)
                for account in (per_device.accounts if per_device else ())
            ),
            firmware_url=self.firmware[0],
            firmware_version=self.firmware[1],
            phonebook=self.phonebook,
        )


def _transition(when: Transition) -> dict[str, Any]:
    return {
        "month": when.month,
        "week": when.week,
        "last": when.last,
        "weekday": when.weekday,
        "iso_weekday": when.iso_weekday,
        "hour": when.hour,
        "minute": when.minute,
        "minutes": when.minutes,
    }


def time_context(ntp_server: str, timezone: str, zone_name: str) -> dict[str, Any]:
    """The `time` block: the zone as rules the phone applies all year, never today's state.

    `zone_name` is the vendor's own name for `timezone` ("" when its list lacks it).
    """
    rules = zone_rules(timezone)
    dst = rules.dst
    return {
        "ntp_server": ntp_server,
        "timezone": timezone,
        "zone_name": zone_name,
        "posix": rules.posix,
        "abbreviation": rules.abbreviation,
        "utc_offset": format_offset(rules.offset_minutes),
        "utc_offset_minutes": rules.offset_minutes,
        "dst": None
        if dst is None
        else {
            "abbreviation": dst.abbreviation,
            "offset_minutes": dst.offset_minutes,
            "save_minutes": rules.save_minutes,
            "exact": dst.exact,
            "start": _transition(dst.start),
            "end": _transition(dst.end),
        },
    }


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
    vendor: VendorSpec,
    platform: PlatformSettings,
    provisioning: dict[str, Any],
    model: ModelInfo | None,
    device: PhoneDevice | None = None,
    sip_password: str = "",
    firmware_url: str = "",
    firmware_version: str = "",
    account_passwords: Sequence[str] = (),
    phonebook: Phonebook | None = None,
) -> dict[str, Any]:
    """The names a file of `kind` may use; `line` (with the password) only for device files.

    Nothing here reads the clock: the same data gives the same file on every day of the year,
    which is what lets the resolver cache rendered files by revision.
    """
    context: dict[str, Any] = {
        "model": None
        if model is None
        else {
            "id": model.id,
            "vendor": model.vendor,
            "name": model.name,
            "family": model.family,
            "series": model.series,
            "accounts": model.accounts,
            "line_keys": model.line_keys,
            "expansion_modules": model.expansion_modules,
            "handsets": model.handsets,
        },
        "server": _server(platform),
        "provisioning": provisioning,
        "firmware": {"url": firmware_url, "version": firmware_version},
        "time": time_context(
            platform.ntp_server, platform.timezone, vendor_zone(vendor, platform.timezone)
        ),
        "language": platform.language,
    }
    if kind is FileKind.PHONEBOOK:
        context["phonebook"] = _phonebook(platform, phonebook)
        return context
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
        line = _account(
            1,
            device.active,
            device.extension,
            device.sip_username,
            sip_password,
            device.label,
            device.user_display_name,
            device.main_extension,
            device.cli_custom,
        )
        context["line"] = line
        context["user"] = {
            "display_name": line["display_name"],
            "main_extension": device.main_extension or device.extension,
        }
        # Every account the model can carry, slot 1 (= `line`) first; a slot beyond the
        # model's count (a model change the service refused to strand) is never written.
        limit = device.model.accounts
        context["accounts"] = [line] + [
            _account(
                a.slot,
                a.active,
                a.extension,
                a.sip_username,
                password,
                a.label,
                a.user_display_name,
                a.main_extension,
                a.cli_custom,
            )
            for a, password in zip(device.accounts, account_passwords, strict=True)
            if a.slot <= limit
        ]
        context["keys"], context["free_keys"] = _keys(device, context["accounts"], vendor.key_types)
        path = vendor.phonebook_path(mac)
        context["phonebook"] = {
            "title": platform.phonebook.title,
            "url": provisioning["http_url"] + path if path is not None else "",
            "refresh_s": platform.phonebook.refresh_s,
            "refresh_minutes": max(1, platform.phonebook.refresh_s // 60),
        }
    return context


def _phonebook(platform: PlatformSettings, phonebook: Phonebook | None) -> dict[str, Any]:
    """The phone book file's context: every user by name (and their mobile where allowed)."""
    entries = phonebook.entries if phonebook is not None else ()
    mobile = platform.phonebook.mobile
    return {
        "title": platform.phonebook.title,
        "entries": [
            {
                "name": entry.name,
                "extension": entry.extension,
                "mobile": entry.mobile if mobile and entry.mobile else "",
            }
            for entry in entries
        ],
    }


def _keys(
    device: PhoneDevice, accounts: Sequence[dict[str, Any]], types: Sequence[str]
) -> tuple[list[dict[str, Any]], list[int]]:
    """(keys, free_keys): every key the model can show, of a type the vendor writes, with
    where it sits (module 0 is the phone, 1.. its expansion modules; `index` counts from 1 on
    each), and the phone's own positions no key is set on (empty when no key is set at all:
    the phone keeps its own)."""
    model = device.model
    capacity = model.key_capacity
    slots = {account["slot"]: account for account in accounts}
    keys = [
        _key(key, model, slots)
        for key in device.keys
        if key.position <= capacity and key.type in types
    ]
    if not keys:
        return [], []
    taken = {key["position"] for key in keys}
    return keys, [p for p in range(1, model.line_keys + 1) if p not in taken]


def _key(key: PhoneKey, model: ModelInfo, slots: dict[int, dict[str, Any]]) -> dict[str, Any]:
    module, index = key_place(key.position, model.line_keys, model.module_keys)
    entry: dict[str, Any] = {
        "position": key.position,
        "type": key.type,
        "value": key.value,
        "label": key.label or key.value,
        "module": module,
        "index": index,
        "account": 1,
    }
    if key.type == "line":
        # A line key shows its owner's main extension (the seed's "interno principale"); an
        # account the model cannot carry falls back to the first.
        account = slots.get(int(key.value), slots[1])
        entry["account"] = account["slot"]
        entry["label"] = key.label or account["main_extension"]
    elif key.type in ("dnd", "park") and not key.label:
        entry["label"] = {"dnd": "DND", "park": "Park"}[key.type]
    return entry


def _account(
    slot: int,
    active: bool,
    extension: str,
    auth_username: str,
    password: str,
    label: str | None,
    display_name: str | None,
    main_extension: str | None,
    cli_custom: str | None,
) -> dict[str, Any]:
    """One SIP account as templates see it (`line` and each of `accounts`)."""
    display = display_name or extension
    cli = presented_cli(main_extension or extension, cli_custom)
    return {
        "slot": slot,
        "enabled": active,
        "extension": extension,
        "auth_username": auth_username,
        "password": password,
        "display_name": display,
        "cli": cli,
        "main_extension": main_extension or extension,
        # Without a label of its own, the line key shows the presented number: several
        # vendors have no caller-id key, and the label is where users see it.
        "label": label or cli,
    }
