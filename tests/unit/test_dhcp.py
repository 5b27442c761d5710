"""provisiond.dhcp: which phones get which options, and how each daemon's file says it.

The daemons' own check modes and real DHCP exchanges are in
tests/integration/test_dhcp_daemons.py; this file checks the plan and the text.
"""

from __future__ import annotations

import ipaddress
import json
import re

import netaddr
import pytest

from provisiond.dhcp import (
    FAMILIES,
    SERVERS,
    DhcpError,
    PhoneFamily,
    plan_dhcp,
    render_dhcp,
    site_slug,
)
from provisiond.domain.identify import VendorSpec
from provisiond.provisioning.vendors import load_vendors
from provisiond.settings import REPO_ROOT

VENDORS = load_vendors(REPO_ROOT / "phone_templates")
URL = "http://prov.example.com:8080/"
TFTP_IP = "192.0.2.10"
NETWORKS = ["10.1.0.0/16", "10.2.0.0/24"]

# The maker each family's OUIs must be registered to in the IEEE registry (netaddr's copy).
REGISTRANTS = {
    "yealink": r"YEALINK",
    "polycom": r"^Poly(com)?$",
    "cisco": r"^Cisco Systems",
    "grandstream": r"^Grandstream Networks",
    "snom": r"^snom technology",
    "fanvil": r"^Fanvil Technology",
    "gigaset": r"^Gigaset ",
    "aastra": r"^(Mitel|Aastra)",
    "panasonic": r"^Panasonic Communications",
    "htek": r"^Hanlong Technology",  # Htek is Hanlong's brand
    "alcatel": r"^(Alcatel-Lucent Enterprise|ALE International)",
    "avaya": r"^Avaya",
    "sangoma": r"^Digium",  # Sangoma bought Digium; the phones keep Digium's OUI
    "obihai": r"^Obihai Technology",
}


def _vendor(vendor_id: str, *codes: int) -> VendorSpec:
    return VendorSpec(vendor_id, vendor_id.title(), codes, "check-sync", (), ())


def _plan_options(tftp_host: str = TFTP_IP) -> dict[str, dict[int, str]]:
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=tftp_host, vendors=VENDORS)
    return {e.family.key: {o.code: o.readable for o in e.options} for e in plan.families}


# -- the OUI table ----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_every_oui_is_registered_to_the_maker(family: PhoneFamily) -> None:
    for oui in family.ouis:
        assert re.fullmatch(r"[0-9A-F]{2}(:[0-9A-F]{2}){2}", oui), oui
        registration = netaddr.OUI(oui.replace(":", "-")).registration()
        assert re.search(REGISTRANTS[family.key], registration.org), (oui, registration.org)


def test_families_are_distinct_and_each_can_match() -> None:
    keys = [f.key for f in FAMILIES]
    ouis = [oui for f in FAMILIES for oui in f.ouis]
    assert len(set(keys)) == len(keys)
    assert len(set(ouis)) == len(ouis), "an OUI in two families would send conflicting options"
    for family in FAMILIES:
        assert family.ouis or family.vendor_classes, family.key
        for prefix in family.vendor_classes:
            assert prefix.isprintable()
            assert not set("'\"\\") & set(prefix), "quotes would break the daemons' syntax"


def test_every_vendor_description_has_a_family() -> None:
    covered = {vendor_id for family in FAMILIES for vendor_id in family.vendor_ids}
    assert {vendor.id for vendor in VENDORS} == covered


# -- the plan -----------------------------------------------------------------------------------


def test_each_family_gets_the_options_its_vendor_descriptions_name() -> None:
    assert _plan_options() == {
        "yealink": {66: URL},
        "polycom": {66: URL, 160: URL},
        "cisco": {66: TFTP_IP, 150: TFTP_IP},  # first file over TFTP only
        "grandstream": {66: URL},
        "snom": {66: URL},
        "fanvil": {66: URL},
        "gigaset": {66: URL, 114: URL},
        "aastra": {66: URL},
        "panasonic": {66: URL, 160: URL},
        "htek": {66: URL},
        "alcatel": {66: URL},
        "sangoma": {66: URL},
        "obihai": {66: URL},
    }


def test_a_tftp_host_name_fills_option_66_but_not_150() -> None:
    cisco = _plan_options("tftp.example.com")["cisco"]
    assert cisco == {66: "tftp.example.com"}


def test_option_150_carries_the_packed_address() -> None:
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=TFTP_IP, vendors=VENDORS)
    [cisco] = [e for e in plan.families if e.family.key == "cisco"]
    [option_150] = [o for o in cisco.options if o.code == 150]
    assert option_150.payload == ipaddress.IPv4Address(TFTP_IP).packed


def test_only_the_families_of_the_given_vendors_appear() -> None:
    vendors = [v for v in VENDORS if v.id in ("cisco_spa", "gigaset")]
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=TFTP_IP, vendors=vendors)
    assert [e.family.key for e in plan.families] == ["cisco", "gigaset"]


def test_the_cisco_family_joins_both_cisco_descriptions() -> None:
    only_spa = [_vendor("cisco_spa", 66)]
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=TFTP_IP, vendors=only_spa)
    assert [(o.code, o.readable) for o in plan.families[0].options] == [(66, TFTP_IP)]
    both = [_vendor("cisco_spa", 66), _vendor("cisco_sep", 150)]
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=TFTP_IP, vendors=both)
    assert [o.code for o in plan.families[0].options] == [66, 150]


def test_option_43_and_unknown_vendors_become_notes() -> None:
    vendors = [_vendor("yealink", 66, 43), _vendor("acme", 66)]
    plan = plan_dhcp("HQ", NETWORKS, http_url=URL, tftp_host=TFTP_IP, vendors=vendors)
    assert [e.family.key for e in plan.families] == ["yealink"]
    assert [o.code for o in plan.families[0].options] == [66]
    assert any("Option 43 is not generated (Yealink)" in note for note in plan.notes)
    assert any("No DHCP match is known for Acme" in note for note in plan.notes)


def test_networks_split_into_ipv4_and_ignored_ipv6() -> None:
    plan = plan_dhcp(
        "HQ",
        ["10.1.0.0/16", "2001:db8::/64", "192.168.7.9"],
        http_url=URL,
        tftp_host=TFTP_IP,
        vendors=VENDORS,
    )
    assert [str(n) for n in plan.networks] == ["10.1.0.0/16", "192.168.7.9/32"]
    assert plan.ignored_networks == ("2001:db8::/64",)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"http_url": "http://127.0.0.1:8080/"}, "PROVISIOND_PUBLIC_URL"),
        ({"http_url": "http://localhost/"}, "cannot reach"),
        ({"http_url": "http://[::1]:8080/"}, "cannot reach"),
        ({"http_url": "http://0.0.0.0/"}, "cannot reach"),
        ({"http_url": "ftp://prov.example.com/"}, "http://host/"),
        ({"http_url": "prov.example.com"}, "http://host/"),
        ({"http_url": 'http://prov.example.com/"x'}, "cannot quote"),
        ({"http_url": "http://prov.example.com/a,b"}, "cannot quote"),
        ({"http_url": "http://prov.example.com/a b"}, "cannot quote"),
        ({"http_url": "http://prov.example.com/\nx"}, "cannot quote"),
        ({"tftp_host": "127.0.0.1"}, "cannot reach"),
        ({"tftp_host": "169.254.1.1"}, "cannot reach"),
        ({"tftp_host": "2001:db8::10"}, "IPv6"),
        ({"tftp_host": "tftp server"}, "not a host name"),
        ({"tftp_host": "-bad.example.com"}, "not a host name"),
        ({"networks": ["2001:db8::/64"]}, "no IPv4 network"),
        ({"networks": ["10.1.0.0/33"]}, "not a network"),
    ],
)
def test_unusable_input_is_refused(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"networks": NETWORKS, "http_url": URL, "tftp_host": TFTP_IP}
    args.update(kwargs)
    with pytest.raises(DhcpError, match=message):
        plan_dhcp("HQ", args.pop("networks"), vendors=VENDORS, **args)  # type: ignore[arg-type]


def test_an_unknown_server_is_refused() -> None:
    with pytest.raises(DhcpError, match="unknown DHCP server 'windows'"):
        render_dhcp(
            "windows",  # type: ignore[arg-type]
            "HQ",
            NETWORKS,
            http_url=URL,
            tftp_host=TFTP_IP,
            vendors=VENDORS,
        )


@pytest.mark.parametrize(
    ("name", "slug"),
    [("HQ", "hq"), ("Head Office / 2nd floor", "head-office-2nd-floor"), ("§§§", "site")],
)
def test_site_slug(name: str, slug: str) -> None:
    assert site_slug(name) == slug


# -- the text -----------------------------------------------------------------------------------


def _render(server: str, **kwargs: object) -> str:
    args: dict[str, object] = {
        "site_name": "Head Office",
        "networks": [*NETWORKS, "2001:db8::/64"],
        "http_url": URL,
        "tftp_host": TFTP_IP,
        "vendors": VENDORS,
    }
    args.update(kwargs)
    return render_dhcp(server, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("server", SERVERS)
def test_the_header_names_the_site_networks_and_how_to_include(server: str) -> None:
    comment = "//" if server == "kea" else "#"
    text = _render(server, tftp_port=6969)
    header = [line for line in text.splitlines() if line.startswith(comment)]
    body = "\n".join(header)
    assert f"provisiond dhcp --server {server} --site 'Head Office'" in body
    assert "Site networks: 10.1.0.0/16, 10.2.0.0/24." in body
    assert "IPv6 networks left out (DHCPv4 only): 2001:db8::/64." in body
    assert "provisiond-head-office" in body
    assert "port 6969" in body
    assert all(len(line) <= 100 or "include" in line for line in header)


@pytest.mark.parametrize("server", SERVERS)
def test_a_hostile_site_name_cannot_break_out_of_the_header(server: str) -> None:
    text = _render(server, site_name='HQ"\ninclude "/etc/shadow"; \x1b[31m')
    assert "\x1b" not in text
    assert '\ninclude "/etc/shadow"' not in text
    assert "provisiond-hq-include-etc-shadow-31m-yealink" in text


def test_dnsmasq_tags_phones_by_oui_and_vendor_class() -> None:
    lines = _render("dnsmasq").splitlines()
    tag = "provisiond-head-office"
    assert f"dhcp-mac=set:{tag}-yealink,00:15:65:*:*:*" in lines
    assert f'dhcp-vendorclass=set:{tag}-cisco,"Cisco Systems, Inc. IP Phone"' in lines
    assert f'dhcp-option=tag:{tag}-yealink,66,"{URL}"' in lines
    assert f'dhcp-option=tag:{tag}-cisco,66,"{TFTP_IP}"' in lines  # quoted: a name, not an IP
    assert f"dhcp-option=tag:{tag}-cisco,150,{TFTP_IP}" in lines
    assert f'dhcp-option=tag:{tag}-polycom,160,"{URL}"' in lines
    assert f'dhcp-option=tag:{tag}-gigaset,114,"{URL}"' in lines
    # Every option is tagged: nothing reaches a client that is not a phone.
    assert all(line.startswith("dhcp-option=tag:") for line in lines if "dhcp-option" in line)
    assert not [line for line in lines if line.startswith("dhcp-range")]


def test_isc_defines_the_custom_options_and_one_class_per_family() -> None:
    text = _render("isc")
    assert "option provisiond-tftp-servers code 150 = array of ip-address;" in text
    assert "option provisiond-url-160 code 160 = text;" in text
    assert "option provisiond-url-114 code 114 = text;" in text
    block = re.search(r'class "provisiond-head-office-gigaset" \{(.*?)\n\}', text, re.S)
    assert block is not None
    assert "match if substring(hardware, 1, 3) = 00:21:04" in block.group(1)
    assert f'option provisiond-url-114 "{URL}";' in block.group(1)
    assert f'option tftp-server-name "{URL}";' in block.group(1)
    assert re.search(r'substring\(option vendor-class-identifier, 0, 13\) = "AastraIPPhone";', text)
    assert "subnet " not in text.replace("# ", "")


def test_isc_defines_only_the_options_it_uses() -> None:
    text = _render("isc", vendors=[v for v in VENDORS if v.id == "yealink"])
    assert " code " not in text


def _kea_classes(text: str) -> list[dict[str, object]]:
    body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
    parsed: dict[str, list[dict[str, object]]] = json.loads("{" + body + "}")
    assert list(parsed) == ["client-classes"]
    return parsed["client-classes"]


def test_kea_classes_test_the_mac_prefix_and_carry_hex_options() -> None:
    classes = {c["name"]: c for c in _kea_classes(_render("kea"))}
    polycom = classes["provisiond-head-office-polycom"]
    assert "substring(pkt4.mac, 0, 3) == 0x64167F" in str(polycom["test"])
    options = polycom["option-data"]
    assert isinstance(options, list)
    assert options[0] == {"name": "tftp-server-name", "data": URL}
    assert options[1]["code"] == 160
    assert options[1]["csv-format"] is False
    assert bytes.fromhex(options[1]["data"]).decode() == URL
    cisco = classes["provisiond-head-office-cisco"]
    assert cisco["test"] == "substring(option[60].hex, 0, 28) == 'Cisco Systems, Inc. IP Phone'"
    assert cisco["option-data"][1]["data"] == "C000020A"  # type: ignore[index]
    assert "option-def" not in _render("kea")


@pytest.mark.parametrize("server", SERVERS)
def test_output_is_deterministic(server: str) -> None:
    assert _render(server) == _render(server)
