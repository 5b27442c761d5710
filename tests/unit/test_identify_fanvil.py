"""Fanvil identification: its User-Agents and the file names its phones ask for at boot."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from provisiond.provisioning.vendors import load_vendor

VENDOR_TOML = Path(__file__).resolve().parents[2] / "phone_templates" / "fanvil" / "vendor.toml"

# User-Agents of the other vendors (docs: reference/vendors.md); Fanvil must not claim them.
FOREIGN_USER_AGENTS = (
    "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
    "Panasonic_KX-UT113/01.133 (0080f0c8c381)",
    "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
)


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Fanvil description, loaded (and validated) by the real loader."""
    return load_vendor(VENDOR_TOML)


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware", "mac"),
    [
        ("Fanvil X4 2.10.2.6887 0c383e07e16c", "X4", "2.10.2.6887", "0c383e07e16c"),
        ("Fanvil X4 2.10.2.6887 0C383E07E16C", "X4", "2.10.2.6887", "0c383e07e16c"),
        ("Fanvil X3S 2.10.2.6887 0c:38:3e:07:e1:6c", "X3S", "2.10.2.6887", "0c383e07e16c"),
        ("Fanvil X6U 2.12.16.17 0c383e2cd782", "X6U", "2.12.16.17", "0c383e2cd782"),
        ("Fanvil X6U Pro 0.0.10 0c383e2cd782", "X6U Pro", "0.0.10", "0c383e2cd782"),
        ("Fanvil X5U-V2 2.12.16.17 0c383e557eb1", "X5U-V2", "2.12.16.17", "0c383e557eb1"),
    ],
)
def test_user_agent(
    vendor: VendorSpec, user_agent: str, model: str, firmware: str, mac: str
) -> None:
    """Model, firmware and MAC come out of every Fanvil User-Agent form."""
    info = parse_user_agent([vendor], user_agent)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        "fanvil",
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize("user_agent", [*FOREIGN_USER_AGENTS, "Fanvil", "Mozilla/5.0"])
def test_other_user_agents_are_not_fanvil(vendor: VendorSpec, user_agent: str) -> None:
    """Another vendor's (or a browser's) User-Agent is not taken for a Fanvil."""
    assert parse_user_agent([vendor], user_agent) is None


@pytest.mark.parametrize(
    ("path", "kind", "mac", "family"),
    [
        # Model common files, three generations of names; the family is the catalogue's.
        ("f0X4hw1.100.cfg", FileKind.COMMON, None, "X4"),
        ("f0X3shw1.100.cfg", FileKind.COMMON, None, "X3s"),
        ("F0X6Uhw2.0.cfg", FileKind.COMMON, None, "X6U"),
        ("F0V00X300000.cfg", FileKind.COMMON, None, "X3"),
        ("F0V00X5S0000.cfg", FileKind.COMMON, None, "X5S"),
        ("F0000X600000.cfg", FileKind.COMMON, None, "X6"),
        ("X4.cfg", FileKind.COMMON, None, "X4"),
        ("x6u.cfg", FileKind.COMMON, None, "x6u"),
        # The per-MAC file, in any case.
        ("0c383e07e16c.cfg", FileKind.DEVICE, "0c383e07e16c", None),
        ("0C383E07E16C.cfg", FileKind.DEVICE, "0c383e07e16c", None),
        ("0c383E07e16C.CFG", FileKind.DEVICE, "0c383e07e16c", None),
        # Firmware images.
        ("x42.14.0.7386T20210730173312.z", FileKind.FIRMWARE, None, None),
    ],
)
def test_boot_file_names(
    vendor: VendorSpec, path: str, kind: FileKind, mac: str | None, family: str | None
) -> None:
    """Each name a Fanvil asks for matches exactly one file spec, with its captures."""
    matches = match_path([vendor], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, family)]


def test_firmware_capture(vendor: VendorSpec) -> None:
    """A firmware request names the file to serve from the firmware store."""
    (found,) = match_path([vendor], "x42.14.0.7386T20210730173312.z")
    assert found.groups == {"file": "x42.14.0.7386T20210730173312.z"}


@pytest.mark.parametrize(
    "path",
    [
        "000000000000.cfg",  # Polycom's common file, never a Fanvil device
        "0c383e07e16c.xml",
        "0c383e07e16.cfg",
        "0c383e07e16cc.cfg",
        "0c:38:3e:07:e1:6c.cfg",
        "cfg0c383e07e16c.xml",
        "y000000000066.cfg",
        "f0X4hw1.100.cfg.bak",
        "../0c383e07e16c.cfg",
        "fanvil/0c383e07e16c.cfg",
        "0c383e07e16c.cfg.z.exe",
    ],
)
def test_other_names_are_not_fanvil(vendor: VendorSpec, path: str) -> None:
    """Names that are not Fanvil's (or are malformed) match nothing."""
    assert match_path([vendor], path) == []


def test_common_file_is_listed_before_the_device_file(vendor: VendorSpec) -> None:
    """Files are listed in boot order: the model common file, then <mac>.cfg."""
    kinds = [spec.kind for spec in vendor.files]
    assert kinds.index(FileKind.COMMON) < kinds.index(FileKind.DEVICE)
    assert vendor.resync_event == "check-sync"
