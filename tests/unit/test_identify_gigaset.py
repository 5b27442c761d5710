"""Gigaset identification: its User-Agents and the file names its bases ask for at boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from provisiond.provisioning.vendors import load_vendor

VENDOR_TOML = Path(__file__).resolve().parents[2] / "phone_templates" / "gigaset" / "vendor.toml"

# User-Agents of the other vendors (docs: reference/vendors.md); Gigaset must not claim them.
FOREIGN_USER_AGENTS = (
    "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "Fanvil X4 2.10.2.6887 0c383e07e16c",
    "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
    "Panasonic_KX-UT113/01.133 (0080f0c8c381)",
    "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
)


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Gigaset description, loaded (and validated) by the real loader."""
    return load_vendor(VENDOR_TOML)


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware", "mac"),
    [
        (
            "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
            "N870 IP PRO",
            "83.V2.11.0+build.a546b91",
            "7c2f80e0d605",
        ),
        (
            "Gigaset N670 IP PRO/83.V2.17.2+build.b14e3f1;7c2f80e0d606",
            "N670 IP PRO",
            "83.V2.17.2+build.b14e3f1",
            "7c2f80e0d606",
        ),
        # Without the MAC the base is still recognised.
        ("Gigaset N870 IP PRO/83.V2.11.0;", "N870 IP PRO", "83.V2.11.0", None),
        ("Gigaset N870E IP PRO/83.V2.26.0", "N870E IP PRO", "83.V2.26.0", None),
    ],
)
def test_user_agent(
    vendor: VendorSpec, user_agent: str, model: str, firmware: str, mac: str | None
) -> None:
    """Model, firmware and MAC come out of every Gigaset User-Agent form."""
    info = parse_user_agent([vendor], user_agent)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        "gigaset",
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize("user_agent", [*FOREIGN_USER_AGENTS, "Gigaset", "Mozilla/5.0"])
def test_other_user_agents_are_not_gigaset(vendor: VendorSpec, user_agent: str) -> None:
    """Another vendor's (or a browser's) User-Agent is not taken for a Gigaset."""
    assert parse_user_agent([vendor], user_agent) is None


@pytest.mark.parametrize(
    ("path", "kind", "mac"),
    [
        # The per-MAC file: the case the firmware uses is unverified, so any case works.
        ("7C2F80E0D605.xml", FileKind.DEVICE, "7c2f80e0d605"),
        ("7c2f80e0d605.xml", FileKind.DEVICE, "7c2f80e0d605"),
        ("7c2F80e0D605.XML", FileKind.DEVICE, "7c2f80e0d605"),
        ("einstein-albert-V2.17.2+build.b14e3f1.update.bin", FileKind.FIRMWARE, None),
    ],
)
def test_boot_file_names(vendor: VendorSpec, path: str, kind: FileKind, mac: str | None) -> None:
    """Each name a Gigaset asks for matches exactly one file spec, with its MAC."""
    matches = match_path([vendor], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, None)]


@pytest.mark.parametrize(
    "path",
    [
        "000000000000.xml",
        "7C2F80E0D605.cfg",
        "7C2F80E0D60.xml",
        "7C:2F:80:E0:D6:05.xml",
        "cfg7c2f80e0d605.xml",
        "N870.xml",
        "../7C2F80E0D605.xml",
    ],
)
def test_other_names_are_not_gigaset(vendor: VendorSpec, path: str) -> None:
    """Names that are not Gigaset's (or are malformed) match nothing."""
    assert match_path([vendor], path) == []


def test_resync_event(vendor: VendorSpec) -> None:
    """Gigaset re-reads its file on a check-sync NOTIFY without rebooting."""
    assert vendor.resync_event == "check-sync;reboot=false"
