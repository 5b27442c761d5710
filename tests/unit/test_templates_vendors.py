"""What every vendor's templates must satisfy, as one test per vendor found by `load_vendors`.

The per-vendor facts (NOTIFY events, DHCP options, one requested name per templated file) are
data in `FACTS`; a vendor added under phone_templates/ fails `test_every_vendor_has_facts`
until it gets its row. The vendor's own keys and values are tested in test_templates_<vendor>.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from provisiond.domain.identify import match_path
from tests.phone_context import catalogue, vendors
from tests.template_checks import VARIANTS, check_every_template


@dataclass(frozen=True, slots=True)
class VendorFacts:
    """What a vendor's description must say, and names its phones request."""

    resync_event: str
    reboot_event: str
    dhcp_options: tuple[int, ...]
    paths: tuple[str, ...]  # one requested name per file spec that renders a template
    user_agents: bool = True  # False: identified by file name only (TFTP phones)


FACTS: dict[str, VendorFacts] = {
    "alcatel": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66,),
        ("config.xml", "config.M3.xml", "config.3C28A620089E.xml"),
    ),
    "avaya": VendorFacts(
        # A NOTIFY makes the phone re-check its files (rebooting only when it must); no
        # NOTIFY reboots it on demand.
        "check-sync",
        "",
        (242, 43),
        ("J100Supgrade.txt", "46xxsettings.txt", "c81feaaabbcc.txt"),
    ),
    "aastra": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66, 43),
        (
            "00085D237429.cfg",
            "aastra.cfg",
            "startup.cfg",
            "6731i.cfg",
            "phonebook/00085d237429.csv",
        ),
    ),
    "cisco_sep": VendorFacts(
        # Most SEP phones take service-control; the action travels in the body.
        "service-control",
        "service-control",
        (150, 66),
        (
            "SIPDefault.cnf",
            "SIP00562B043615.cnf",
            "SEP00562B043615.cnf.xml",
            "XMLDefault.cnf.xml",
            "phonebook/00562b043615.xml",
        ),
        user_agents=False,
    ),
    "cisco_spa": VendorFacts(
        "resync",
        "reboot_now",
        (66, 150),
        ("spa508G.cfg", "8841-3PCC.xml", "0002FDFF2103.xml", "phonebook/0002fdff2103.xml"),
    ),
    "fanvil": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66, 43),
        (
            "001565aabbcc.cfg",
            "f0X4hw1.100.cfg",
            "F0V00X300000.cfg",
            "X6U.cfg",
            "phonebook/001565aabbcc.xml",
        ),
    ),
    "gigaset": VendorFacts(
        # Resync re-reads the file without a reboot.
        "check-sync;reboot=false",
        "check-sync;reboot=true",
        (114, 66),
        ("7C2F80E0D605.xml", "phonebook/7c2f80e0d605.xml"),
    ),
    "grandstream": VendorFacts(
        # The resync must never reboot the phone.
        "resync",
        "check-sync;reboot=true",
        (66, 43),
        (
            "cfg000b828aa872.xml",
            "cfg.xml",
            "cfggxp2135.xml",
            "phonebook/000b828aa872/phonebook.xml",
        ),
    ),
    "htek": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66, 43),
        ("cfg001565aabbcc.xml", "cfg0010.xml"),
    ),
    "obihai": VendorFacts(
        # NOTIFY event=resync reboots the device, which then fetches again: no resync event.
        "",
        "resync",
        (66,),
        ("obi9CADEF123456.xml",),
    ),
    "panasonic": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66, 160),
        (
            "KX-HDV230NE.cfg",
            "Config001565AABBCC.cfg",
            "ConfigKX-HDV230.cfg",
            "ConfigCom.cfg",
            "phonebook/001565aabbcc.xml",
        ),
    ),
    "polycom": VendorFacts(
        "check-sync",
        "check-sync;reboot=true",
        (66, 160),
        (
            "0004F2AABBCC.cfg",
            "000000000000.cfg",
            "0004F2AABBCC-user.cfg",
            "common.cfg",
            "0004F2AABBCC-directory.xml",
        ),
    ),
    "sangoma": VendorFacts(
        # check-sync always restarts the phone (enable_check_sync): no resync event.
        "",
        "check-sync",
        (66,),
        ("000fd3aabbcc.cfg", "phonebook/000fd3aabbcc.xml"),
    ),
    "snom": VendorFacts(
        "check-sync;reboot=false",
        "check-sync;reboot=true",
        (66,),
        (
            "snomD785.htm",
            "snomD785-000413922D24.htm",
            "snomD785-firmware.xml",
            "phonebook/000413922d24.xml",
        ),
    ),
    "yealink": VendorFacts(
        # Re-read without reboot (sip.notify_reboot_enable = 0) vs reboot.
        "check-sync",
        "check-sync;reboot=true",
        (66, 43),
        (
            "001565AABBCC.boot",
            "y000000000000.boot",
            "y000000000000.cfg",
            "y000000000066.cfg",
            "001565aabbcc.cfg",
            "phonebook/001565aabbcc.xml",
        ),
    ),
}
VENDORS = sorted(vendors())


def test_every_vendor_has_facts() -> None:
    assert sorted(FACTS) == VENDORS


@pytest.mark.parametrize("vendor_id", VENDORS)
def test_vendor_description(vendor_id: str) -> None:
    """The events a resync and a reboot NOTIFY carry, the DHCP options, User-Agent rules."""
    vendor, facts = vendors()[vendor_id], FACTS[vendor_id]
    assert (vendor.resync_event, vendor.reboot_event) == (facts.resync_event, facts.reboot_event)
    assert vendor.dhcp_options == facts.dhcp_options
    assert bool(vendor.user_agents) is facts.user_agents


@pytest.mark.parametrize("vendor_id", VENDORS)
def test_every_templated_file_has_a_requested_name(vendor_id: str) -> None:
    """Each name of `paths` selects exactly one file spec; together they reach every template."""
    vendor = vendors()[vendor_id]
    reached = []
    for path in FACTS[vendor_id].paths:
        matches = match_path([vendor], path)
        assert len(matches) == 1, (path, matches)
        reached.append(matches[0].spec.pattern.pattern)
    templated = [spec.pattern.pattern for spec in vendor.files if spec.template]
    assert sorted(reached) == sorted(templated)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(filter(None, v.values())))
@pytest.mark.parametrize("vendor_id", VENDORS)
def test_every_template_for_every_model(vendor_id: str, variant: dict[str, str]) -> None:
    """Every templated file, for every catalogue model of the vendor, in every variant:
    clean output, XML that parses, the SIP password in device files only."""
    models = sorted(m.id for m in catalogue().values() if m.vendor == vendor_id)
    assert models
    for model in models:
        check_every_template(vendor_id, model, variant)
