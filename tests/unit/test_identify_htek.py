"""Htek identification: its User-Agents and the file names its phones ask for at boot."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisiond.domain.identify import FileKind
from tests import identify_cases as cases

VENDOR = "htek"

# (User-Agent, model, firmware, MAC)
USER_AGENTS = [
    ("Htek UC926 2.0.4.2 00:1f:c1:00:00:00", "UC926", "2.0.4.2", "001fc1000000"),
    ("Htek UC924 2.0.4.4.58 00:1F:C1:1C:22:A9", "UC924", "2.0.4.4.58", "001fc11c22a9"),
    ("Htek UC926E 2.0.4.6.41 001fc11c22aa", "UC926E", "2.0.4.6.41", "001fc11c22aa"),
]

# Another vendor's (or a browser's) User-Agent is not taken for an Htek.
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Htek", "Mozilla/5.0"]

# Each name an Htek asks for: (path, kind, MAC, family)
BOOT_FILES = [
    ("cfg0010.xml", FileKind.COMMON, None, "0010"),
    ("cfg0012.xml", FileKind.COMMON, None, "0012"),
    ("CFG0012.XML", FileKind.COMMON, None, "0012"),
    ("cfg001fc11c22a9.xml", FileKind.DEVICE, "001fc11c22a9", None),
    ("cfg001FC11C22A9.xml", FileKind.DEVICE, "001fc11c22a9", None),
    ("fw926.rom", FileKind.FIRMWARE, None, None),
]

# Names that are not Htek's (or are malformed): they match nothing.
NOT_HTEK = [
    "cfg000000000000.xml",
    "cfg001fc11c22a9",
    "cfg001fc11c22a.xml",
    "cfg.xml",
    "cfg00100.xml",
    "cfg010.xml",
    "001fc11c22a9.xml",
    "cfgUC926.xml",
    "htek/cfg0010.xml",
]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_HTEK)
)
def test_identification(check: Callable[[], None]) -> None:
    """Every row of the tables above holds against the real Htek description."""
    check()


def test_common_file_is_listed_before_the_device_file() -> None:
    """Files are listed in boot order: cfg<family>.xml, then cfg<mac>.xml."""
    kinds = [spec.kind for spec in cases.load(VENDOR).files]
    assert kinds.index(FileKind.COMMON) < kinds.index(FileKind.DEVICE)
