"""Phone identification: which vendor a User-Agent or a requested file name belongs to.

Pure functions over the vendor descriptions (`VendorSpec`, loaded from
``phone_templates/<vendor>/vendor.toml`` by `provisiond.provisioning.vendors`):

- `parse_user_agent` tries each vendor's User-Agent patterns in order (``re.search``) and
  returns the first hit with the captured model, firmware and MAC.
- `match_path` returns every vendor file spec whose pattern fully matches the requested path,
  in vendor order then file order. Several vendors may claim the same name (``<mac>.cfg`` is
  Yealink, Polycom, Fanvil and Aastra); the resolver decides with the User-Agent or the known
  device's model.

Path safety (traversal, prefixes) is the resolver's job before it calls `match_path`; here the
path is only matched, never opened.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "FileKind",
    "FileMatch",
    "FileSpec",
    "UserAgentInfo",
    "VendorSpec",
    "match_path",
    "normalise_captured_mac",
    "parse_user_agent",
]

# Separators phones and manuals put between MAC octets: "00:15:65", "00-15-65", "0015.65aa".
_MAC_SEPARATORS = re.compile(r"[:\-.\s]")
_MAC_HEX = re.compile(r"[0-9a-f]{12}")
# A MAC capture of these values is a vendor's conventional common-file name
# (Polycom "000000000000.cfg") or garbage, never a device.
_NOT_DEVICE_MACS = frozenset({"000000000000", "ffffffffffff"})


class FileKind(StrEnum):
    """What a requested file is, which decides how the resolver answers it."""

    DEVICE = "device"  # per-MAC file with the SIP secrets
    DEVICE_BOOT = "device_boot"  # per-MAC file without secrets (boot/master file)
    COMMON = "common"  # no MAC, no secrets; may name a model family
    UPLOAD = "upload"  # per-MAC name the phone PUTs/POSTs/WRQs
    FIRMWARE = "firmware"  # served from the firmware store by file name
    OPTIONAL = "optional"  # known name we deliberately do not serve: 404 fast
    PHONEBOOK = "phonebook"  # per-MAC name of the company phone book (no secrets; site policy)


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file name a vendor's phones ask for, and how to produce it.

    `pattern` is matched with ``fullmatch`` and is compiled case-insensitive by the loader.
    `template` is relative to the vendor directory (None for kinds that render nothing).
    `line_ending` is ``"lf"`` or ``"crlf"``; `max_upload` is set for uploads only.
    """

    pattern: re.Pattern[str]
    kind: FileKind
    template: str | None = None
    content_type: str = "text/plain; charset=utf-8"
    line_ending: str = "lf"
    max_upload: int | None = None
    path: str | None = None  # kind phonebook: the name to write into files, with {mac}


@dataclass(frozen=True, slots=True)
class VendorSpec:
    """A vendor description: identification patterns and the files its phones request."""

    id: str
    title: str
    dhcp_options: tuple[int, ...]
    resync_event: str  # SIP NOTIFY Event that makes the phone re-read its files, no reboot
    # Left out of repr: a vendor appears in every match and log line; its id is enough.
    user_agents: tuple[re.Pattern[str], ...] = field(repr=False)
    files: tuple[FileSpec, ...] = field(repr=False)
    reboot_event: str = ""  # the Event that reboots the phone ("" when the vendor has none)
    # Model family -> (resync event, reboot event) where a family differs from the vendor's
    # own (Cisco 7940/7960 know only check-sync, a reboot); "" means the family has none.
    family_events: Mapping[str, tuple[str, str]] = field(
        default_factory=dict, repr=False, hash=False
    )
    # IANA zone -> the vendor's own zone name (timezones.toml); empty when it takes rules only.
    timezones: Mapping[str, str] = field(default_factory=dict, repr=False, hash=False)
    # The programmable key types its templates write (domain/keys.py), and what its phone
    # book file is ("" when it has none): docs/phones.md lists both.
    key_types: tuple[str, ...] = field(default=(), hash=False)
    phonebook_format: str = field(default="", hash=False)

    def events(self, family: str) -> tuple[str, str]:
        """(resync event, reboot event) for a model of `family` ("" where it has none)."""
        return self.family_events.get(family, (self.resync_event, self.reboot_event))

    def phonebook_path(self, mac: str) -> str | None:
        """The name this vendor's phones fetch the phone book under, for the device `mac`
        (None: the vendor has no phone book file)."""
        for spec in self.files:
            if spec.kind is FileKind.PHONEBOOK and spec.path is not None:
                return spec.path.format(mac=mac, MAC=mac.upper())
        return None


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    """What a User-Agent says about the phone.

    `model` is the vendor's own model string as sent (e.g. ``"T46G"``, ``"VVX_400"``);
    `mac` is 12 lowercase hex digits, or None when the UA has no (valid) MAC.
    """

    vendor: VendorSpec
    model: str | None
    firmware: str | None
    mac: str | None


@dataclass(frozen=True, slots=True)
class FileMatch:
    """A vendor file spec that matched a requested path, with its captures.

    `mac` is 12 lowercase hex digits when the pattern has a ``mac`` group; `family` is the
    ``family`` capture as sent (look it up case-insensitively); `groups` holds every other
    named capture that matched (e.g. ``file`` for firmware).
    """

    vendor: VendorSpec
    spec: FileSpec
    mac: str | None
    family: str | None
    groups: dict[str, str] = field(default_factory=dict, hash=False)


def normalise_captured_mac(text: str | None) -> str | None:
    """Return `text` as 12 lowercase hex digits, or None when it is not a MAC.

    Accepts any case and the common notations (``00:15:65:AA:BB:CC``, ``00-15-65-aa-bb-cc``,
    ``0015.65aa.bbcc``, ``001565AABBCC``).
    """
    if text is None:
        return None
    digits = _MAC_SEPARATORS.sub("", text).lower()
    return digits if _MAC_HEX.fullmatch(digits) else None


def parse_user_agent(vendors: Iterable[VendorSpec], ua: str | None) -> UserAgentInfo | None:
    """Identify the vendor, model, firmware and MAC from an HTTP User-Agent.

    Vendors and their patterns are tried in order with ``re.search``; the first hit wins.
    Returns None for a missing or unrecognised User-Agent.
    """
    if not ua:
        return None
    for vendor in vendors:
        for pattern in vendor.user_agents:
            found = pattern.search(ua)
            if found is not None:
                captures = found.groupdict()
                return UserAgentInfo(
                    vendor=vendor,
                    model=captures.get("model"),
                    firmware=captures.get("firmware"),
                    mac=normalise_captured_mac(captures.get("mac")),
                )
    return None


def match_path(vendors: Iterable[VendorSpec], path: str) -> list[FileMatch]:
    """Return every vendor file spec whose pattern fully matches `path`.

    Results are in vendor order, then in each vendor's file order. A spec whose ``mac``
    capture is not a usable device MAC (all zeros, broadcast, not 12 hex digits) is skipped,
    so ``000000000000.cfg`` only matches the vendors' common files.
    """
    matches: list[FileMatch] = []
    for vendor in vendors:
        for spec in vendor.files:
            found = spec.pattern.fullmatch(path)
            if found is None:
                continue
            match = _file_match(vendor, spec, found)
            if match is not None:
                matches.append(match)
    return matches


def _file_match(vendor: VendorSpec, spec: FileSpec, found: re.Match[str]) -> FileMatch | None:
    """Build the `FileMatch` for one hit, or None when its MAC capture is unusable."""
    captures = {name: value for name, value in found.groupdict().items() if value is not None}
    mac: str | None = None
    if "mac" in spec.pattern.groupindex:
        mac = normalise_captured_mac(captures.get("mac"))
        if mac is None or mac in _NOT_DEVICE_MACS:
            return None
    family = captures.pop("family", None)
    captures.pop("mac", None)
    return FileMatch(vendor=vendor, spec=spec, mac=mac, family=family, groups=captures)
