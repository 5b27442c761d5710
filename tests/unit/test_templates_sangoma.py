"""Sangoma (Digium) templates: the <mac>.cfg XML <config> with one <account> per slot, and the
file names and User-Agents the phones present."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from provisiond.domain.identify import FileKind
from tests import identify_cases as cases
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue,
    phone_context,
)
from tests.template_checks import assert_no_leftovers, load, render_path, spec_for

VENDOR = "sangoma"
DEVICE_FILE = "001565aabbcc.cfg"


def render(model: str = "sangoma-d65", **options: Any) -> ET.Element:
    """The device file for `model`, checked clean and parsed."""
    text = render_path(VENDOR, DEVICE_FILE, phone_context(VENDOR, "device", model=model, **options))
    assert_no_leftovers(text)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "config"
    return root


def settings(root: ET.Element) -> dict[str, str]:
    """{setting id: value}; each id set once."""
    pairs = [(s.get("id", ""), s.get("value", "")) for s in root.findall("./setting")]
    assert len(pairs) == len(dict(pairs)), "a setting is written twice"
    return dict(pairs)


def accounts(root: ET.Element) -> dict[str, dict[str, str]]:
    """{account index: attributes, plus host_* for the <host_primary> attributes}."""
    found: dict[str, dict[str, str]] = {}
    for account in root.findall("./accounts/account"):
        (host,) = account.findall("./host_primary")
        values = dict(account.attrib) | {f"host_{k}": v for k, v in host.attrib.items()}
        found[values.pop("index")] = values
    return found


@pytest.mark.parametrize(("transport", "port"), [("udp", "5060"), ("tcp", "5060"), ("tls", "5061")])
def test_first_account(transport: str, port: str) -> None:
    """Slot 1 is index 0: credentials, label, caller id and the registrar."""
    (only,) = accounts(render(transport=transport)).items()
    assert only == (
        "0",
        {
            "status": "1",
            "register": "1",
            "account_id": DEFAULTS["extension"],
            "username": DEFAULTS["extension"],
            "authname": DEFAULTS["auth_username"],
            "password": DEFAULTS["password"],
            "line_label": DEFAULTS["display_name"],
            "caller_id": f"{DEFAULTS['display_name']} <{DEFAULTS['cli']}>",
            "host_server": DEFAULTS["registrar"],
            "host_port": port,
            "host_transport": transport,
        },
    )


@pytest.mark.parametrize(("model", "last"), [("sangoma-d65", 6), ("sangoma-p320", 4)])
def test_every_account_by_slot(model: str, last: int) -> None:
    """Slot N is <account index=N-1>: slot 2 and the model's last slot carry their own values."""
    assert catalogue()[model].accounts == last
    found = accounts(render(model, accounts=last))
    assert sorted(found) == [str(i) for i in range(last)]
    for slot in (2, last):
        v = account_values(slot)
        assert found[str(slot - 1)] == {
            "status": "1",
            "register": "1",
            "account_id": v["extension"],
            "username": v["extension"],
            "authname": v["auth_username"],
            "password": v["password"],
            "line_label": v["display_name"],
            "caller_id": f"{v['display_name']} <{v['cli']}>",
            "host_server": DEFAULTS["registrar"],
            "host_port": "5060",
            "host_transport": "udp",
        }


def test_label_and_inactive_device() -> None:
    """An explicit label is the line label; an inactive device neither shows nor registers."""
    (account,) = accounts(render(label="Reception", enabled=False)).values()
    assert (account["line_label"], account["status"], account["register"]) == (
        "Reception",
        "0",
        "0",
    )


def test_display_name_falls_back_to_the_extension() -> None:
    (account,) = accounts(render(display_name="")).values()
    ext = DEFAULTS["extension"]
    assert (account["line_label"], account["caller_id"]) == (ext, f"{ext} <{DEFAULTS['cli']}>")


def test_outbound_proxy_only_when_set() -> None:
    (plain,) = accounts(render()).values()
    assert "outbound_proxy" not in plain
    assert "outbound_port" not in plain
    (proxied,) = accounts(render(outbound_proxy="sbc.example.net:5070")).values()
    assert (proxied["outbound_proxy"], proxied["outbound_port"]) == ("sbc.example.net", "5070")


def test_shared_settings() -> None:
    """Configuration server, check-sync restarts, MAC in the User-Agent, IANA zone, NTP."""
    assert settings(render(timezone="America/New_York")) == {
        "config_server_url": "http://192.0.2.10:8080/",
        "enable_check_sync": "1",
        "send_mac_with_useragent": "1",
        "time_zone": "America/New_York",
        "time_source": "ntp",
        "ntp_server": DEFAULTS["ntp_server"],
    }
    assert "ntp_server" not in settings(render(ntp_server=""))


def test_provisioning_credentials_in_the_server_url() -> None:
    """The phone's own HTTP credentials ride in config_server_url, percent-encoded."""
    url = settings(render(prov_password="p@ss/w:1"))["config_server_url"]
    assert url == f"http://{DEFAULTS['mac']}:p%40ss%2Fw%3A1@192.0.2.10:8080/"


# (User-Agent, model, firmware, MAC): the format is unverified (README.md, "User-Agent").
USER_AGENTS = [
    ("Digium D65 2_9_12_0_12345 000fd3123456", "D65", "2_9_12_0_12345", "000fd3123456"),
    ("Digium D40 1_4_1_0_57259", "D40", "1_4_1_0_57259", None),
    ("Sangoma P330 4.24.2 000FD3AABBCC", "P330", "4.24.2", "000fd3aabbcc"),
]
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "Sangoma", "Digium phone", "Mozilla/5.0"]
BOOT_FILES = [
    ("000fd3aabbcc.cfg", FileKind.DEVICE, "000fd3aabbcc", None),
    ("000FD3AABBCC.cfg", FileKind.DEVICE, "000fd3aabbcc", None),
]
NOT_SANGOMA = ["000000000000.cfg", "000fd3aabbc.cfg", "000fd3aabbcc.xml", "cfg000fd3aabbcc.xml"]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_SANGOMA)
)
def test_identification(check: Callable[[], None]) -> None:
    check()


# --- Keys and phone book (README.md, "Keys and phone book") -----------------------------------

PHONEBOOK_FILE = "phonebook/001565aabbcc.xml"


def test_device_file_loads_the_phone_book() -> None:
    """One <contacts url=...> naming this device's phone book file (shared: no credentials,
    even when the device has some for its configuration file)."""
    for options in ({}, {"prov_password": "p@ss"}):
        (contacts,) = render(**options).findall("./contacts")
        assert contacts.attrib == {"url": f"http://192.0.2.10:8080/{PHONEBOOK_FILE}"}
    assert load(VENDOR).phonebook_path(DEFAULTS["mac"]) == PHONEBOOK_FILE
    for name in (PHONEBOOK_FILE, "phonebook/001565AABBCC.xml"):
        assert spec_for(VENDOR, name).kind is FileKind.PHONEBOOK


@pytest.mark.parametrize("model", ["sangoma-d65", "sangoma-p330", "sangoma-d40"])
def test_no_key_is_written(model: str) -> None:
    """No key type is written (BLF / Rapid Dial keys live in separate per-phone sheets): a
    device with keys gets exactly the file of a device without."""
    assert load(VENDOR).key_types == ()
    with_keys = phone_context(VENDOR, "device", model=model, keys=SAMPLE_KEYS)
    without = phone_context(VENDOR, "device", model=model)
    assert with_keys["keys"] == []
    assert with_keys["free_keys"] == []
    assert render_path(VENDOR, DEVICE_FILE, with_keys) == render_path(VENDOR, DEVICE_FILE, without)


def phonebook_root(title: str | None = None) -> ET.Element:
    context = phone_context(VENDOR, "phonebook", phonebook=SAMPLE_PHONEBOOK)
    if title is not None:
        context["phonebook"]["title"] = title
    text = render_path(VENDOR, PHONEBOOK_FILE, context)
    assert_no_leftovers(text)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "phonebooks"
    return root


def test_phonebook_file_lists_every_entry() -> None:
    """<phonebooks><contacts group_name editable="0"><contact first_name><numbers>: the
    extension is the primary number, the mobile a second number of the same contact."""
    (group,) = phonebook_root().findall("./contacts")
    assert group.attrib == {"group_name": "Directory", "editable": "0"}
    found = [
        (
            contact.get("first_name"),
            contact.get("contact_type"),
            [dict(n.attrib) for n in contact.findall("./numbers/number")],
        )
        for contact in group.findall("./contact")
    ]
    assert found == [
        (
            "Anna Bianchi & <Co>",
            "sip",
            [
                {"dial": "202", "label": "Extension", "primary": "1"},
                {"dial": "+393331234567", "label": "Mobile"},
            ],
        ),
        (
            'Niccolò "Nico" D\'Àmbrosio',
            "sip",
            [{"dial": "203", "label": "Extension", "primary": "1"}],
        ),
        ("Rossi & <Figli>", "sip", [{"dial": "201", "label": "Extension", "primary": "1"}]),
    ]


def test_phonebook_title_is_escaped() -> None:
    """The title is the contacts group's name: administrator text, escaped and on one line."""
    (group,) = phonebook_root('Rubrica "Sede" & <Filiali>\nà').findall("./contacts")
    assert group.get("group_name") == 'Rubrica "Sede" & <Filiali>à'


def test_empty_phonebook_still_parses() -> None:
    text = render_path(VENDOR, PHONEBOOK_FILE, phone_context(VENDOR, "phonebook"))
    (group,) = ET.fromstring(text.encode("utf-8")).findall("./contacts")
    assert group.findall("./contact") == []
