"""Fanvil identification: its User-Agents and the file names its phones ask for at boot."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisiond.domain.identify import FileKind, match_path
from tests import identify_cases as cases

VENDOR = "fanvil"

# (User-Agent, model, firmware, MAC)
USER_AGENTS = [
    ("Fanvil X4 2.10.2.6887 0c383e07e16c", "X4", "2.10.2.6887", "0c383e07e16c"),
    ("Fanvil X4 2.10.2.6887 0C383E07E16C", "X4", "2.10.2.6887", "0c383e07e16c"),
    ("Fanvil X3S 2.10.2.6887 0c:38:3e:07:e1:6c", "X3S", "2.10.2.6887", "0c383e07e16c"),
    ("Fanvil X6U 2.12.16.17 0c383e2cd782", "X6U", "2.12.16.17", "0c383e2cd782"),
    ("Fanvil X6U Pro 0.0.10 0c383e2cd782", "X6U Pro", "0.0.10", "0c383e2cd782"),
    ("Fanvil X5U-V2 2.12.16.17 0c383e557eb1", "X5U-V2", "2.12.16.17", "0c383e557eb1"),
]

# Another vendor's (or a browser's) User-Agent is not taken for a Fanvil.
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Fanvil", "Mozilla/5.0"]

# Each name a Fanvil asks for: (path, kind, MAC, family)
BOOT_FILES = [
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
]

# Names that are not Fanvil's (or are malformed): they match nothing.
NOT_FANVIL = [
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
]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_FANVIL)
)
def test_identification(check: Callable[[], None]) -> None:
    """Every row of the tables above holds against the real Fanvil description."""
    check()


def test_firmware_capture() -> None:
    """A firmware request names the file to serve from the firmware store."""
    (found,) = match_path([cases.load(VENDOR)], "x42.14.0.7386T20210730173312.z")
    assert found.groups == {"file": "x42.14.0.7386T20210730173312.z"}


def test_common_file_is_listed_before_the_device_file() -> None:
    """Files are listed in boot order: the model common file, then <mac>.cfg."""
    vendor = cases.load(VENDOR)
    kinds = [spec.kind for spec in vendor.files]
    assert kinds.index(FileKind.COMMON) < kinds.index(FileKind.DEVICE)
    assert vendor.resync_event == "check-sync"
