"""Cisco 79xx SIP (SIPDefault.cnf, SIP<MAC>.cnf) and SEP (SEP<MAC>.cnf.xml) templates."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.render import Renderer
from provisiond.sip.events import notify_body
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue_models,
    phone_context,
)
from tests.template_checks import (
    TEMPLATES_ROOT,
    assert_no_leftovers,
    load,
    parse_key_values,
    render_path,
    xml_root,
)

MODEL_79X0 = "cisco-cp-7960"
SEP_PATH = "SEP00562B043615.cnf.xml"


def dst_keys(start: tuple[str, str, str, str], stop: tuple[str, str, str, str]) -> dict[str, str]:
    """The 79x0 relative-DST keys: (month, day of week, week of month, time) per edge."""
    keys = {"dst_auto_adjust": "1", "dst_offset": "01/00"}
    for edge, (month, weekday, week, time) in (("start", start), ("stop", stop)):
        keys |= {
            f"dst_{edge}_month": month,
            f"dst_{edge}_day": "0",
            f"dst_{edge}_day_of_week": weekday,
            f"dst_{edge}_week_of_month": week,
            f"dst_{edge}_time": time,
        }
    return keys


# The zone as yearly rules (8 = the last week of the month), never "is it summer now".
RULES_79X0: dict[str, dict[str, str]] = {
    "Europe/Rome": {
        "time_zone": "CET",
        **dst_keys(("Mar", "Sun", "8", "02/00"), ("Oct", "Sun", "8", "03/00")),
    },
    "America/New_York": {
        "time_zone": "EST",
        **dst_keys(("Mar", "Sun", "2", "02/00"), ("Nov", "Sun", "1", "02/00")),
    },
    # Southern hemisphere: starts in October, ends in April. +10 has no abbreviation in the
    # table: time_zone is left out (README), the rules are still written.
    "Australia/Sydney": dst_keys(("Oct", "Sun", "1", "02/00"), ("Apr", "Sun", "1", "03/00")),
    # No summer time, half-hour offset.
    "Asia/Kolkata": {"time_zone": "IST", "dst_auto_adjust": "0"},
}
SEP_ZONES = {
    "Europe/Rome": "W. Europe Standard/Daylight Time",
    "America/New_York": "Eastern Standard/Daylight Time",
    "Australia/Sydney": "AUS Eastern Standard/Daylight Time",
    "Asia/Kolkata": "India Standard Time",
}
MODEL_SEP = "cisco-cp-7942"
PHONEBOOK_URL = f"{PROVISIONING_BASE_URL}phonebook/{DEFAULTS['mac']}.xml"
TRANSPORT_CODES = {"tcp": "1", "udp": "2", "tls": "3"}
TEMPLATE_RENDERER = Renderer(TEMPLATES_ROOT)


def test_resync_and_reboot_events() -> None:
    """SEP phones (most models): service-control, the action travels in the body."""
    vendor = load("cisco_sep")
    assert (vendor.resync_event, vendor.reboot_event) == ("service-control", "service-control")
    assert notify_body(vendor.resync_event, False) == ("text/plain", "action=restart\r\n")
    assert notify_body(vendor.reboot_event, True) == ("text/plain", "action=reset\r\n")


def expected_79x0_settings(transport: str, proxy: str, firmware_url: str) -> dict[str, str]:
    """Keys shared by SIPDefault.cnf and SIP<MAC>.cnf (the 79x0 firmware speaks UDP here)."""
    port = "5061" if transport == "tls" else "5060"
    keys = {
        "proxy1_address": DEFAULTS["registrar"],
        "proxy1_port": port,
        "sntp_mode": "unicast",
        "sntp_server": DEFAULTS["ntp_server"],
        **RULES_79X0["Europe/Rome"],
    }
    if proxy:
        keys |= {"outbound_proxy": proxy, "outbound_proxy_port": port}
    if firmware_url:
        keys["image_version"] = "P0S3-8-12-00"
    return keys


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", "tftp://192.0.2.10/P0S3-8-12-00.loads"])
def test_79x0_files(transport: str, proxy: str, firmware_url: str) -> None:
    def context(kind: str, model: str | None) -> dict[str, object]:
        return phone_context(
            "cisco_sep",
            kind,
            model=model,
            transport=transport,
            outbound_proxy=proxy,
            firmware_url=firmware_url,
        )

    device = render_path("cisco_sep", "SIP00562B043615.cnf", context("device", MODEL_79X0))
    default = render_path("cisco_sep", "SIPDefault.cnf", context("common", None))
    for text in (device, default):
        assert_no_leftovers(text)
    settings = expected_79x0_settings(transport, proxy, firmware_url)
    assert parse_key_values(default, ":") == settings
    assert parse_key_values(device, ":") == {
        "line1_name": DEFAULTS["extension"],
        "line1_authname": DEFAULTS["auth_username"],
        "line1_password": DEFAULTS["password"],
        "line1_displayname": "Rossi & <Figli>",
        "line1_shortname": DEFAULTS["cli"],
        "phone_label": "Rossi & <Figli>",
        "proxy_register": "1",
        "directory_url": PHONEBOOK_URL,
        **settings,
    }


def test_79x0_quotes_cannot_break_a_value() -> None:
    context = phone_context(
        "cisco_sep", "device", model=MODEL_79X0, display_name='Say "hi"\nproxy1_port: 1'
    )
    keys = parse_key_values(render_path("cisco_sep", "SIP00562b043615.cnf", context), ":")
    assert keys["line1_displayname"] == "Say 'hi'proxy1_port: 1"
    assert keys["proxy1_port"] == "5060"


def test_79x0_unknown_offset_leaves_time_zone_out() -> None:
    """Nepal's +5:45 has no 79x0 zone name."""
    context = phone_context("cisco_sep", "common", timezone="Asia/Kathmandu")
    assert "time_zone" not in parse_key_values(
        render_path("cisco_sep", "SIPDefault.cnf", context), ":"
    )


def sep_line(root: ET.Element) -> dict[str, str]:
    """The children of <sipLines><line button="1"> (tag -> text)."""
    line = root.find("./sipProfile/sipLines/line[@button='1']")
    assert line is not None
    return {child.tag: child.text or "" for child in line}


def text_of(root: ET.Element, path: str) -> str | None:
    """The text at `path`, or None when the element is absent."""
    element = root.find(path)
    return None if element is None else (element.text or "")


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", "tftp://192.0.2.10/SIP42.9-4-2SR3-1S.loads"])
def test_sep_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = phone_context(
        "cisco_sep",
        "device",
        model=MODEL_SEP,
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
    )
    text = render_path("cisco_sep", "SEP00562B043615.cnf.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    port = "5061" if transport == "tls" else "5060"
    assert sep_line(root) == {
        "featureID": "9",
        "featureLabel": DEFAULTS["cli"],
        "proxy": DEFAULTS["registrar"],
        "port": port,
        "name": DEFAULTS["extension"],
        "displayName": "Rossi & <Figli>",
        "authName": DEFAULTS["auth_username"],
        "authPassword": DEFAULTS["password"],
        "contact": DEFAULTS["extension"],
    }
    assert text_of(root, "transportLayerProtocol") == TRANSPORT_CODES[transport]
    member = "./devicePool/callManagerGroup/members/member/callManager"
    assert text_of(root, f"{member}/processNodeName") == DEFAULTS["registrar"]
    secure = "securedSipPort" if transport == "tls" else "sipPort"
    assert text_of(root, f"{member}/ports/{secure}") == port
    assert text_of(root, "./sipProfile/sipProxies/registerWithProxy") == "true"
    assert text_of(root, "./sipProfile/sipProxies/outboundProxy") == (proxy or None)
    assert text_of(root, "./sipProfile/sipProxies/outboundProxyPort") == (port if proxy else None)
    assert text_of(root, "loadInformation") == ("SIP42.9-4-2SR3-1S" if firmware_url else None)
    assert text_of(root, "./devicePool/dateTimeSetting/ntps/ntp/name") == DEFAULTS["ntp_server"]
    zone = text_of(root, "./devicePool/dateTimeSetting/timeZone")
    assert zone == "W. Europe Standard/Daylight Time"


def test_sep_label_and_disabled_line() -> None:
    context = phone_context("cisco_sep", "device", model=MODEL_SEP, label="Lab", enabled=False)
    root = xml_root(render_path("cisco_sep", "SEP00562B043615.cnf.xml", context))
    assert sep_line(root)["featureLabel"] == "Lab"
    assert text_of(root, "./sipProfile/sipProxies/registerWithProxy") == "false"


def test_xml_default_has_no_line() -> None:
    text = render_path("cisco_sep", "XMLDefault.cnf.xml", phone_context("cisco_sep", "common"))
    root = xml_root(text)
    assert root.find("./sipProfile") is None
    assert text_of(root, "transportLayerProtocol") == "2"
    assert DEFAULTS["password"] not in text


def time_keys(keys: dict[str, str]) -> dict[str, str]:
    """Only the time-zone keys of a parsed 79x0 file."""
    return {k: v for k, v in keys.items() if k == "time_zone" or k.startswith("dst_")}


@pytest.mark.parametrize("timezone", list(RULES_79X0))
def test_79x0_zone_as_rules(timezone: str) -> None:
    common = phone_context("cisco_sep", "common", timezone=timezone)
    device = phone_context("cisco_sep", "device", model=MODEL_79X0, timezone=timezone)
    for path, context in (("SIPDefault.cnf", common), ("SIP00562B043615.cnf", device)):
        keys = parse_key_values(render_path("cisco_sep", path, context), ":")
        assert time_keys(keys) == RULES_79X0[timezone], path


def test_79x0_rules_follow_the_zone_not_the_render_date() -> None:
    """A zone without summer time never gets rules, whatever the date: Algiers keeps CET."""
    context = phone_context("cisco_sep", "common", timezone="Africa/Algiers")
    keys = parse_key_values(render_path("cisco_sep", "SIPDefault.cnf", context), ":")
    assert time_keys(keys) == {"time_zone": "CET", "dst_auto_adjust": "0"}


@pytest.mark.parametrize("timezone", list(SEP_ZONES))
def test_sep_zone_name_from_the_list(timezone: str) -> None:
    context = phone_context("cisco_sep", "device", model=MODEL_SEP, timezone=timezone)
    root = xml_root(render_path("cisco_sep", SEP_PATH, context))
    assert text_of(root, "./devicePool/dateTimeSetting/timeZone") == SEP_ZONES[timezone]
    assert text_of(root, "./devicePool/dateTimeSetting/olsonTimeZone") == timezone
    default = xml_root(
        render_path(
            "cisco_sep",
            "XMLDefault.cnf.xml",
            phone_context("cisco_sep", "common", timezone=timezone),
        )
    )
    assert text_of(default, "./devicePool/dateTimeSetting/timeZone") == SEP_ZONES[timezone]


def test_zone_list_comes_from_timezones_toml() -> None:
    zones = load("cisco_sep").timezones
    assert {zone: zones[zone] for zone in SEP_ZONES} == SEP_ZONES
    assert zones["Australia/Brisbane"] == "E. Australia Standard Time"  # no summer time there
    assert "America/Mexico_City" not in zones  # rules changed in 2022: left out on purpose


def test_zone_missing_from_the_list_takes_the_documented_fallback() -> None:
    """SEP: no timeZone (the XML has no offset field), the IANA name in olsonTimeZone;
    79x0: the offset's abbreviation when the table has one, and the summer-time rules."""
    timezone = "America/Mexico_City"
    sep = phone_context("cisco_sep", "device", model=MODEL_SEP, timezone=timezone)
    assert sep["time"]["zone_name"] == ""
    root = xml_root(render_path("cisco_sep", SEP_PATH, sep))
    assert text_of(root, "./devicePool/dateTimeSetting/timeZone") is None
    assert text_of(root, "./devicePool/dateTimeSetting/olsonTimeZone") == timezone
    common = phone_context("cisco_sep", "common", timezone=timezone)
    keys = parse_key_values(render_path("cisco_sep", "SIPDefault.cnf", common), ":")
    assert time_keys(keys) == {"time_zone": "CST", "dst_auto_adjust": "0"}


@pytest.mark.parametrize("model", [MODEL_79X0, MODEL_SEP])
def test_no_provisioning_credentials_anywhere(model: str) -> None:
    """TFTP phones without HTTP authentication: the credentials are written nowhere."""
    for spec in load("cisco_sep").files:
        if spec.template is None:
            continue
        kind = spec.kind.value
        context = phone_context(
            "cisco_sep",
            kind,
            model=None if kind == "common" else model,
            prov_password="provPass1",
        )
        body = TEMPLATE_RENDERER.render("cisco_sep", spec, context).decode("utf-8")
        assert "provuser" not in body, spec.template
        assert "provPass1" not in body, spec.template


@pytest.mark.parametrize(("model", "accounts"), [("cisco-cp-7960", 6), ("cisco-cp-7940", 2)])
def test_79x0_every_line(model: str, accounts: int) -> None:
    """Account slot n is line n: lineN_* keys, and proxyN_* for the lines after the first."""
    context = phone_context("cisco_sep", "device", model=model, accounts=accounts)
    keys = parse_key_values(render_path("cisco_sep", "SIP00562B043615.cnf", context), ":")
    for slot in (2, accounts):
        values = account_values(slot)
        expected = {
            f"line{slot}_name": values["extension"],
            f"line{slot}_authname": values["auth_username"],
            f"line{slot}_password": values["password"].replace('"', "'"),
            f"line{slot}_displayname": values["display_name"],
            f"line{slot}_shortname": values["cli"],
            f"proxy{slot}_address": DEFAULTS["registrar"],
            f"proxy{slot}_port": "5060",
        }
        assert {key: keys.get(key) for key in expected} == expected, slot
    assert f"line{accounts + 1}_name" not in keys
    assert keys["line1_name"] == DEFAULTS["extension"]
    assert "proxy1_address" in keys  # line 1: the shared proxy keys, as before


def sep_lines(root: ET.Element) -> dict[str, dict[str, str]]:
    """Every <sipLines><line>, by its button attribute (children tag -> text)."""
    return {
        line.get("button", ""): {child.tag: child.text or "" for child in line}
        for line in root.findall("./sipProfile/sipLines/line")
    }


@pytest.mark.parametrize(
    ("model", "accounts"),
    [("cisco-cp-7975", 8), ("cisco-cp-7942", 2), ("cisco-cp-8865", 5), ("cisco-cp-7861", 16)],
)
def test_sep_every_line(model: str, accounts: int) -> None:
    """Account slot n is <line button="n">, with the same children as line 1."""
    context = phone_context("cisco_sep", "device", model=model, accounts=accounts)
    lines = sep_lines(xml_root(render_path("cisco_sep", SEP_PATH, context)))
    assert sorted(lines, key=int) == [str(slot) for slot in range(1, accounts + 1)]
    for slot in (2, accounts):
        values = account_values(slot)
        assert lines[str(slot)] == {
            "featureID": "9",
            "featureLabel": values["cli"],
            "proxy": DEFAULTS["registrar"],
            "port": "5060",
            "name": values["extension"],
            "displayName": values["display_name"],
            "authName": values["auth_username"],
            "authPassword": values["password"],
            "contact": values["extension"],
        }, slot
    assert lines["1"]["name"] == DEFAULTS["extension"]


def test_catalogue_families() -> None:
    """Two families: 79x0 (SIP<MAC>.cnf) and sep (SEP<MAC>.cnf.xml), no User-Agent, TFTP."""
    models = [m for m in catalogue_models().values() if m.vendor == "cisco_sep"]
    assert {m.family for m in models} == {"79x0", "sep"}
    assert {m.name for m in models if m.family == "79x0"} == {"CP-7940G", "CP-7960G"}
    assert all(m.user_agent == "" and m.protocols == ("tftp",) for m in models)
    assert len(models) >= 12


# --- Keys and phone book (README "Keys and phone book") ------------------------------------

KEYS_MODEL = "cisco-cp-8841"  # 5 line keys, no module keys
KEYS_CASE = Path(__file__).resolve().parents[1] / "keys_cases" / "cisco_sep.toml"


def sep_root(model: str, keys: tuple[PhoneKey, ...], accounts: int = 1) -> ET.Element:
    context = phone_context("cisco_sep", "device", model=model, keys=keys, accounts=accounts)
    text = render_path("cisco_sep", SEP_PATH, context)
    assert_no_leftovers(text)
    return xml_root(text)


def test_vendor_key_types() -> None:
    """Only what SEP<MAC>.cnf.xml can carry: lines and speed dials (no BLF, park, DND, URL)."""
    assert load("cisco_sep").key_types == ("line", "speed_dial")


def test_sep_sample_keys() -> None:
    """Button N is key N: line 1 on button 1, the speed dial on button 3; the other accounts
    take the buttons no key is set on, in slot order; unsupported types are not written."""
    lines = sep_lines(sep_root(KEYS_MODEL, SAMPLE_KEYS, accounts=3))
    assert sorted(lines, key=int) == ["1", "2", "3", "4"]
    assert (lines["1"]["featureID"], lines["1"]["name"]) == ("9", DEFAULTS["extension"])
    assert lines["1"]["featureLabel"] == DEFAULTS["extension"]  # a line key: main extension
    assert lines["3"] == {
        "featureID": "2",
        "featureLabel": "Reception",
        "speedDialNumber": "+390612345678",
    }
    assert lines["2"]["name"] == account_values(2)["extension"]
    assert lines["4"]["name"] == account_values(3)["extension"]
    assert lines["4"]["featureLabel"] == account_values(3)["cli"]


def test_sep_label_escaped_and_line_key_of_another_account() -> None:
    keys = (
        PhoneKey(1, "line", "2", "Sales & <Co>"),
        PhoneKey(2, "speed_dial", "*97", "Mail & <Box>"),
    )
    lines = sep_lines(sep_root(KEYS_MODEL, keys, accounts=2))
    assert (lines["1"]["name"], lines["1"]["featureLabel"]) == (
        account_values(2)["extension"],
        "Sales & <Co>",
    )
    assert lines["2"]["featureLabel"] == "Mail & <Box>"
    assert lines["2"]["speedDialNumber"] == "*97"
    # Account 1, named by no line key, takes the first free button.
    assert lines["3"]["name"] == DEFAULTS["extension"]
    assert sorted(lines, key=int) == ["1", "2", "3"]


def test_sep_key_beyond_the_phone_is_not_written() -> None:
    keys = (PhoneKey(2, "speed_dial", "123", "In"), PhoneKey(6, "speed_dial", "456", "Out"))
    lines = sep_lines(sep_root(KEYS_MODEL, keys))
    assert sorted(lines, key=int) == ["1", "2"]
    assert "456" not in str(lines)


def test_sep_without_keys_is_unchanged() -> None:
    lines = sep_lines(sep_root(KEYS_MODEL, (), accounts=3))
    assert sorted(lines, key=int) == ["1", "2", "3"]
    assert {line["featureID"] for line in lines.values()} == {"9"}


def test_sep_directory_url() -> None:
    root = sep_root(KEYS_MODEL, ())
    assert text_of(root, "directoryURL") == PHONEBOOK_URL
    (match,) = match_path([load("cisco_sep")], f"phonebook/{DEFAULTS['mac']}.xml")
    assert (match.spec.kind, match.mac) == (FileKind.PHONEBOOK, DEFAULTS["mac"])


def test_79x0_writes_no_keys() -> None:
    """The 79x0 SIP files have no button-function key: programmed keys change nothing."""

    def keys_of(keys: tuple[PhoneKey, ...]) -> dict[str, str]:
        context = phone_context("cisco_sep", "device", model=MODEL_79X0, keys=keys)
        return parse_key_values(render_path("cisco_sep", "SIP00562B043615.cnf", context), ":")

    assert keys_of(SAMPLE_KEYS) == keys_of(())
    assert keys_of(())["directory_url"] == PHONEBOOK_URL


def test_phone_book_file() -> None:
    context = phone_context("cisco_sep", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = render_path("cisco_sep", f"phonebook/{DEFAULTS['mac']}.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "CiscoIPPhoneDirectory"
    assert root.findtext("Title") == "Directory"
    entries = [(e.findtext("Name"), e.findtext("Telephone")) for e in root.iter("DirectoryEntry")]
    assert entries == [
        ("Anna Bianchi & <Co>", "202"),
        ("Anna Bianchi & <Co> (mobile)", "+393331234567"),
        ('Niccolò "Nico" D\'Àmbrosio', "203"),
        ("Rossi & <Figli>", "201"),
    ]


def test_module_keys_stay_zero() -> None:
    """No document read numbers module buttons in SEP<MAC>.cnf.xml."""
    assert {m.module_keys for m in catalogue_models().values() if m.vendor == "cisco_sep"} == {0}


def test_keys_case_matches_the_rendered_file() -> None:
    """tests/keys_cases/cisco_sep.toml holds for the device file as the template renders it."""
    case = tomllib.loads(KEYS_CASE.read_text(encoding="utf-8"))
    keys = (
        PhoneKey(1, "blf", "202", "Anna"),
        PhoneKey(2, "speed_dial", "0612345678", "Reception"),
        PhoneKey(3, "park", "701", None),
    )
    context = phone_context("cisco_sep", "device", model=case["model"], keys=keys)
    text = render_path("cisco_sep", SEP_PATH, context)
    assert case["blf"] == []
    assert case["park"] == []
    assert case["speed_dial"]
    for pattern in case["speed_dial"]:
        assert re.search(pattern, text, re.MULTILINE), pattern
    assert case["phonebook_format"] == "xml"
    assert catalogue_models()[case["model"]].line_keys >= 3
