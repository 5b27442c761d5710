"""Aastra/Mitel identification: its User-Agents and the file names its phones ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from provisiond.provisioning.vendors import load_vendor

VENDOR_TOML = Path(__file__).resolve().parents[2] / "phone_templates" / "aastra" / "vendor.toml"

# User-Agents of the other vendors (docs: reference/vendors.md); Aastra must not claim them.
FOREIGN_USER_AGENTS = (
    "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "Fanvil X4 2.10.2.6887 0c383e07e16c",
    "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    "Panasonic_KX-UT113/01.133 (0080f0c8c381)",
    "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
)


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Aastra description, loaded (and validated) by the real loader."""
    return load_vendor(VENDOR_TOML)


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware", "mac"),
    [
        (
            "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
            "6731i",
            "3.2.0.70",
            "00085d237429",
        ),
        (
            "Aastra6757i MAC:00-08-5d-23-74-2a V:3.3.1.4322-SIP",
            "6757i",
            "3.3.1.4322",
            "00085d23742a",
        ),
        (
            "Aastra 6869i MAC:00-08-5D-23-74-2B V:4.2.0.2023-SIP",
            "6869i",
            "4.2.0.2023",
            "00085d23742b",
        ),
        (
            "Mitel6940 MAC:14-00-E9-1B-45-24 V:6.4.0.140-SIP",
            "6940",
            "6.4.0.140",
            "1400e91b4524",
        ),
    ],
)
def test_user_agent(
    vendor: VendorSpec, user_agent: str, model: str, firmware: str, mac: str
) -> None:
    """Model, firmware and MAC come out of the Aastra and Mitel User-Agents."""
    info = parse_user_agent([vendor], user_agent)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        "aastra",
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize("user_agent", [*FOREIGN_USER_AGENTS, "Aastra", "Mozilla/5.0"])
def test_other_user_agents_are_not_aastra(vendor: VendorSpec, user_agent: str) -> None:
    """Another vendor's (or a browser's) User-Agent is not taken for an Aastra."""
    assert parse_user_agent([vendor], user_agent) is None


@pytest.mark.parametrize(
    ("path", "kind", "mac", "family"),
    [
        ("aastra.cfg", FileKind.COMMON, None, None),
        ("startup.cfg", FileKind.COMMON, None, None),
        ("AASTRA.CFG", FileKind.COMMON, None, None),
        ("6731i.cfg", FileKind.COMMON, None, "6731i"),
        ("6869I.cfg", FileKind.COMMON, None, "6869I"),
        ("6940.cfg", FileKind.COMMON, None, "6940"),
        ("00085D237429.cfg", FileKind.DEVICE, "00085d237429", None),
        ("00085d237429.cfg", FileKind.DEVICE, "00085d237429", None),
        ("aastra.tuz", FileKind.OPTIONAL, None, None),
        ("startup.tuz", FileKind.OPTIONAL, None, None),
        ("security.tuz", FileKind.OPTIONAL, None, None),
        ("6731i.tuz", FileKind.OPTIONAL, None, None),
        ("00085D237429.tuz", FileKind.OPTIONAL, None, None),
        ("6731i.st", FileKind.FIRMWARE, None, None),
        ("lang_it.txt", FileKind.FIRMWARE, None, None),
    ],
)
def test_boot_file_names(
    vendor: VendorSpec, path: str, kind: FileKind, mac: str | None, family: str | None
) -> None:
    """Each name an Aastra asks for matches exactly one file spec, with its captures."""
    matches = match_path([vendor], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, family)]


def test_firmware_capture(vendor: VendorSpec) -> None:
    """Firmware and language requests name the file to serve from the firmware store."""
    assert match_path([vendor], "6940.st")[0].groups == {"file": "6940.st"}
    assert match_path([vendor], "lang_de.txt")[0].groups == {"file": "lang_de.txt"}


@pytest.mark.parametrize(
    "path",
    [
        "000000000000.cfg",
        "mitel.cfg.bak",
        "00085D23742.cfg",
        "00-08-5D-23-74-29.cfg",
        "00085D237429.xml",
        "673.cfg",
        "67311.cfg",
        "aastra.cfg/../x",
        "lang_it.txt.exe",
    ],
)
def test_other_names_are_not_aastra(vendor: VendorSpec, path: str) -> None:
    """Names that are not Aastra's (or are malformed) match nothing."""
    assert match_path([vendor], path) == []


def test_files_are_listed_in_boot_order(vendor: VendorSpec) -> None:
    """aastra.cfg and startup.cfg, then <model>.cfg, then <MAC>.cfg."""
    order = [
        match_path([vendor], name)[0].spec
        for name in ("aastra.cfg", "startup.cfg", "6731i.cfg", "00085D237429.cfg")
    ]
    assert order == [spec for spec in vendor.files if spec in order]
