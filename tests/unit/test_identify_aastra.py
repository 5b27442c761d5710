"""Aastra/Mitel identification: its User-Agents and the file names its phones ask for."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisiond.domain.identify import FileKind, match_path
from tests import identify_cases as cases

VENDOR = "aastra"

# (User-Agent, model, firmware, MAC): Aastra and Mitel both.
USER_AGENTS = [
    ("Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP", "6731i", "3.2.0.70", "00085d237429"),
    ("Aastra6757i MAC:00-08-5d-23-74-2a V:3.3.1.4322-SIP", "6757i", "3.3.1.4322", "00085d23742a"),
    ("Aastra 6869i MAC:00-08-5D-23-74-2B V:4.2.0.2023-SIP", "6869i", "4.2.0.2023", "00085d23742b"),
    ("Mitel6940 MAC:14-00-E9-1B-45-24 V:6.4.0.140-SIP", "6940", "6.4.0.140", "1400e91b4524"),
]

# Another vendor's (or a browser's) User-Agent is not taken for an Aastra.
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Aastra", "Mozilla/5.0"]

# Each name an Aastra asks for: (path, kind, MAC, family)
BOOT_FILES = [
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
]

# Names that are not Aastra's (or are malformed): they match nothing.
NOT_AASTRA = [
    "000000000000.cfg",
    "mitel.cfg.bak",
    "00085D23742.cfg",
    "00-08-5D-23-74-29.cfg",
    "00085D237429.xml",
    "673.cfg",
    "67311.cfg",
    "aastra.cfg/../x",
    "lang_it.txt.exe",
]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_AASTRA)
)
def test_identification(check: Callable[[], None]) -> None:
    """Every row of the tables above holds against the real Aastra description."""
    check()


def test_firmware_capture() -> None:
    """Firmware and language requests name the file to serve from the firmware store."""
    vendor = cases.load(VENDOR)
    assert match_path([vendor], "6940.st")[0].groups == {"file": "6940.st"}
    assert match_path([vendor], "lang_de.txt")[0].groups == {"file": "lang_de.txt"}


def test_files_are_listed_in_boot_order() -> None:
    """aastra.cfg and startup.cfg, then <model>.cfg, then <MAC>.cfg."""
    vendor = cases.load(VENDOR)
    order = [
        match_path([vendor], name)[0].spec
        for name in ("aastra.cfg", "startup.cfg", "6731i.cfg", "00085D237429.cfg")
    ]
    assert order == [spec for spec in vendor.files if spec in order]
