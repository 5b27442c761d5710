"""Panasonic identification: its User-Agents and the file names its phones ask for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisiond.domain.identify import FileKind
from tests import identify_cases as cases

VENDOR = "panasonic"

# (User-Agent, model without its regional suffix, firmware, MAC)
USER_AGENTS = [
    ("Panasonic_KX-UT113/01.133 (0080f0c8c381)", "KX-UT113", "01.133", "0080f0c8c381"),
    ("Panasonic_KX-UT133/01.133 (0080F0C8C382)", "KX-UT133", "01.133", "0080f0c8c382"),
    ("Panasonic_KX-HDV230NE/06.001 (0080f0c8c383)", "KX-HDV230", "06.001", "0080f0c8c383"),
    ("Panasonic_KX-TGP600/11.09 (0080f0c8c384)", "KX-TGP600", "11.09", "0080f0c8c384"),
    ("Panasonic_KX-HDV130/06.001", "KX-HDV130", "06.001", None),
]

# Another vendor's (or a browser's) User-Agent is not taken for a Panasonic.
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Panasonic", "Mozilla/5.0"]

# Each name a Panasonic asks for: (path, kind, MAC, family)
BOOT_FILES = [
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
]

# Names that are not Panasonic's (or are malformed): they match nothing.
NOT_PANASONIC = [
    "Config000000000000.cfg",
    "0080f0c8c381.cfg",
    "Config0080F0C8C38.cfg",
    "ConfigKX.cfg",
    "KX-.cfg",
    "KX-HDV230.xml",
    "ConfigCom.cfg.bak",
    "Panasonic/Config0080F0C8C381.cfg",
]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_PANASONIC)
)
def test_identification(check: Callable[[], None]) -> None:
    """Every row of the tables above holds against the real Panasonic description."""
    check()


def test_every_rendered_file_uses_crlf() -> None:
    """Panasonic requires CR LF line ends in every configuration file (the phone book is an
    XML document for the XML application, where line ends do not matter)."""
    configs = [s for s in cases.load(VENDOR).files if s.template and s.kind != "phonebook"]
    assert {spec.line_ending for spec in configs} == {"crlf"}
