"""Panasonic templates: CRLF KEY="value" files with the header line and exactly the keys."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.directory import PhonebookEntry
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import load_vendor
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    phone_context,
)

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
HEADER = b"# Panasonic SIP Phone Standard Format File #\r\n"
BOOT_FILE = "KX-HDV230NE.cfg"
DEVICE_FILE = "Config001565AABBCC.cfg"
COMMON_FILES = ("ConfigKX-HDV230.cfg", "ConfigCom.cfg")
MODEL = "panasonic-kx-hdv230"
TRANSPORT_CODES = {"udp": "0", "tcp": "1", "tls": "2"}
_SETTING = re.compile(r'([A-Z0-9_]+)="([^"\r\n]+)"')
PATH_KEYS = {"CFG_STANDARD_FILE_PATH", "CFG_PRODUCT_FILE_PATH", "CFG_MASTER_FILE_PATH"}
DST_RULE_KEYS = {
    "DST_OFFSET",
    "DST_START_MONTH",
    "DST_START_ORDINAL_DAY",
    "DST_START_DAY_OF_WEEK",
    "DST_START_TIME",
    "DST_STOP_MONTH",
    "DST_STOP_ORDINAL_DAY",
    "DST_STOP_DAY_OF_WEEK",
    "DST_STOP_TIME",
}
# The sample zone (Europe/Rome) has summer time, so its rules are part of the shared keys.
SHARED_KEYS = (
    PATH_KEYS
    | {"CFG_RESYNC_FROM_SIP", "NTP_ADDR", "TIME_ZONE", "DST_ENABLE", "DEFAULT_LANGUAGE"}
    | DST_RULE_KEYS
)
CREDENTIAL_KEYS = {"HTTP_AUTH_ID", "HTTP_AUTH_PASS"}
FIRMWARE_KEYS = {"FIRM_UPGRADE_ENABLE", "FIRM_FILE_PATH", "FIRM_VERSION"}
LINE_KEYS = {
    "LINE_ENABLE_1",
    "PHONE_NUMBER_1",
    "DISPLAY_NAME_1",
    "SIP_AUTHID_1",
    "SIP_PASS_1",
    "SIP_SVCDOMAIN_1",
    "SIP_RGSTR_ADDR_1",
    "SIP_RGSTR_PORT_1",
    "SIP_PRXY_ADDR_1",
    "SIP_PRXY_PORT_1",
    "SIP_TRANSPORT_1",
}
PROXY_KEYS = {"SIP_OUTPROXY_ADDR_1", "SIP_OUTPROXY_PORT_1"}
# The company phone book, in the device file of the XML application models (KX-HDV, KX-TGP600).
PHONEBOOK_KEYS = {"XMLAPP_ENABLE", "XMLAPP_LDAP_URL"}


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Panasonic description, loaded by the real loader."""
    return load_vendor(ROOT / "panasonic" / "vendor.toml")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The production renderer over the repository's templates."""
    return Renderer(ROOT)


def render(
    renderer: Renderer, vendor: VendorSpec, path: str, model: str = MODEL, **options: Any
) -> dict[str, str]:
    """Render the file for `path` (for a device of catalogue `model`), check the Panasonic
    format and return {KEY: value}.

    Format: the header line first, CR LF after every line (no bare LF or CR), an empty last
    line, and every other line a comment or ``KEY="value"`` with a non-empty value, once.
    """
    (found,) = match_path([vendor], path)
    context = phone_context("panasonic", found.spec.kind, model=model, **options)
    body = renderer.render("panasonic", found.spec, context)
    assert body.startswith(HEADER)
    assert body.count(b"\n") == body.count(b"\r\n") == body.count(b"\r")
    assert body.endswith(b"\r\n\r\n")
    text = body.decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    values: dict[str, str] = {}
    for line in text.split("\r\n"):
        if not line or line.startswith("#"):
            continue
        setting = _SETTING.fullmatch(line)
        assert setting is not None, f'not a KEY="value" line: {line!r}'
        assert setting[1] not in values, f"duplicate key {setting[1]}"
        values[setting[1]] = setting[2]
    return values


def test_model_file_points_at_the_other_files(renderer: Renderer, vendor: VendorSpec) -> None:
    """{MODEL}.cfg only names the standard, product and master files under our base URL."""
    values = render(renderer, vendor, BOOT_FILE, outbound_proxy="sbc.example.net")
    assert values == {
        "CFG_STANDARD_FILE_PATH": "http://192.0.2.10:8080/Config{MAC}.cfg",
        "CFG_PRODUCT_FILE_PATH": "http://192.0.2.10:8080/Config{MODEL}.cfg",
        "CFG_MASTER_FILE_PATH": "http://192.0.2.10:8080/ConfigCom.cfg",
    }
    # Each named file is one this vendor serves.
    for url in values.values():
        name = url.rpartition("/")[2].replace("{MAC}", "001565AABBCC")
        assert match_path([vendor], name.replace("{MODEL}", "KX-HDV230"))


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_account(
    renderer: Renderer, vendor: VendorSpec, transport: str
) -> None:
    """Exactly the shared and line keys, the account under Panasonic's key names."""
    values = render(renderer, vendor, DEVICE_FILE, transport=transport)
    assert set(values) == SHARED_KEYS | LINE_KEYS | PHONEBOOK_KEYS
    port = "5061" if transport == "tls" else "5060"
    assert {key: values[key] for key in LINE_KEYS} == {
        "LINE_ENABLE_1": "Enabled",
        "PHONE_NUMBER_1": DEFAULTS["extension"],
        "DISPLAY_NAME_1": "Rossi & <Figli>",
        "SIP_AUTHID_1": DEFAULTS["auth_username"],
        "SIP_PASS_1": DEFAULTS["password"],
        "SIP_SVCDOMAIN_1": DEFAULTS["registrar"],
        "SIP_RGSTR_ADDR_1": DEFAULTS["registrar"],
        "SIP_RGSTR_PORT_1": port,
        "SIP_PRXY_ADDR_1": DEFAULTS["registrar"],
        "SIP_PRXY_PORT_1": port,
        "SIP_TRANSPORT_1": TRANSPORT_CODES[transport],
    }


def test_disabled_device_line(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device gets its line disabled."""
    assert render(renderer, vendor, DEVICE_FILE, enabled=False)["LINE_ENABLE_1"] == "Disabled"


def test_outbound_proxy_only_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """The outbound proxy keys appear with a proxy and never empty without one."""
    values = render(renderer, vendor, DEVICE_FILE, outbound_proxy="sbc.example.net")
    assert set(values) == SHARED_KEYS | LINE_KEYS | PHONEBOOK_KEYS | PROXY_KEYS
    assert (values["SIP_OUTPROXY_ADDR_1"], values["SIP_OUTPROXY_PORT_1"]) == (
        "sbc.example.net",
        "5060",
    )


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_provisioning_and_firmware(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """NTP, UTC offset in minutes, DST, provisioning paths, and firmware only when set."""
    url = "http://192.0.2.10:8080/firmware/KX-HDV230_06.001.fw"
    values = render(renderer, vendor, path, firmware_url=url)
    assert set(values) >= FIRMWARE_KEYS
    assert (values["FIRM_UPGRADE_ENABLE"], values["FIRM_FILE_PATH"]) == ("Y", url)
    assert values["FIRM_VERSION"] == "1.2.3.4"
    assert values["NTP_ADDR"] == DEFAULTS["ntp_server"]
    assert (values["TIME_ZONE"], values["DST_ENABLE"]) == ("60", "Y")
    assert values["DEFAULT_LANGUAGE"] == DEFAULTS["language"]
    assert values["CFG_STANDARD_FILE_PATH"] == "http://192.0.2.10:8080/Config{MAC}.cfg"
    assert not FIRMWARE_KEYS & set(render(renderer, vendor, path))


@pytest.mark.parametrize("path", COMMON_FILES)
def test_common_files_hold_no_account(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """Product and master files: the shared keys only, no secret."""
    values = render(renderer, vendor, path, outbound_proxy="sbc.example.net")
    assert set(values) == SHARED_KEYS
    assert DEFAULTS["password"] not in "".join(values.values())


def test_display_name_cannot_inject_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """CR/LF in a name are dropped and '"' becomes "'": one line, one key, still CRLF."""
    evil = 'Eve"\r\nSIP_PASS_1="stolen'
    values = render(renderer, vendor, DEVICE_FILE, display_name=evil)
    assert values["SIP_PASS_1"] == DEFAULTS["password"]
    assert values["DISPLAY_NAME_1"] == "Eve'SIP_PASS_1='stolen"


def test_no_ntp_server_leaves_no_ntp_key(renderer: Renderer, vendor: VendorSpec) -> None:
    """Without an NTP server NTP_ADDR is left out, never empty."""
    values = render(renderer, vendor, DEVICE_FILE, ntp_server="")
    assert set(values) == (SHARED_KEYS | LINE_KEYS | PHONEBOOK_KEYS) - {"NTP_ADDR"}


def _time(renderer: Renderer, vendor: VendorSpec, timezone: str) -> dict[str, str]:
    values = render(renderer, vendor, DEVICE_FILE, timezone=timezone)
    return {k: v for k, v in values.items() if k == "TIME_ZONE" or k.startswith("DST_")}


def test_rome_as_rules(renderer: Renderer, vendor: VendorSpec) -> None:
    """Last Sunday of March 02:00 to last Sunday of October 03:00, all year long."""
    assert _time(renderer, vendor, "Europe/Rome") == {
        "TIME_ZONE": "60",
        "DST_ENABLE": "Y",
        "DST_OFFSET": "60",
        "DST_START_MONTH": "3",
        "DST_START_ORDINAL_DAY": "5",
        "DST_START_DAY_OF_WEEK": "0",
        "DST_START_TIME": "120",
        "DST_STOP_MONTH": "10",
        "DST_STOP_ORDINAL_DAY": "5",
        "DST_STOP_DAY_OF_WEEK": "0",
        "DST_STOP_TIME": "180",
    }


def test_new_york_as_rules(renderer: Renderer, vendor: VendorSpec) -> None:
    """Second Sunday of March to first Sunday of November, both at 02:00."""
    values = _time(renderer, vendor, "America/New_York")
    assert values["TIME_ZONE"] == "-300"
    assert [values[f"DST_START_{k}"] for k in ("MONTH", "ORDINAL_DAY", "DAY_OF_WEEK", "TIME")] == [
        "3",
        "2",
        "0",
        "120",
    ]
    assert [values[f"DST_STOP_{k}"] for k in ("MONTH", "ORDINAL_DAY", "DAY_OF_WEEK", "TIME")] == [
        "11",
        "1",
        "0",
        "120",
    ]


def test_sydney_southern_hemisphere(renderer: Renderer, vendor: VendorSpec) -> None:
    """Summer time starts in October and stops in April of the next year."""
    values = _time(renderer, vendor, "Australia/Sydney")
    assert (values["TIME_ZONE"], values["DST_ENABLE"]) == ("600", "Y")
    assert (values["DST_START_MONTH"], values["DST_START_ORDINAL_DAY"]) == ("10", "1")
    assert (values["DST_STOP_MONTH"], values["DST_STOP_ORDINAL_DAY"]) == ("4", "1")
    assert (values["DST_START_TIME"], values["DST_STOP_TIME"]) == ("120", "180")


def test_kolkata_half_hour_offset_without_summer_time(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """330 minutes, summer time off and no rule keys at all."""
    assert _time(renderer, vendor, "Asia/Kolkata") == {"TIME_ZONE": "330", "DST_ENABLE": "N"}


def test_no_zone_list_so_every_zone_gets_rules(vendor: VendorSpec) -> None:
    """Panasonic takes offset and rules only: there is no vendor zone list to fall back from."""
    assert not (ROOT / "panasonic" / "timezones.toml").exists()
    assert dict(vendor.timezones) == {}


def test_device_file_carries_provisioning_credentials(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    values = render(renderer, vendor, DEVICE_FILE, mac="0080f0c8c381", prov_password="pQ7-x9")
    assert set(values) == SHARED_KEYS | LINE_KEYS | PHONEBOOK_KEYS | CREDENTIAL_KEYS
    assert (values["HTTP_AUTH_ID"], values["HTTP_AUTH_PASS"]) == ("0080f0c8c381", "pQ7-x9")


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_resync_and_reboot_events(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """The resync NOTIFY text is the one the files set in CFG_RESYNC_FROM_SIP; reboot differs."""
    assert render(renderer, vendor, path)["CFG_RESYNC_FROM_SIP"] == vendor.resync_event
    assert vendor.resync_event == "check-sync"
    assert vendor.reboot_event != vendor.resync_event


# Every key of one account, by the suffix _N of its slot (the guides: "_1" is line 1, "_2"
# line 2, and so on).
ACCOUNT_KEYS = (
    "LINE_ENABLE",
    "PHONE_NUMBER",
    "DISPLAY_NAME",
    "SIP_AUTHID",
    "SIP_PASS",
    "SIP_SVCDOMAIN",
    "SIP_RGSTR_ADDR",
    "SIP_RGSTR_PORT",
    "SIP_PRXY_ADDR",
    "SIP_PRXY_PORT",
    "SIP_TRANSPORT",
)


def _account_keys(slot: int) -> dict[str, str]:
    """What the file must hold for account `slot` (2 and up) of the test device over TCP."""
    values = account_values(slot)
    expected = {
        "LINE_ENABLE": "Enabled",
        "PHONE_NUMBER": values["extension"],
        "DISPLAY_NAME": f"Bianchi {slot} & <Co>",
        "SIP_AUTHID": values["auth_username"],
        "SIP_PASS": values["password"],
        "SIP_SVCDOMAIN": DEFAULTS["registrar"],
        "SIP_RGSTR_ADDR": DEFAULTS["registrar"],
        "SIP_RGSTR_PORT": "5060",
        "SIP_PRXY_ADDR": DEFAULTS["registrar"],
        "SIP_PRXY_PORT": "5060",
        "SIP_TRANSPORT": "1",
    }
    return {f"{key}_{slot}": value for key, value in expected.items()}


@pytest.mark.parametrize(
    ("model", "accounts"),
    [
        ("panasonic-kx-hdv230", 12),
        ("panasonic-kx-hdv430", 16),
        ("panasonic-kx-tgp600", 8),
        ("panasonic-kx-ut670", 6),
    ],
)
def test_every_account_gets_its_line_keys(
    renderer: Renderer, vendor: VendorSpec, model: str, accounts: int
) -> None:
    """Slot N is written under the _N keys: slot 2 and the model's last slot, exactly; line 1
    stays the device's own account; nothing beyond the model's count."""
    values = render(renderer, vendor, DEVICE_FILE, model=model, accounts=accounts, transport="tcp")
    line_keys = {f"{key}_{slot}" for key in ACCOUNT_KEYS for slot in range(1, accounts + 1)}
    phonebook = set() if model.startswith("panasonic-kx-ut") else PHONEBOOK_KEYS
    assert set(values) == SHARED_KEYS | line_keys | phonebook
    for slot in (2, accounts):
        assert {key: values[key] for key in _account_keys(slot)} == _account_keys(slot)
    assert (values["PHONE_NUMBER_1"], values["SIP_PASS_1"]) == (
        DEFAULTS["extension"],
        DEFAULTS["password"],
    )


def test_outbound_proxy_for_every_account(renderer: Renderer, vendor: VendorSpec) -> None:
    """Each account gets the outbound proxy keys under its own suffix."""
    values = render(
        renderer, vendor, DEVICE_FILE, model="panasonic-kx-hdv130", accounts=2,
        outbound_proxy="sbc.example.net",
    )  # fmt: skip
    for slot in (1, 2):
        assert (values[f"SIP_OUTPROXY_ADDR_{slot}"], values[f"SIP_OUTPROXY_PORT_{slot}"]) == (
            "sbc.example.net",
            "5060",
        )
    assert "SIP_OUTPROXY_ADDR_3" not in values


def test_single_line_model_has_line_1_only(renderer: Renderer, vendor: VendorSpec) -> None:
    """KX-HDV100 supports one telephone line: the file never names a second one."""
    values = render(renderer, vendor, DEVICE_FILE, model="panasonic-kx-hdv100", accounts=1)
    assert set(values) == SHARED_KEYS | LINE_KEYS | PHONEBOOK_KEYS


# --- Flexible buttons and the company phone book (README.md, "Keys and phone book") ---

_FLEX = re.compile(r"FLEX_BUTTON_(?:FACILITY_ACT|FACILITY_ARG|LABEL)\d+")


def flex_buttons(values: dict[str, str]) -> dict[int, tuple[str, str, str]]:
    """{button: (facility action, argument, label)}; every button has all three keys."""
    found = {key for key in values if _FLEX.fullmatch(key)}
    buttons = {int(re.sub(r"\D", "", key)) for key in found}
    result = {
        n: (
            values[f"FLEX_BUTTON_FACILITY_ACT{n}"],
            values[f"FLEX_BUTTON_FACILITY_ARG{n}"],
            values[f"FLEX_BUTTON_LABEL{n}"],
        )
        for n in buttons
    }
    assert len(found) == 3 * len(result)
    return result


def test_vendor_writes_blf_and_speed_dial_only(vendor: VendorSpec) -> None:
    assert vendor.key_types == ("blf", "speed_dial")


def test_sample_keys_are_flexible_buttons(renderer: Renderer, vendor: VendorSpec) -> None:
    """The BLF and the speed dial under their button number, labels as given (KEY="value"
    needs no escaping but a double quote); the other sample types are not written."""
    values = render(renderer, vendor, DEVICE_FILE, keys=SAMPLE_KEYS)
    assert flex_buttons(values) == {
        2: ("X_PANASONIC_IPTEL_BLF", "202", "Anna & <Co>"),
        3: ("X_PANASONIC_IPTEL_ONETOUCH", "+390612345678", "Reception"),
    }


def test_label_quote_cannot_break_the_line(renderer: Renderer, vendor: VendorSpec) -> None:
    """A double quote in a label becomes ' (the format cannot carry one); nothing is injected."""
    keys = (PhoneKey(1, "blf", "202", 'Anna "x" FLEX_BUTTON_LABEL2="y'),)
    values = render(renderer, vendor, DEVICE_FILE, keys=keys)
    assert flex_buttons(values) == {
        1: ("X_PANASONIC_IPTEL_BLF", "202", "Anna 'x' FLEX_BUTTON_LABEL2='y"),
    }


def test_no_keys_no_flexible_buttons(renderer: Renderer, vendor: VendorSpec) -> None:
    assert flex_buttons(render(renderer, vendor, DEVICE_FILE)) == {}


@pytest.mark.parametrize(
    ("model", "position"),
    [("panasonic-kx-hdv230", 25), ("panasonic-kx-hdv130", 3), ("panasonic-kx-tgp600", 1)],
)
def test_key_beyond_the_model_never_appears(
    renderer: Renderer, vendor: VendorSpec, model: str, position: int
) -> None:
    """The KX-HDV230 has 24 buttons, the KX-HDV130 2, a DECT base none."""
    keys = (PhoneKey(position, "speed_dial", "100", "Beyond"),)
    assert flex_buttons(render(renderer, vendor, DEVICE_FILE, model=model, keys=keys)) == {}


@pytest.mark.parametrize("model", ["panasonic-kx-hdv230", "panasonic-kx-tgp600"])
def test_network_phone_book(renderer: Renderer, vendor: VendorSpec, model: str) -> None:
    """The XML application's network phone book at this device's URL, a name the vendor
    serves as the phone book."""
    values = render(renderer, vendor, DEVICE_FILE, model=model)
    url = f"{PROVISIONING_BASE_URL}phonebook/001565aabbcc.xml"
    assert {key: values[key] for key in PHONEBOOK_KEYS} == {
        "XMLAPP_ENABLE": "Y",
        "XMLAPP_LDAP_URL": url,
    }
    (found,) = match_path([vendor], url.removeprefix(PROVISIONING_BASE_URL))
    assert (found.spec.kind, found.mac) == (FileKind.PHONEBOOK, "001565aabbcc")


@pytest.mark.parametrize("model", ["panasonic-kx-ut133", "panasonic-kx-tgp550"])
def test_no_phone_book_without_the_xml_application(
    renderer: Renderer, vendor: VendorSpec, model: str
) -> None:
    """Models outside the XML Application Developer's Guide are not pointed at it."""
    assert not PHONEBOOK_KEYS & set(render(renderer, vendor, DEVICE_FILE, model=model))


def _phone_book(renderer: Renderer, vendor: VendorSpec, entries: Any) -> ET.Element:
    (found,) = match_path([vendor], "phonebook/001565aabbcc.xml")
    context = phone_context("panasonic", "phonebook", phonebook=entries)
    text = renderer.render("panasonic", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    return ET.fromstring(text)


NS = {"pp": "http://panasonic/sip_phone"}


def personnel(root: ET.Element) -> list[tuple[str | None, str | None, list[tuple[str, str]]]]:
    return [
        (
            p.get("id"),
            p.findtext("pp:Name", namespaces=NS),
            [(n.get("type", ""), n.text or "") for n in p.findall("pp:PhoneNums/pp:PhoneNum", NS)],
        )
        for p in root.findall("pp:Screen/pp:PhoneBook/pp:Personnel", NS)
    ]


def test_phone_book_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """ppxml PhoneBook: every user by name exactly (&, <, quotes, accents), id from 1, the
    extension as "ext"; a mobile with "+" is left out (a PhoneNum holds 0-9, # and * only)."""
    root = _phone_book(renderer, vendor, SAMPLE_PHONEBOOK)
    assert root.tag == "{http://panasonic/sip_phone}ppxml"
    assert personnel(root) == [
        ("1", "Anna Bianchi & <Co>", [("ext", "202")]),
        ("2", 'Niccolò "Nico" D\'Àmbrosio', [("ext", "203")]),
        ("3", "Rossi & <Figli>", [("ext", "201")]),
    ]


def test_phone_book_mobile_of_digits(renderer: Renderer, vendor: VendorSpec) -> None:
    """A mobile of digits only is the contact's second number, type "mobile"."""
    root = _phone_book(renderer, vendor, (PhonebookEntry("Zeta", "204", "3331234567"),))
    assert personnel(root) == [("1", "Zeta", [("ext", "204"), ("mobile", "3331234567")])]
