"""The render cache key holds every input of a rendered file (issue 13, bug 3).

`RenderInputs` is what the resolver builds a context from and what it caches by. Each field
here gets another value; the key must change with every one. A field added to RenderInputs
without an entry in OTHER fails `test_every_field_is_tried`, so nobody can add an input the
cache does not see.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from provisiond.domain.identify import FileKind
from provisiond.provisioning.context import Endpoints, RenderInputs
from provisiond.provisioning.directory import ModelInfo, Phonebook, PhonebookEntry, PhoneDevice
from provisiond.provisioning.vendors import load_vendors
from provisiond.settings import REPO_ROOT, PlatformSettings

VENDORS = {v.id: v for v in load_vendors(REPO_ROOT / "phone_templates")}
T46S = ModelInfo("yealink-t46s", "yealink", "SIP-T46S", "T46S")
DEVICE = PhoneDevice(
    id=7,
    mac="001565aabbcc",
    extension="200",
    model=T46S,
    active=True,
    sip_username="200",
    sip_password_sealed="sealed",
    provisioning_password_sealed=None,
    label=None,
    user_display_name="Mario",
    main_extension="200",
    cli_custom=None,
    site_id=None,
    updated_at=datetime(2026, 1, 1, tzinfo=UTC),
    revision=41,
)
BASE = RenderInputs(
    kind=FileKind.DEVICE,
    vendor=VENDORS["yealink"],
    template="mac.cfg.j2",
    platform=PlatformSettings(),
    platform_revision=3,
    model=T46S,
    device=DEVICE,
    firmware=("", ""),
    endpoints=Endpoints("http://prov.example.test/", "prov.example.test", 69),
)
OTHER: dict[str, Any] = {
    "kind": FileKind.DEVICE_BOOT,
    "vendor": VENDORS["snom"],
    "template": "other.j2",
    # A new platform always comes with a new revision (the directory bumps it on reload);
    # the key follows the revision, so the pair is what is tried here.
    "platform": None,
    "platform_revision": 4,
    "model": ModelInfo("yealink-t48s", "yealink", "SIP-T48S", "T48S"),
    "device": dataclasses.replace(DEVICE, revision=42),
    "firmware": ("http://prov.example.test/fw.rom", "66.86.0.20"),
    "endpoints": Endpoints("http://other.example.test/", "other.example.test", 69),
    # The phone book stands in by its revision (every entry change makes a new one).
    "phonebook": Phonebook(5, (PhonebookEntry("Anna", "202"),)),
}


def test_every_field_is_tried() -> None:
    assert set(OTHER) == {f.name for f in dataclasses.fields(RenderInputs)}


@pytest.mark.parametrize("name", [n for n, v in OTHER.items() if v is not None])
def test_each_input_moves_the_key(name: str) -> None:
    changed = dataclasses.replace(BASE, **{name: OTHER[name]})
    assert changed.key() != BASE.key()


def test_a_platform_change_moves_the_key_through_its_revision() -> None:
    platform = PlatformSettings(ntp_server="ntp.other.test")
    assert dataclasses.replace(BASE, platform=platform, platform_revision=4).key() != BASE.key()


def test_equal_inputs_give_equal_keys_and_contexts() -> None:
    twin = dataclasses.replace(BASE, device=dataclasses.replace(DEVICE))
    assert twin.key() == BASE.key()
    assert twin.context(str.upper) == BASE.context(str.upper)
