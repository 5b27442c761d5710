"""Fanvil templates: <VOIP_CONFIG_FILE> (X-series, older firmware) or <sysConf> (every other
series) with the right values, for every account of the device."""

from __future__ import annotations

import re
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import load_vendor
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue,
    phone_context,
)

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
DEVICE_FILE = "001565aabbcc.cfg"
# One requested name per templated file spec, with the catalogue model it resolves to.
COMMON_FILES = {
    "f0X4hw1.100.cfg": "fanvil-x4",
    "F0V00X300000.cfg": "fanvil-x3s",
    "X6U.cfg": "fanvil-x6u",
}
TRANSPORT_CODES = {"udp": "0", "tcp": "1", "tls": "3"}
LEGACY_MODELS = ("fanvil-x3s", "fanvil-x4")  # older firmware: <VOIP_CONFIG_FILE>
LEGACY_LINE = "./SIP_CONFIG_MODULE/SIP_Line_List/SIP_Line_List_Entry"
LEGACY_TIME = "./GLOBAL_CONFIG_MODULE"
SYSCONF_TIME = "./phone/date"


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Fanvil description, loaded by the real loader."""
    return load_vendor(ROOT / "fanvil" / "vendor.toml")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The production renderer over the repository's templates."""
    return Renderer(ROOT)


def render(
    renderer: Renderer, vendor: VendorSpec, path: str, model: str, **options: Any
) -> ET.Element:
    """Render the file the phone gets for `path` and parse it (it must be clean XML)."""
    (found,) = match_path([vendor], path)
    context = phone_context("fanvil", found.spec.kind, model=model, **options)
    text = renderer.render("fanvil", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    root_tag = "VOIP_CONFIG_FILE" if catalogue()[model].series == "X" else "sysConf"
    assert text.startswith(f'<?xml version="1.0" encoding="UTF-8"?>\n<{root_tag}>')
    return ET.fromstring(text)


def time_values(root: ET.Element) -> dict[str, str]:
    """The time settings as {tag: text}, legacy names converted to the <sysConf> ones."""
    if root.tag == "VOIP_CONFIG_FILE":
        return {c.tag.replace("_", ""): c.text or "" for c in root.findall(f"{LEGACY_TIME}/*")}
    return {c.tag: c.text or "" for c in root.findall(f"{SYSCONF_TIME}/*")}


def line_values(root: ET.Element) -> dict[str, str]:
    """The children of <sip><line index="1"> as {tag: text}."""
    lines = root.findall("./sip/line")
    assert [line.get("index") for line in lines] == ["1"]
    return {child.tag: child.text or "" for child in lines[0]}


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_account(
    renderer: Renderer, vendor: VendorSpec, transport: str
) -> None:
    """Extension, auth name, password, display name and registrar under Fanvil's keys."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", transport=transport)
    assert line_values(root) == {
        "EnableReg": "1",
        "PhoneNumber": DEFAULTS["extension"],
        "DisplayName": "Rossi & <Figli>",
        "RegisterUser": DEFAULTS["auth_username"],
        "RegisterPswd": DEFAULTS["password"],
        "RegisterAddr": DEFAULTS["registrar"],
        "RegisterPort": "5061" if transport == "tls" else "5060",
        "Transport": TRANSPORT_CODES[transport],
        "ProxyAddr": "",
    }


def test_device_file_shows_label_and_presented_number(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """Fanvil has no caller-id key: the idle title shows the name (or label) and the CLI."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u")
    assert root.findtext("./phone/display/LCDTitle") == f"Rossi & <Figli> {DEFAULTS['cli']}"
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", label="Reception", cli="200")
    assert root.findtext("./phone/display/LCDTitle") == "Reception 200"
    # As the resolver passes it, a device without a label of its own has the CLI as label:
    # the title is then the name and the number once, never the number twice.
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", label="200", cli="200")
    assert root.findtext("./phone/display/LCDTitle") == "Rossi & <Figli> 200"
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", display_name="200", cli="200")
    assert root.findtext("./phone/display/LCDTitle") == "200"


def test_disabled_device_does_not_register(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device gets its account with registration switched off."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", enabled=False)
    assert line_values(root)["EnableReg"] == "0"


def test_outbound_proxy_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """A set outbound proxy lands in ProxyAddr/ProxyPort; unset, ProxyAddr is cleared."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", outbound_proxy="sbc.example.net")
    values = line_values(root)
    assert (values["ProxyAddr"], values["ProxyPort"]) == ("sbc.example.net", "5060")
    unset = line_values(render(renderer, vendor, DEVICE_FILE, "fanvil-x6u"))
    assert unset["ProxyAddr"] == ""
    assert "ProxyPort" not in unset


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_provisioning_and_firmware(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """NTP, time zone, provisioning URL and (only when set) the firmware URL (<sysConf>)."""
    model = "fanvil-x6u"
    url = "http://192.0.2.10:8080/firmware/x4.z"
    root = render(renderer, vendor, path, model, firmware_url=url)
    assert root.findtext("./phone/date/SNTPServer") == DEFAULTS["ntp_server"]
    assert root.findtext("./phone/date/TimeZone") == "4"  # UTC+1 in quarter hours
    assert root.findtext("./phone/date/EnableDST") == "2"
    assert root.findtext("./phone/display/DefaultLanguage") == DEFAULTS["language"]
    assert root.findtext("./ap/FlashServerIP") == "http://192.0.2.10:8080"
    assert root.findtext("./ap/FlashFileName") == "$mac.cfg"
    assert root.findtext("./ap/FlashProtocol") == "4"
    assert root.findtext("./AUTOUPDATE_CONFIG_MODULE/Auto_Image_URL") == url
    without = render(renderer, vendor, path, model)
    assert without.find("./AUTOUPDATE_CONFIG_MODULE") is None


def test_tftp_provisioning_leaves_the_protocol_alone(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """Only HTTP has a protocol code we are sure of; for TFTP the phone keeps its own."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", base_url="tftp://192.0.2.10/")
    assert root.findtext("./ap/FlashServerIP") == "tftp://192.0.2.10"
    assert root.find("./ap/FlashProtocol") is None


@pytest.mark.parametrize(("path", "model"), COMMON_FILES.items())
def test_common_files_hold_no_account(
    renderer: Renderer, vendor: VendorSpec, path: str, model: str
) -> None:
    """Model common files carry shared settings only: no <sip> block, no secret."""
    root = render(renderer, vendor, path, model, outbound_proxy="sbc.example.net")
    assert root.find("./sip") is None
    assert root.find("./SIP_CONFIG_MODULE") is None
    assert DEFAULTS["password"] not in "".join(root.itertext())
    assert FileKind.COMMON is match_path([vendor], path)[0].spec.kind


def legacy_line(root: ET.Element) -> dict[str, str]:
    """The children of the single <SIP_Line_List_Entry> as {tag: text}."""
    (entry,) = root.findall(LEGACY_LINE)
    return {child.tag: child.text or "" for child in entry}


@pytest.mark.parametrize("model", LEGACY_MODELS)
@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_legacy_models_get_voip_config_file(
    renderer: Renderer, vendor: VendorSpec, model: str, transport: str
) -> None:
    """X3S and X4 read <VOIP_CONFIG_FILE>: the account under its own (underscored) names."""
    root = render(renderer, vendor, DEVICE_FILE, model, transport=transport)
    assert root.find("./sip") is None
    assert legacy_line(root) == {
        "ID": "SIP1",
        "Enable_Reg": "1",
        "Phone_Number": DEFAULTS["extension"],
        "Display_Name": "Rossi & <Figli>",
        "Register_User": DEFAULTS["auth_username"],
        "Register_Pswd": DEFAULTS["password"],
        "Register_Addr": DEFAULTS["registrar"],
        "Register_Port": "5061" if transport == "tls" else "5060",
        "Transport": TRANSPORT_CODES[transport],
        "Proxy_Addr": "",
    }
    assert root.findtext("./PHONE_CONFIG_MODULE/LCD_Title") == f"Rossi & <Figli> {DEFAULTS['cli']}"
    assert root.findtext("./AUTOUPDATE_CONFIG_MODULE/Download_Server_IP") == (
        "http://192.0.2.10:8080"
    )
    assert root.findtext("./AUTOUPDATE_CONFIG_MODULE/Config_File_Name") == "$mac.cfg"


def test_legacy_outbound_proxy_and_common_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """Outbound proxy in Proxy_Addr/Proxy_Port; the X3S/X4 common files are legacy too."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", outbound_proxy="sbc.example.net")
    values = legacy_line(root)
    assert (values["Proxy_Addr"], values["Proxy_Port"]) == ("sbc.example.net", "5060")
    common = render(renderer, vendor, "f0X4hw1.100.cfg", "fanvil-x4")
    assert common.tag == "VOIP_CONFIG_FILE"
    assert time_values(common)["TimeZone"] == "4"
    assert render(renderer, vendor, "X6U.cfg", "fanvil-x6u").tag == "sysConf"


def _dst(values: dict[str, str]) -> tuple[str, ...]:
    """Start and end rules: month, week, weekday, hour, minute."""
    return tuple(
        values[f"DST{edge}{part}"]
        for edge in ("Start", "End")
        for part in ("Mon", "Week", "Wday", "Hour", "Min")
    )


ZONE_CASES = [
    # zone, TimeZone (quarter hours), start rule then end rule (week -1 = last, weekday 0 = Sunday)
    ("Europe/Rome", "4", ("3", "-1", "0", "2", "0", "10", "-1", "0", "3", "0")),
    ("America/New_York", "-20", ("3", "2", "0", "2", "0", "11", "1", "0", "2", "0")),
    ("Australia/Sydney", "40", ("10", "1", "0", "2", "0", "4", "1", "0", "3", "0")),
]


@pytest.mark.parametrize("model", ["fanvil-x4", "fanvil-x6u"])
@pytest.mark.parametrize(("timezone", "quarters", "rules"), ZONE_CASES)
def test_summer_time_is_written_as_yearly_rules(
    renderer: Renderer,
    vendor: VendorSpec,
    model: str,
    timezone: str,
    quarters: str,
    rules: tuple[str, ...],
) -> None:
    """Fanvil has no zone list here: the standard offset plus start/end rules, both formats."""
    for path in (DEVICE_FILE, "f0X4hw1.100.cfg" if model == "fanvil-x4" else "X6U.cfg"):
        values = time_values(render(renderer, vendor, path, model, timezone=timezone))
        assert values["TimeZone"] == quarters
        assert values["EnableDST"] == "2"
        assert values["DSTMinOffset"] == "60"
        assert _dst(values) == rules


@pytest.mark.parametrize("model", ["fanvil-x3s", "fanvil-x6u"])
def test_zone_without_summer_time(renderer: Renderer, vendor: VendorSpec, model: str) -> None:
    """Asia/Kolkata: UTC+5:30 is 22 quarter hours, summer time off, no rule keys."""
    values = time_values(render(renderer, vendor, DEVICE_FILE, model, timezone="Asia/Kolkata"))
    assert (values["TimeZone"], values["EnableDST"]) == ("22", "0")
    assert not any(key.startswith("DST") for key in values)


def test_vendor_has_no_zone_list(vendor: VendorSpec) -> None:
    """No Fanvil zone list: every zone takes the documented fallback (offset plus rules)."""
    assert not vendor.timezones
    assert phone_context("fanvil", "common", timezone="Asia/Kolkata")["time"]["zone_name"] == ""


CREDENTIALS = {
    "fanvil-x4": (
        "./AUTOUPDATE_CONFIG_MODULE/Download_Username",
        "./AUTOUPDATE_CONFIG_MODULE/Download_Password",
    ),
    "fanvil-x3s": (
        "./AUTOUPDATE_CONFIG_MODULE/Download_Username",
        "./AUTOUPDATE_CONFIG_MODULE/Download_Password",
    ),
    "fanvil-x6u": ("./ap/DefaultUsername", "./ap/DefaultPassword"),
}


@pytest.mark.parametrize("model", CREDENTIALS)
def test_device_file_carries_provisioning_credentials(
    renderer: Renderer, vendor: VendorSpec, model: str
) -> None:
    """The auto-provisioning server user/password go in <mac>.cfg, and only when set."""
    user_path, password_path = CREDENTIALS[model]
    root = render(renderer, vendor, DEVICE_FILE, model, prov_password="provPass1")
    found = (root.findtext(user_path), root.findtext(password_path))
    assert found == (DEFAULTS["mac"], "provPass1")
    without = render(renderer, vendor, DEVICE_FILE, model)
    assert without.find(user_path) is None
    assert without.find(password_path) is None


# --- Several accounts per device --------------------------------------------------------------


def _expected_sysconf(slot: int) -> dict[str, str]:
    """The <line index=slot> of account `slot` (2 and up) of the test device, UDP, no proxy."""
    values = account_values(slot)
    return {
        "EnableReg": "1",
        "PhoneNumber": values["extension"],
        "DisplayName": values["display_name"],
        "RegisterUser": values["auth_username"],
        "RegisterPswd": values["password"],
        "RegisterAddr": DEFAULTS["registrar"],
        "RegisterPort": "5060",
        "Transport": "0",
        "ProxyAddr": "",
    }


def sysconf_lines(root: ET.Element) -> dict[str, dict[str, str]]:
    """Every <sip><line> as {index: {tag: text}}."""
    return {
        line.get("index") or "": {child.tag: child.text or "" for child in line}
        for line in root.findall("./sip/line")
    }


@pytest.mark.parametrize(
    ("model", "last"),
    [("fanvil-x6u", 20), ("fanvil-x4u", 12), ("fanvil-v64", 12), ("fanvil-i10sv", 2)],
)
def test_sysconf_writes_every_account(
    renderer: Renderer, vendor: VendorSpec, model: str, last: int
) -> None:
    """<sysConf>: one <line index="N"> per account, slot 1 unchanged, slot 2 and the last
    slot under the same keys with their own values."""
    assert catalogue()[model].accounts == last
    root = render(renderer, vendor, DEVICE_FILE, model, accounts=last)
    lines = sysconf_lines(root)
    assert list(lines) == [str(slot) for slot in range(1, last + 1)]
    assert lines["1"]["PhoneNumber"] == DEFAULTS["extension"]
    assert lines["1"]["RegisterPswd"] == DEFAULTS["password"]
    assert lines["2"] == _expected_sysconf(2)
    assert lines[str(last)] == _expected_sysconf(last)
    # The idle-screen title stays the device's own (slot 1).
    assert root.findtext("./phone/display/LCDTitle") == f"Rossi & <Figli> {DEFAULTS['cli']}"


def test_sysconf_accounts_share_transport_and_proxy(renderer: Renderer, vendor: VendorSpec) -> None:
    """Every account registers at the platform's registrar, transport and outbound proxy."""
    root = render(
        renderer,
        vendor,
        DEVICE_FILE,
        "fanvil-v65",
        accounts=3,
        transport="tls",
        outbound_proxy="sbc.example.net",
    )
    for values in sysconf_lines(root).values():
        assert (values["RegisterPort"], values["Transport"]) == ("5061", "3")
        assert (values["ProxyAddr"], values["ProxyPort"]) == ("sbc.example.net", "5061")


def legacy_entries(root: ET.Element) -> dict[str, dict[str, str]]:
    """Every <SIP_Line_List_Entry> as {ID: {tag: text}}."""
    entries = {}
    for entry in root.findall(LEGACY_LINE):
        values = {child.tag: child.text or "" for child in entry}
        entries[values.pop("ID")] = values
    return entries


@pytest.mark.parametrize(("model", "last"), [("fanvil-x4", 4), ("fanvil-x6", 6)])
def test_legacy_writes_every_account(
    renderer: Renderer, vendor: VendorSpec, model: str, last: int
) -> None:
    """<VOIP_CONFIG_FILE>: one <SIP_Line_List_Entry> per account, <ID>SIP<N></ID>."""
    assert catalogue()[model].accounts == last
    root = render(renderer, vendor, DEVICE_FILE, model, accounts=last)
    entries = legacy_entries(root)
    assert list(entries) == [f"SIP{slot}" for slot in range(1, last + 1)]
    assert entries["SIP1"]["Phone_Number"] == DEFAULTS["extension"]
    for slot in (2, last):
        values = account_values(slot)
        assert entries[f"SIP{slot}"] == {
            "Enable_Reg": "1",
            "Phone_Number": values["extension"],
            "Display_Name": values["display_name"],
            "Register_User": values["auth_username"],
            "Register_Pswd": values["password"],
            "Register_Addr": DEFAULTS["registrar"],
            "Register_Port": "5060",
            "Transport": "0",
            "Proxy_Addr": "",
        }


# --- Format per series, newer common-file names ----------------------------------------------


@pytest.mark.parametrize(
    ("model", "root_tag"),
    [
        ("fanvil-x1s", "VOIP_CONFIG_FILE"),
        ("fanvil-x3sg", "VOIP_CONFIG_FILE"),
        ("fanvil-x5s", "VOIP_CONFIG_FILE"),
        ("fanvil-x7c", "sysConf"),
        ("fanvil-x210", "sysConf"),
        ("fanvil-v67", "sysConf"),
        ("fanvil-i53w", "sysConf"),
        ("fanvil-h2u-v2", "sysConf"),
        ("fanvil-w611w", "sysConf"),
    ],
)
def test_format_follows_the_series(
    renderer: Renderer, vendor: VendorSpec, model: str, root_tag: str
) -> None:
    """The older X-series firmware reads <VOIP_CONFIG_FILE>; every other series <sysConf>."""
    assert render(renderer, vendor, DEVICE_FILE, model).tag == root_tag


@pytest.mark.parametrize(
    ("path", "family", "model", "root_tag"),
    [
        ("F0V0V6700000.cfg", "V67", "fanvil-v67", "sysConf"),
        ("F0V0i6100000.cfg", "i61", "fanvil-i61", "sysConf"),
        ("F0Vi51W00000.cfg", "i51W", "fanvil-i51w", "sysConf"),
        ("F0V00X5S0000.cfg", "X5S", "fanvil-x5s", "VOIP_CONFIG_FILE"),
        ("f0X3sghw1.100.cfg", "X3sg", "fanvil-x3sg", "VOIP_CONFIG_FILE"),
    ],
)
def test_newer_common_file_names(
    renderer: Renderer, vendor: VendorSpec, path: str, family: str, model: str, root_tag: str
) -> None:
    """Common-file names of the V- and i-series resolve to their family, like the X-series'."""
    (found,) = match_path([vendor], path)
    assert (found.spec.kind, found.family) == (FileKind.COMMON, family)
    assert catalogue()[model].family.lower() == family.lower()
    root = render(renderer, vendor, path, model)
    assert root.tag == root_tag
    assert DEFAULTS["password"] not in "".join(root.itertext())


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") ----------

MAC = DEFAULTS["mac"]


def fkeys(root: ET.Element) -> dict[str, tuple[str, str, str]]:
    """Page 1 of the side DSS keys as {index: (Type, Value, Title)}."""
    pages = root.findall("./dsskey/dssSide")
    assert [page.get("index") for page in pages] == ["1"]
    return {
        fkey.get("index") or "": (
            fkey.findtext("Type") or "",
            fkey.findtext("Value") or "",
            fkey.findtext("Title") or "",
        )
        for fkey in pages[0].findall("Fkey")
    }


def test_sample_keys_land_in_dss_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """Line = type 2 SIP<account>; BLF, speed dial, park = memory key (type 1) with
    <number>@<account>/ba, /f, /c; DND and URL are no Fanvil key type here (not written)."""
    assert vendor.key_types == ("line", "blf", "speed_dial", "park")
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4u", keys=SAMPLE_KEYS)
    assert fkeys(root) == {
        "1": ("2", "SIP1", DEFAULTS["extension"]),
        "2": ("1", "202@1/ba", "Anna & <Co>"),
        "3": ("1", "+390612345678@1/f", "Reception"),
        "4": ("1", "701@1/c", "Park"),
    }


def test_label_is_escaped_once(renderer: Renderer, vendor: VendorSpec) -> None:
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("fanvil", "device", model="fanvil-v64", keys=SAMPLE_KEYS)
    text = renderer.render("fanvil", found.spec, context).decode("utf-8")
    assert "<Title>Anna &amp; &lt;Co&gt;</Title>" in text


def test_second_account_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """A line key and a BLF of account 2 name SIP2 / @2."""
    keys = (PhoneKey(1, "line", "2"), PhoneKey(2, "blf", "202", "Anna"))
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x6u", keys=keys, accounts=2)
    assert fkeys(root)["1"] == ("2", "SIP2", account_values(2)["extension"])
    assert fkeys(root)["2"] == ("1", "202@1/ba", "Anna")


def test_no_keys_no_dsskey(renderer: Renderer, vendor: VendorSpec) -> None:
    """Without keys the phone keeps its own: no <dsskey> at all."""
    assert render(renderer, vendor, DEVICE_FILE, "fanvil-x4u").find("./dsskey") is None


def test_key_beyond_the_model_never_appears(renderer: Renderer, vendor: VendorSpec) -> None:
    """X3U: 3 line keys, no module; the park key (position 4) is not written."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x3u", keys=SAMPLE_KEYS)
    assert list(fkeys(root)) == ["1", "2", "3"]
    assert "701" not in ET.tostring(root, encoding="unicode")


@pytest.mark.parametrize("model", ["fanvil-x4", "fanvil-i10sv", "fanvil-h2u", "fanvil-w611w"])
def test_other_series_write_no_keys_or_phone_book(
    renderer: Renderer, vendor: VendorSpec, model: str
) -> None:
    """Keys and the cloud phone book only for the XU and V series (README.md)."""
    root = render(renderer, vendor, DEVICE_FILE, model, keys=SAMPLE_KEYS)
    assert root.find("./dsskey") is None
    assert root.find(".//xmlContact") is None


def test_phone_book_in_the_device_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """Cloud phone book 1: title, this device's phone book URL and its credentials."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-v65", prov_password="provPass1")
    (entry,) = root.findall("./phone/xmlContact")
    assert entry.get("index") == "1"
    assert {child.tag: child.text or "" for child in entry} == {
        "Name": phone_context("fanvil", "device", model="fanvil-v65")["phonebook"]["title"],
        "Addr": f"http://192.0.2.10:8080/phonebook/{MAC}.xml",
        "UserName": MAC,
        "PassWd": "provPass1",
    }
    assert vendor.phonebook_path(MAC) == f"phonebook/{MAC}.xml"


def test_phone_book_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """Every name exactly (accents, &, quotes) with its extension; a mobile is a second entry."""
    (found,) = match_path([vendor], f"phonebook/{MAC}.xml")
    assert found.spec.kind is FileKind.PHONEBOOK
    context = phone_context("fanvil", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = renderer.render("fanvil", found.spec, context).decode("utf-8")
    root = ET.fromstring(text)
    entries = [
        (e.findtext("Name"), e.findtext("Telephone")) for e in root.findall("DirectoryEntry")
    ]
    assert entries == [
        ("Anna Bianchi & <Co>", "202"),
        ("Anna Bianchi & <Co> (mobile)", "+393331234567"),
        ('Niccolò "Nico" D\'Àmbrosio', "203"),
        ("Rossi & <Figli>", "201"),
    ]


def test_keys_case_matches_the_device_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """tests/keys_cases/fanvil.toml holds for the file as rendered."""
    case = tomllib.loads((ROOT.parent / "tests" / "keys_cases" / "fanvil.toml").read_text())
    keys = (
        PhoneKey(1, "blf", "202", "Anna"),
        PhoneKey(2, "speed_dial", "0612345678", "Reception"),
        PhoneKey(3, "park", "701", None),
    )
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("fanvil", "device", model=case["model"], keys=keys)
    text = renderer.render("fanvil", found.spec, context).decode("utf-8")
    for kind in ("blf", "speed_dial", "park"):
        assert case[kind]
        for pattern in case[kind]:
            assert re.search(pattern, text, re.MULTILINE), (kind, pattern)
