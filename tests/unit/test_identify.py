"""Identification by User-Agent and by requested file name, for the vendors described in
reference/vendors.md (Yealink, Polycom, Cisco SPA/MPP, Cisco 79xx/SEP, Grandstream, Snom).

Tables run against the real vendor descriptions in phone_templates/.
"""

from __future__ import annotations

import re

import pytest

from provisiond.domain.identify import (
    FileKind,
    FileSpec,
    VendorSpec,
    match_path,
    normalise_captured_mac,
    parse_user_agent,
)
from tests.template_checks import load

VENDOR_IDS = ("cisco_sep", "cisco_spa", "grandstream", "polycom", "snom", "yealink")


@pytest.fixture(scope="module")
def vendors() -> tuple[VendorSpec, ...]:
    """The six vendors, in the loader's order (sorted by id)."""
    return tuple(load(vendor_id) for vendor_id in VENDOR_IDS)


UA_TABLE = [
    # (User-Agent, vendor, model, firmware, mac)
    ("Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37", "yealink", "T46G", "28.72.0.1",
     "0015654aa937"),
    ("Yealink SIP-T56A 58.80.0.25 001565f429a4", "yealink", "T56A", "58.80.0.25",
     "001565f429a4"),
    ("Yealink W80B 103.87.0.10 24:9a:d8:d1:a6:31", "yealink", "W80B", "103.87.0.10",
     "249ad8d1a631"),
    ("Yealink SIP-T46S 66.86.0.15 00:15:65:AA:BB:CC", "yealink", "T46S", "66.86.0.15",
     "001565aabbcc"),
    ("FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application", "polycom", "VVX_400",
     "4.1.4.7430", None),
    ("FileTransport PolycomSoundPointIP-SPIP_335-UA/3.2.1.0078", "polycom", "SPIP_335",
     "3.2.1.0078", None),
    ("Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)", "cisco_spa", "SPA508G", "7.4.8a",
     "0002fdff2103"),
    ("Linksys/SPA-942-6.1.5(a) (88019FA42805)", "cisco_spa", "SPA-942", "6.1.5(a)",
     "88019fa42805"),
    ("Cisco-CP-8841-3PCC/11.0 (00562b043615)", "cisco_spa", "CP-8841-3PCC", "11.0",
     "00562b043615"),
    ("Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872", "grandstream", "GXP2135",
     "1.0.7.97", "000b828aa872"),
    ("Grandstream Model HW GXP2135 V2.2A SW 1.0.7.97 DevId 000b828aa872", "grandstream",
     "GXP2135", "1.0.7.97", "000b828aa872"),
    ("Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24 "
     "SXM:0 UXM:0)", "snom", "D785", "10.1.33.33", "000413922d24"),
    ("Mozilla/4.0 (compatible; snom320-SIP 8.7.3.25 1.1.3-s)", "snom", "320", "8.7.3.25", None),
]  # fmt: skip


@pytest.mark.parametrize(("ua", "vendor_id", "model", "firmware", "mac"), UA_TABLE)
def test_parse_user_agent(
    vendors: tuple[VendorSpec, ...],
    ua: str,
    vendor_id: str,
    model: str,
    firmware: str,
    mac: str | None,
) -> None:
    info = parse_user_agent(vendors, ua)
    assert info is not None
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        vendor_id,
        model,
        firmware,
        mac,
    )


@pytest.mark.parametrize(
    "ua",
    [
        None,
        "",
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        "curl/8.5.0",
        "Fanvil X4 2.10.2.6887 0c383e07e16c",
        "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
        "Yealink",
    ],
)
def test_unknown_user_agents(vendors: tuple[VendorSpec, ...], ua: str | None) -> None:
    assert parse_user_agent(vendors, ua) is None


# (path, [(vendor, kind, mac, family, other groups)]) in vendor order (sorted by id).
PATH_TABLE: list[tuple[str, list[tuple[str, FileKind, str | None, str | None, dict[str, str]]]]]
PATH_TABLE = [
    # Yealink
    ("001565AABBCC.boot", [("yealink", FileKind.DEVICE_BOOT, "001565aabbcc", None, {})]),
    ("001565aabbcc.boot", [("yealink", FileKind.DEVICE_BOOT, "001565aabbcc", None, {})]),
    ("y000000000000.boot", [("yealink", FileKind.COMMON, None, None, {})]),
    ("y000000000000.cfg", [("yealink", FileKind.COMMON, None, None, {})]),
    ("y000000000066.cfg", [("yealink", FileKind.COMMON, None, "66", {})]),
    ("y000000000028.cfg", [("yealink", FileKind.COMMON, None, "28", {})]),
    ("y000000000103.cfg", [("yealink", FileKind.COMMON, None, "103", {})]),
    ("001565aabbcc-local.cfg", [("yealink", FileKind.UPLOAD, "001565aabbcc", None, {})]),
    ("001565AABBCC-contact.xml", [("yealink", FileKind.UPLOAD, "001565aabbcc", None, {})]),
    ("001565aabbcc_Security.enc", [("yealink", FileKind.OPTIONAL, None, None, {})]),
    ("y000000000066_Security.enc", [("yealink", FileKind.OPTIONAL, None, None, {})]),
    ("T46S-66.86.0.15.rom",
     [("yealink", FileKind.FIRMWARE, None, None, {"file": "T46S-66.86.0.15.rom"})]),
    # The multi-vendor name: Polycom's master file and Yealink's device file.
    ("001565aabbcc.cfg", [("polycom", FileKind.DEVICE_BOOT, "001565aabbcc", None, {}),
                          ("yealink", FileKind.DEVICE, "001565aabbcc", None, {})]),
    ("001565AABBCC.cfg", [("polycom", FileKind.DEVICE_BOOT, "001565aabbcc", None, {}),
                          ("yealink", FileKind.DEVICE, "001565aabbcc", None, {})]),
    # Polycom; 000000000000 is never a device MAC.
    ("000000000000.cfg", [("polycom", FileKind.COMMON, None, None, {})]),
    ("0004f2aabbcc-user.cfg", [("polycom", FileKind.DEVICE, "0004f2aabbcc", None, {})]),
    ("common.cfg", [("polycom", FileKind.COMMON, None, None, {})]),
    ("0004f2aabbcc-license.cfg", [("polycom", FileKind.OPTIONAL, None, None, {})]),
    ("0004F2AABBCC-directory.xml", [("polycom", FileKind.PHONEBOOK, "0004f2aabbcc", None, {})]),
    ("000000000000-directory.xml", [("polycom", FileKind.OPTIONAL, None, None, {})]),
    ("0004f2aabbcc-phone.cfg", [("polycom", FileKind.UPLOAD, "0004f2aabbcc", None, {})]),
    ("0004f2aabbcc-web.cfg", [("polycom", FileKind.UPLOAD, "0004f2aabbcc", None, {})]),
    ("0004f2aabbcc-boot.log", [("polycom", FileKind.UPLOAD, "0004f2aabbcc", None, {})]),
    ("0004f2aabbcc-app.log", [("polycom", FileKind.UPLOAD, "0004f2aabbcc", None, {})]),
    ("sip.ld", [("polycom", FileKind.FIRMWARE, None, None, {"file": "sip.ld"})]),
    ("3111-46135-002.sip.ld",
     [("polycom", FileKind.FIRMWARE, None, None, {"file": "3111-46135-002.sip.ld"})]),
    # Cisco SPA / MPP
    ("spa508G.cfg", [("cisco_spa", FileKind.COMMON, None, "spa508G", {})]),
    ("spa942.cfg", [("cisco_spa", FileKind.COMMON, None, "spa942", {})]),
    # MPP: the factory rule /$PSN.xml ($PSN "8841-3PCC", the catalogue family) and the $PN form.
    ("8841-3PCC.xml", [("cisco_spa", FileKind.COMMON, None, "8841-3PCC", {})]),
    ("7841-3PCC.xml", [("cisco_spa", FileKind.COMMON, None, "7841-3PCC", {})]),
    ("CP-8841-3PCC.xml", [("cisco_spa", FileKind.COMMON, None, "8841-3PCC", {})]),
    ("CP-7841-3PCC.xml", [("cisco_spa", FileKind.COMMON, None, "7841-3PCC", {})]),
    ("0002fdff2103.xml", [("cisco_spa", FileKind.DEVICE, "0002fdff2103", None, {})]),
    ("0002FDFF2103.xml", [("cisco_spa", FileKind.DEVICE, "0002fdff2103", None, {})]),
    ("0002fdff2103-report.xml", [("cisco_spa", FileKind.UPLOAD, "0002fdff2103", None, {})]),
    ("spa50x-30x-7-6-2e.bin",
     [("cisco_sep", FileKind.FIRMWARE, None, None, {"file": "spa50x-30x-7-6-2e.bin"}),
      ("cisco_spa", FileKind.FIRMWARE, None, None, {"file": "spa50x-30x-7-6-2e.bin"}),
      ("grandstream", FileKind.FIRMWARE, None, None, {"file": "spa50x-30x-7-6-2e.bin"}),
      ("snom", FileKind.FIRMWARE, None, None, {"file": "spa50x-30x-7-6-2e.bin"})]),
    # Cisco 79x0 SIP and SEP
    ("OS79XX.TXT", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("SIPDefault.cnf", [("cisco_sep", FileKind.COMMON, None, None, {})]),
    ("SIP00562B043615.cnf", [("cisco_sep", FileKind.DEVICE, "00562b043615", None, {})]),
    ("SIP00562b043615.cnf", [("cisco_sep", FileKind.DEVICE, "00562b043615", None, {})]),
    ("RINGLIST.DAT", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("dialplan.xml", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("CTLSEP00562B043615.tlv", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("ITLSEP00562B043615.tlv", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("ITLFile.tlv", [("cisco_sep", FileKind.OPTIONAL, None, None, {})]),
    ("SEP00562B043615.cnf.xml", [("cisco_sep", FileKind.DEVICE, "00562b043615", None, {})]),
    ("sep00562b043615.cnf.xml", [("cisco_sep", FileKind.DEVICE, "00562b043615", None, {})]),
    ("XMLDefault.cnf.xml", [("cisco_sep", FileKind.COMMON, None, None, {})]),
    ("SIP42.9-4-2SR3-1S.loads",
     [("cisco_sep", FileKind.FIRMWARE, None, None, {"file": "SIP42.9-4-2SR3-1S.loads"}),
      ("cisco_spa", FileKind.FIRMWARE, None, None, {"file": "SIP42.9-4-2SR3-1S.loads"})]),
    # Grandstream
    ("cfg000b828aa872", [("grandstream", FileKind.OPTIONAL, None, None, {})]),
    ("cfg000b828aa872.xml", [("grandstream", FileKind.DEVICE, "000b828aa872", None, {})]),
    ("cfgabc123456def.xml", [("grandstream", FileKind.DEVICE, "abc123456def", None, {})]),
    ("cfggxp2135.xml", [("grandstream", FileKind.COMMON, None, "gxp2135", {})]),
    ("cfggrp2614.xml", [("grandstream", FileKind.COMMON, None, "grp2614", {})]),
    ("cfg.xml", [("grandstream", FileKind.COMMON, None, None, {})]),
    # Snom
    ("snomD785.htm", [("snom", FileKind.COMMON, None, "D785", {})]),
    ("snomD785-000413922D24.htm", [("snom", FileKind.DEVICE, "000413922d24", None, {})]),
    ("snomd785-000413922d24.htm", [("snom", FileKind.DEVICE, "000413922d24", None, {})]),
    ("snomD785-firmware.xml", [("snom", FileKind.COMMON, None, "D785", {})]),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expected"), PATH_TABLE)
def test_match_path(
    vendors: tuple[VendorSpec, ...],
    path: str,
    expected: list[tuple[str, FileKind, str | None, str | None, dict[str, str]]],
) -> None:
    got = [(m.vendor.id, m.spec.kind, m.mac, m.family, m.groups) for m in match_path(vendors, path)]
    assert got == expected


@pytest.mark.parametrize(
    "path",
    [
        "",
        "index.html",
        "001565aabbc.cfg",  # 11 hex digits
        "001565aabbccd.cfg",  # 13
        "00156gaabbcc.cfg",  # not hex
        "00:15:65:aa:bb:cc.cfg",  # separators are not part of file names
        "001565aabbcc.cfg.bak",
        "x/001565aabbcc.cfg",  # fullmatch: no directory prefix
        "ffffffffffff.boot",
        "000000000000.boot",
        "y00000000066.cfg",  # 11 digits
        "cfg000b828aa87.xml",
        "SEP00562B043615.cnf",
        "snomD785-000413922D2.htm",
        "firmware.rom.txt",
    ],
)
def test_paths_that_match_nothing(vendors: tuple[VendorSpec, ...], path: str) -> None:
    assert match_path(vendors, path) == []


def test_each_documented_name_matches_one_spec_per_vendor(
    vendors: tuple[VendorSpec, ...],
) -> None:
    # A vendor's own patterns must be disjoint, or the resolver could not pick a spec.
    for path, _ in PATH_TABLE:
        ids = [m.vendor.id for m in match_path(vendors, path)]
        assert len(ids) == len(set(ids)), path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("001565aabbcc", "001565aabbcc"),
        ("001565AABBCC", "001565aabbcc"),
        ("00:15:65:AA:bb:cc", "001565aabbcc"),
        ("00-15-65-aa-bb-cc", "001565aabbcc"),
        ("0015.65aa.bbcc", "001565aabbcc"),
        ("001565aabbc", None),
        ("001565aabbccdd", None),
        ("00156gaabbcc", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_captured_mac(text: str | None, expected: str | None) -> None:
    assert normalise_captured_mac(text) == expected


def _vendor(vendor_id: str, *patterns: tuple[str, FileKind]) -> VendorSpec:
    """A minimal in-memory vendor for the pure-function edge cases."""
    files = tuple(FileSpec(pattern=re.compile(p, re.IGNORECASE), kind=k) for p, k in patterns)
    return VendorSpec(
        id=vendor_id,
        title=vendor_id,
        dhcp_options=(66,),
        resync_event="check-sync",
        user_agents=(re.compile(r"^(?P<model>X\d) (?P<mac>\S+)"),),
        files=files,
    )


def test_groups_hold_other_captures_only() -> None:
    vendor = _vendor(
        "v",
        (r"(?P<family>m\d)/(?P<mac>[0-9a-f]{12})-(?P<file>\w+)(?P<unused>\.x)?", FileKind.COMMON),
    )
    (match,) = match_path([vendor], "M7/001565AABBCC-log")
    assert (match.mac, match.family, match.groups) == ("001565aabbcc", "M7", {"file": "log"})


def test_vendor_order_is_kept_and_every_spec_listed() -> None:
    first = _vendor("b", (r"(?P<mac>[0-9a-f]{12})\.cfg", FileKind.DEVICE))
    second = _vendor("a", (r"[0-9a-f]{12}\.cfg", FileKind.OPTIONAL), (r".*\.cfg", FileKind.COMMON))
    matches = match_path([first, second], "001565aabbcc.cfg")
    assert [(m.vendor.id, m.spec.kind) for m in matches] == [
        ("b", FileKind.DEVICE),
        ("a", FileKind.OPTIONAL),
        ("a", FileKind.COMMON),
    ]


def test_user_agent_with_an_unusable_mac_keeps_the_rest() -> None:
    info = parse_user_agent([_vendor("v")], "X1 not-a-mac")
    assert info is not None
    assert (info.model, info.firmware, info.mac) == ("X1", None, None)
