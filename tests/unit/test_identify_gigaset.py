"""Gigaset identification: its User-Agents and the file names its bases ask for at boot."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from provisiond.domain.identify import FileKind
from tests import identify_cases as cases

VENDOR = "gigaset"

# (User-Agent, model, firmware, MAC)
USER_AGENTS = [
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
]

# Another vendor's (or a browser's) User-Agent is not taken for a Gigaset.
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Gigaset", "Mozilla/5.0"]

# Each name a Gigaset asks for: (path, kind, MAC, family); Gigaset names carry no family.
BOOT_FILES = [
    # The per-MAC file: the case the firmware uses is unverified, so any case works.
    ("7C2F80E0D605.xml", FileKind.DEVICE, "7c2f80e0d605", None),
    ("7c2f80e0d605.xml", FileKind.DEVICE, "7c2f80e0d605", None),
    ("7c2F80e0D605.XML", FileKind.DEVICE, "7c2f80e0d605", None),
    ("einstein-albert-V2.17.2+build.b14e3f1.update.bin", FileKind.FIRMWARE, None, None),
]

# Names that are not Gigaset's (or are malformed): they match nothing.
NOT_GIGASET = [
    "000000000000.xml",
    "7C2F80E0D605.cfg",
    "7C2F80E0D60.xml",
    "7C:2F:80:E0:D6:05.xml",
    "cfg7c2f80e0d605.xml",
    "N870.xml",
    "../7C2F80E0D605.xml",
]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_GIGASET)
)
def test_identification(check: Callable[[], None]) -> None:
    """Every row of the tables above holds against the real Gigaset description."""
    check()


def test_resync_event() -> None:
    """Gigaset re-reads its file on a check-sync NOTIFY without rebooting."""
    assert cases.load(VENDOR).resync_event == "check-sync;reboot=false"
