"""Panasonic identification: its User-Agents and the file names its phones ask for."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from provisiond.provisioning.vendors import load_vendor

VENDOR_TOML = Path(__file__).resolve().parents[2] / "phone_templates" / "panasonic" / "vendor.toml"

# User-Agents of the other vendors (docs: reference/vendors.md); Panasonic must not claim them.
FOREIGN_USER_AGENTS = (
    "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "Fanvil X4 2.10.2.6887 0c383e07e16c",
    "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
    "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
)


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Panasonic description, loaded (and validated) by the real loader."""
    return load_vendor(VENDOR_TOML)


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware", "mac"),
    [
        ("Panasonic_KX-UT113/01.133 (0080f0c8c381)", "KX-UT113", "01.133", "0080f0c8c381"),
        ("Panasonic_KX-UT133/01.133 (0080F0C8C382)", "KX-UT133", "01.133", "0080f0c8c382"),
        ("Panasonic_KX-HDV230NE/06.001 (0080f0c8c383)", "KX-HDV230", "06.001", "0080f0c8c383"),
        ("Panasonic_KX-TGP600/11.09 (0080f0c8c384)", "KX-TGP600", "11.09", "0080f0c8c384"),
        ("Panasonic_KX-HDV130/06.001", "KX-HDV130", "06.001", None),
    ],
)
def test_user_agent(
    vendor: VendorSpec, user_agent: str, model: str, firmware: str, mac: str | None
) -> None:
    """Model (without regional suffix), firmware and MAC from each Panasonic User-Agent."""
    info = parse_user_agent([vendor], user_agent)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        "panasonic",
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize("user_agent", [*FOREIGN_USER_AGENTS, "Panasonic", "Mozilla/5.0"])
def test_other_user_agents_are_not_panasonic(vendor: VendorSpec, user_agent: str) -> None:
    """Another vendor's (or a browser's) User-Agent is not taken for a Panasonic."""
    assert parse_user_agent([vendor], user_agent) is None


@pytest.mark.parametrize(
    ("path", "kind", "mac", "family"),
    [
        # Pre-provisioning file {MODEL}.cfg, with or without a regional suffix.
        ("KX-HDV230.cfg", FileKind.COMMON, None, "KX-HDV230"),
        ("KX-HDV130NE.cfg", FileKind.COMMON, None, "KX-HDV130"),
        ("kx-ut113.cfg", FileKind.COMMON, None, "kx-ut113"),
        # The files that file names: standard (per MAC), product and master.
        ("Config0080F0C8C381.cfg", FileKind.DEVICE, "0080f0c8c381", None),
        ("config0080f0c8c381.cfg", FileKind.DEVICE, "0080f0c8c381", None),
        ("Config-0080F0C8C381.cfg", FileKind.DEVICE, "0080f0c8c381", None),
        ("ConfigKX-TGP600.cfg", FileKind.COMMON, None, "KX-TGP600"),
        ("ConfigKX-UT133X.cfg", FileKind.COMMON, None, "KX-UT133"),
        ("ConfigCom.cfg", FileKind.COMMON, None, None),
        ("ConfigCommon.cfg", FileKind.COMMON, None, None),
        ("KX-HDV230_06.001.fw", FileKind.FIRMWARE, None, None),
    ],
)
def test_boot_file_names(
    vendor: VendorSpec, path: str, kind: FileKind, mac: str | None, family: str | None
) -> None:
    """Each name a Panasonic asks for matches exactly one file spec, with its captures."""
    matches = match_path([vendor], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, family)]


@pytest.mark.parametrize(
    "path",
    [
        "Config000000000000.cfg",
        "0080f0c8c381.cfg",
        "Config0080F0C8C38.cfg",
        "ConfigKX.cfg",
        "KX-.cfg",
        "KX-HDV230.xml",
        "ConfigCom.cfg.bak",
        "Panasonic/Config0080F0C8C381.cfg",
    ],
)
def test_other_names_are_not_panasonic(vendor: VendorSpec, path: str) -> None:
    """Names that are not Panasonic's (or are malformed) match nothing."""
    assert match_path([vendor], path) == []


def test_every_rendered_file_uses_crlf(vendor: VendorSpec) -> None:
    """Panasonic requires CR LF line ends in every configuration file."""
    assert {spec.line_ending for spec in vendor.files if spec.template} == {"crlf"}
