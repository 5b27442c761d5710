"""Avaya J100/96x1 templates: the upgrade script, 46xxsettings.txt (no secrets, ends with
GET $MACADDR.txt) and the phone's own <mac>.txt with its SIP login, as SET statements."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from provisiond.domain.identify import FileKind
from provisiond.domain.keys import PhoneKey
from tests import identify_cases as cases
from tests.phone_context import DEFAULTS, SAMPLE_KEYS, catalogue, phone_context
from tests.template_checks import assert_no_leftovers, load, render_path

VENDOR = "avaya"
DEVICE_FILE = "001565aabbcc.txt"
SETTINGS_FILE = "46xxsettings.txt"
_SET = re.compile(r'SET ([A-Z0-9_]+) "([^"]*)"$')


def render(path: str = DEVICE_FILE, **options: Any) -> tuple[dict[str, str], list[str]]:
    """Render `path`: ({SET name: value} (each once), the other non-comment lines)."""
    kind = "device" if path == DEVICE_FILE else "common"
    model = "avaya-j179" if kind == "device" else None
    text = render_path(VENDOR, path, phone_context(VENDOR, kind, model=model, **options))
    assert_no_leftovers(text)
    values: dict[str, str] = {}
    others = []
    for line in text.splitlines():
        if not line or line.startswith("##"):
            continue
        match = _SET.match(line)
        if match:
            assert match.group(1) not in values, f"{match.group(1)} set twice"
            values[match.group(1)] = match.group(2)
        else:
            others.append(line)
    return values, others


def test_every_model_logs_in_one_sip_user() -> None:
    """FORCE_SIP_* hold one login: every Avaya model carries one account."""
    models = [m for m in catalogue().values() if m.vendor == VENDOR]
    assert len(models) == 13
    assert {m.accounts for m in models} == {1}


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_login(transport: str) -> None:
    values, others = render(transport=transport)
    port = 5061 if transport == "tls" else 5060
    assert others == []
    assert {k: v for k, v in values.items() if k.startswith(("FORCE_SIP_", "DISPLAY_NAME"))} == {
        "FORCE_SIP_EXTENSION": DEFAULTS["extension"],
        "FORCE_SIP_USERNAME": DEFAULTS["auth_username"],
        "FORCE_SIP_PASSWORD": DEFAULTS["password"],
        "DISPLAY_NAME": DEFAULTS["display_name"],
    }
    assert values["SIPDOMAIN"] == DEFAULTS["registrar"]
    assert values["SIP_CONTROLLER_LIST"] == f"{DEFAULTS['registrar']}:{port};transport={transport}"
    assert (values["ENABLE_AVAYA_ENVIRONMENT"], values["ENABLE_OOD_RESET_NOTIFY"]) == ("0", "1")


def test_inactive_device_gets_no_login() -> None:
    values, _ = render(enabled=False)
    assert not [k for k in values if k.startswith("FORCE_SIP_")]
    assert DEFAULTS["password"] not in values.values()


def test_quotes_cannot_break_a_value() -> None:
    values, others = render(display_name='Rossi "Boss"\nSET X "1"')
    assert values["DISPLAY_NAME"] == "Rossi 'Boss'SET X '1'"
    assert others == []
    assert "X" not in values


def test_outbound_proxy_is_the_sip_controller() -> None:
    values, _ = render(outbound_proxy="sbc.example.net:5070", transport="tcp")
    assert values["SIP_CONTROLLER_LIST"] == "sbc.example.net:5070;transport=tcp"
    assert values["SIPDOMAIN"] == DEFAULTS["registrar"]


def test_settings_file_has_no_secrets_and_ends_with_the_phone_file() -> None:
    values, others = render(SETTINGS_FILE)
    assert others == ["GET $MACADDR.txt"]
    assert not [k for k in values if k.startswith(("FORCE_SIP_", "DISPLAY_NAME"))]
    assert values["SIP_CONTROLLER_LIST"] == f"{DEFAULTS['registrar']}:5060;transport=udp"


@pytest.mark.parametrize("path", ["J100Supgrade.txt", "96x1Supgrade.txt"])
def test_upgrade_script_goes_to_the_settings_file(path: str) -> None:
    assert render(path) == ({}, ["GET 46xxsettings.txt"])


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        ("http://192.0.2.10:8080/", {"HTTPSRVR": "192.0.2.10", "HTTPPORT": "8080"}),
        ("http://prov.example.net/avaya/", {"HTTPSRVR": "prov.example.net", "HTTPPORT": "80",
                                            "HTTPDIR": "avaya"}),
        ("https://prov.example.net:8443/a/b/", {"TLSSRVR": "prov.example.net", "TLSPORT": "8443",
                                                "TLSDIR": "a/b"}),
    ],
)  # fmt: skip
def test_file_server_from_the_public_url(base_url: str, expected: dict[str, str]) -> None:
    for path in (DEVICE_FILE, SETTINGS_FILE):
        values, _ = render(path, base_url=base_url)
        server = {k: v for k, v in values.items() if k.startswith(("HTTP", "TLS"))}
        assert server == expected


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Europe/Rome", {"GMTOFFSET": "+1:00", "DAYLIGHT_SAVING_SETTING_MODE": "2",
                         "DSTOFFSET": "1", "DSTSTART": "LSunMar2L", "DSTSTOP": "LSunOct3L"}),
        ("America/New_York", {"GMTOFFSET": "-5:00", "DAYLIGHT_SAVING_SETTING_MODE": "2",
                              "DSTOFFSET": "1", "DSTSTART": "2SunMar2L", "DSTSTOP": "1SunNov2L"}),
        ("Australia/Sydney", {"GMTOFFSET": "+10:00", "DAYLIGHT_SAVING_SETTING_MODE": "2",
                              "DSTOFFSET": "1", "DSTSTART": "1SunOct2L", "DSTSTOP": "1SunApr3L"}),
        ("Asia/Kolkata", {"GMTOFFSET": "+5:30", "DAYLIGHT_SAVING_SETTING_MODE": "0"}),
    ],
)  # fmt: skip
def test_time_zone_all_year(timezone: str, expected: dict[str, str]) -> None:
    values, _ = render(SETTINGS_FILE, timezone=timezone)
    keys = ("GMTOFFSET", "DAYLIGHT_SAVING_SETTING_MODE", "DSTOFFSET", "DSTSTART", "DSTSTOP")
    assert {k: values[k] for k in keys if k in values} == expected
    assert values["SNTPSRVR"] == DEFAULTS["ntp_server"]


# (User-Agent, model, firmware, MAC): the format is unverified (README.md, "User-Agent").
USER_AGENTS = [
    ("AVAYA/J179-4.1.0.0.8 (MAC:c8:1f:ea:aa:bb:cc)", "J179", "4.1.0.0.8", "c81feaaabbcc"),
    ("Avaya/9641GS-7.1.15.0.8", "9641GS", "7.1.15.0.8", None),
]
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "AVAYA", "Avaya one-X Deskphone"]
BOOT_FILES = [
    ("J100Supgrade.txt", FileKind.COMMON, None, None),
    ("96x1Supgrade.txt", FileKind.COMMON, None, None),
    ("46xxsettings.txt", FileKind.COMMON, None, None),
    ("c81feaaabbcc.txt", FileKind.DEVICE, "c81feaaabbcc", None),
    ("C81FEAAABBCC.txt", FileKind.DEVICE, "c81feaaabbcc", None),
]
NOT_AVAYA = ["000000000000.txt", "c81feaaabbc.txt", "46xxsettings.scr", "J100Supgrade.cfg"]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_AVAYA)
)
def test_identification(check: Callable[[], None]) -> None:
    check()


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") -------

_PHONEKEY = re.compile(r'^SET PHONEKEY "([^"]*)"$')


def phone_keys(model: str = "avaya-j179", **options: Any) -> list[dict[str, str]]:
    """The PHONEKEY statements of the device file, each as {attribute: value}, in order."""
    context = phone_context(VENDOR, "device", model=model, **options)
    text = render_path(VENDOR, DEVICE_FILE, context)
    assert_no_leftovers(text)
    keys = []
    for line in text.splitlines():
        match = _PHONEKEY.match(line)
        if match:
            pairs = [part.partition("=") for part in match.group(1).split(";")]
            assert all(sep for _, sep, _ in pairs), line
            keys.append({name: value for name, _, value in pairs})
    return keys


def test_line_and_autodial_keys_on_a_j100() -> None:
    """Position n is Key=n; the line key is the primary line, a speed dial an autodial key;
    the types Avaya documents no parameter for (blf, park, dnd, url) are left out."""
    assert load(VENDOR).key_types == ("line", "speed_dial")
    assert phone_keys(keys=SAMPLE_KEYS) == [
        {"Key": "1", "Type": "line", "Name": "primary", "Label": DEFAULTS["extension"]},
        {"Key": "3", "Type": "autodial", "Name": "+390612345678", "Label": "Reception"},
    ]


def test_no_keys_no_phonekey_and_no_phone_book() -> None:
    assert phone_keys() == []
    context = phone_context(VENDOR, "device", model="avaya-j179", keys=SAMPLE_KEYS)
    assert context["phonebook"]["url"] == ""
    assert load(VENDOR).phonebook_format == ""


def test_96x1_gets_no_keys() -> None:
    """PHONEKEY is a J100 parameter: a 96x1's file stays the same with or without keys."""
    with_keys = phone_context(VENDOR, "device", model="avaya-9611g", keys=SAMPLE_KEYS)
    plain = phone_context(VENDOR, "device", model="avaya-9611g")
    assert render_path(VENDOR, DEVICE_FILE, with_keys) == render_path(VENDOR, DEVICE_FILE, plain)


def test_key_label_stays_inside_its_attribute() -> None:
    """A quote, a line break or a ";" in a label cannot end the value or add an attribute."""
    keys = (PhoneKey(2, "speed_dial", "0612345678", 'A & <B> "x";Type=line\nSET X "1"'),)
    (key,) = phone_keys(keys=keys)
    assert key == {
        "Key": "2",
        "Type": "autodial",
        "Name": "0612345678",
        "Label": "A & <B> 'x',Type=lineSET X '1'",
    }


def test_keys_beyond_the_phone_never_appear() -> None:
    """The J139 has 4 keys and no module: position 5 and up are not written."""
    keys = (PhoneKey(4, "line", "1", "Me"), PhoneKey(5, "speed_dial", "0612345678", "Far"))
    assert [k["Key"] for k in phone_keys(model="avaya-j139", keys=keys)] == ["4"]
