"""Htek identification: its User-Agents and the file names its phones ask for at boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from provisiond.provisioning.vendors import load_vendor

VENDOR_TOML = Path(__file__).resolve().parents[2] / "phone_templates" / "htek" / "vendor.toml"

# User-Agents of the other vendors (docs: reference/vendors.md); Htek must not claim them.
FOREIGN_USER_AGENTS = (
    "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "Fanvil X4 2.10.2.6887 0c383e07e16c",
    "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
    "Panasonic_KX-UT113/01.133 (0080f0c8c381)",
)


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Htek description, loaded (and validated) by the real loader."""
    return load_vendor(VENDOR_TOML)


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware", "mac"),
    [
        ("Htek UC926 2.0.4.2 00:1f:c1:00:00:00", "UC926", "2.0.4.2", "001fc1000000"),
        ("Htek UC924 2.0.4.4.58 00:1F:C1:1C:22:A9", "UC924", "2.0.4.4.58", "001fc11c22a9"),
        ("Htek UC926E 2.0.4.6.41 001fc11c22aa", "UC926E", "2.0.4.6.41", "001fc11c22aa"),
    ],
)
def test_user_agent(
    vendor: VendorSpec, user_agent: str, model: str, firmware: str, mac: str
) -> None:
    """Model, firmware and MAC come out of every Htek User-Agent form."""
    info = parse_user_agent([vendor], user_agent)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        "htek",
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize("user_agent", [*FOREIGN_USER_AGENTS, "Htek", "Mozilla/5.0"])
def test_other_user_agents_are_not_htek(vendor: VendorSpec, user_agent: str) -> None:
    """Another vendor's (or a browser's) User-Agent is not taken for an Htek."""
    assert parse_user_agent([vendor], user_agent) is None


@pytest.mark.parametrize(
    ("path", "kind", "mac", "family"),
    [
        ("cfg0010.xml", FileKind.COMMON, None, "0010"),
        ("cfg0012.xml", FileKind.COMMON, None, "0012"),
        ("CFG0012.XML", FileKind.COMMON, None, "0012"),
        ("cfg001fc11c22a9.xml", FileKind.DEVICE, "001fc11c22a9", None),
        ("cfg001FC11C22A9.xml", FileKind.DEVICE, "001fc11c22a9", None),
        ("fw926.rom", FileKind.FIRMWARE, None, None),
    ],
)
def test_boot_file_names(
    vendor: VendorSpec, path: str, kind: FileKind, mac: str | None, family: str | None
) -> None:
    """Each name an Htek asks for matches exactly one file spec, with its captures."""
    matches = match_path([vendor], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, family)]


@pytest.mark.parametrize(
    "path",
    [
        "cfg000000000000.xml",
        "cfg001fc11c22a9",
        "cfg001fc11c22a.xml",
        "cfg.xml",
        "cfg00100.xml",
        "cfg010.xml",
        "001fc11c22a9.xml",
        "cfgUC926.xml",
        "htek/cfg0010.xml",
    ],
)
def test_other_names_are_not_htek(vendor: VendorSpec, path: str) -> None:
    """Names that are not Htek's (or are malformed) match nothing."""
    assert match_path([vendor], path) == []


def test_common_file_is_listed_before_the_device_file(vendor: VendorSpec) -> None:
    """Files are listed in boot order: cfg<family>.xml, then cfg<mac>.xml."""
    kinds = [spec.kind for spec in vendor.files]
    assert kinds.index(FileKind.COMMON) < kinds.index(FileKind.DEVICE)
