"""Cisco SPA / MPP templates: the model profile and the per-MAC <flat-profile>."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind, match_path
from provisiond.domain.keys import PhoneKey
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
    render_path,
    xml_root,
)

MODEL = "cisco-spa508g"
FIRMWARE = "http://192.0.2.10:8080/firmware/spa50x-30x-7-6-2e.bin"
MAC_RULE = f"{PROVISIONING_BASE_URL}$MA.xml"
PHONEBOOK_URL = f"{PROVISIONING_BASE_URL}phonebook/{DEFAULTS['mac']}.xml"
# Europe/Rome (the sample default): last Sunday of March 02:00 to last Sunday of October 03:00.
ROME_RULE = "start=3/-1/7/2;end=10/-1/7/3;save=1"
MODEL_FILES = [
    ("spa508G.cfg", "cisco-spa508g"),
    ("spa942.cfg", "cisco-spa942"),
    ("CP-8841-3PCC.xml", "cisco-cp-8841-3pcc"),
    ("CP-7841-3PCC.xml", "cisco-cp-7841-3pcc"),
    ("8841-3PCC.xml", "cisco-cp-8841-3pcc"),  # the MPP factory rule /$PSN.xml
    ("7841-3PCC.xml", "cisco-cp-7841-3pcc"),
]


def flat_profile(text: str) -> dict[str, str]:
    """The parameters of a <flat-profile> (tag -> text), each once, each with ua="na"."""
    root = xml_root(text)
    assert root.tag == "flat-profile"
    params: dict[str, str] = {}
    for element in root:
        assert element.tag not in params, element.tag
        assert element.attrib == {"ua": "na"}, element.tag
        params[element.tag] = element.text or ""
    return params


def expected_settings(firmware_url: str) -> dict[str, str]:
    """Parameters shared by the model profile and the per-MAC profile (Europe/Rome)."""
    params = {
        "Primary_NTP_Server": DEFAULTS["ntp_server"],
        "Time_Zone": "GMT+01:00",
        "Daylight_Saving_Time_Enable": "Yes",
        "Daylight_Saving_Time_Rule": ROME_RULE,
        "Resync_On_Reset": "Yes",
        "Resync_From_SIP": "Yes",
    }
    if firmware_url:
        params |= {"Upgrade_Enable": "Yes", "Upgrade_Rule": firmware_url}
    return params


def test_no_zone_name_list() -> None:
    """Cisco's Time_Zone is a list of GMT offsets, not names: no timezones.toml."""
    assert not (TEMPLATES_ROOT / "cisco_spa" / "timezones.toml").exists()
    context = phone_context("cisco_spa", "common", model=MODEL)
    assert context["time"]["zone_name"] == ""


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
@pytest.mark.parametrize("credentials", [False, True])
def test_device_profile(transport: str, proxy: str, firmware_url: str, credentials: bool) -> None:
    context = phone_context(
        "cisco_spa",
        "device",
        model=MODEL,
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("cisco_spa", "0002FDFF2103.xml", context)
    assert_no_leftovers(text)
    port = "5061" if transport == "tls" else "5060"
    expected = {
        "Station_Name": "Rossi & <Figli>",
        "Line_Enable_1_": "Yes",
        "Display_Name_1_": "Rossi & <Figli>",
        "Short_Name_1_": DEFAULTS["cli"],
        "User_ID_1_": DEFAULTS["extension"],
        "Use_Auth_ID_1_": "Yes",
        "Auth_ID_1_": DEFAULTS["auth_username"],
        "Password_1_": DEFAULTS["password"],
        "Proxy_1_": f"{DEFAULTS['registrar']}:{port}",
        "Register_1_": "Yes",
        "SIP_Transport_1_": transport.upper(),
        "Use_Outbound_Proxy_1_": "Yes" if proxy else "No",
        # The device file takes over the rule the phone keeps, with its own credentials,
        # and empties Profile_Rule_B (set by the model file) so $MA.xml is fetched once.
        "Profile_Rule": f"[--uid {DEFAULTS['mac']} --pwd provPass1] {MAC_RULE}"
        if credentials
        else MAC_RULE,
        "Profile_Rule_B": "",
        "Report_Rule": f"{PROVISIONING_BASE_URL}$MA-report.xml",
        # The company phone book, read with the device's own credentials when it has them.
        "XML_Directory_Service_Name": "Directory",
        "XML_Directory_Service_URL": PHONEBOOK_URL,
        **expected_settings(firmware_url),
    }
    if credentials:
        expected |= {"XML_User_Name": DEFAULTS["mac"], "XML_Password": "provPass1"}
    if proxy:
        expected["Outbound_Proxy_1_"] = f"{proxy}:{port}"
    assert flat_profile(text) == expected


def test_device_profile_without_credentials_has_no_options() -> None:
    text = render_path(
        "cisco_spa", "0002fdff2103.xml", phone_context("cisco_spa", "device", model=MODEL)
    )
    assert "--uid" not in text
    assert "--pwd" not in text


def test_label_and_disabled_line() -> None:
    context = phone_context("cisco_spa", "device", model=MODEL, label="Front desk", enabled=False)
    params = flat_profile(render_path("cisco_spa", "0002fdff2103.xml", context))
    assert params["Short_Name_1_"] == "Front desk"
    assert (params["Line_Enable_1_"], params["Register_1_"]) == ("No", "No")


@pytest.mark.parametrize(("path", "model"), MODEL_FILES)
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_model_profile(path: str, model: str | None, firmware_url: str) -> None:
    """The model file keeps the factory Profile_Rule and adds the per-MAC rule as rule B.

    It never carries credentials, even for a device that has some (common files never do).
    """
    context = phone_context(
        "cisco_spa", "common", model=model, firmware_url=firmware_url, prov_password="provPass1"
    )
    text = render_path("cisco_spa", path, context)
    assert_no_leftovers(text)
    assert flat_profile(text) == {
        "Provision_Enable": "Yes",
        "Profile_Rule_B": MAC_RULE,
        **expected_settings(firmware_url),
    }
    assert "provPass1" not in text


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("CP-8841-3PCC.xml", "8841-3PCC"),
        ("cp-7841-3pcc.xml", "7841-3pcc"),
        ("8841-3PCC.xml", "8841-3PCC"),
        ("7841-3pcc.xml", "7841-3pcc"),
        ("spa525G2.cfg", "spa525G2"),
    ],
)
def test_model_file_names(path: str, family: str | None) -> None:
    """Both MPP names are served: the catalogue family (CP-...) and the factory $PSN name."""
    (match,) = match_path([load("cisco_spa")], path)
    assert (match.spec.kind, match.family, match.mac) == (FileKind.COMMON, family, None)


@pytest.mark.parametrize(
    ("zone", "time_zone", "rule"),
    [
        ("Europe/Rome", "GMT+01:00", ROME_RULE),
        # Second Sunday of March (on or after the 8th) to the first Sunday of November.
        ("America/New_York", "GMT-05:00", "start=3/8/7/2;end=11/1/7/2;save=1"),
        # Southern hemisphere: summer time starts in October and ends in April.
        ("Australia/Sydney", "GMT+10:00", "start=10/1/7/2;end=4/1/7/3;save=1"),
        ("Europe/London", "GMT", "start=3/-1/7/1;end=10/-1/7/2;save=1"),
        # Half-hour offset west of GMT, and a half-hour summer shift.
        ("America/St_Johns", "GMT-03:30", "start=3/8/7/2;end=11/1/7/2;save=1"),
        ("Australia/Lord_Howe", "GMT+10:30", "start=10/1/7/2;end=4/1/7/2;save=0:30"),
        # No summer time: the standard offset alone.
        ("Asia/Kolkata", "GMT+05:30", None),
        ("Asia/Tokyo", "GMT+09:00", None),
        ("UTC", "GMT", None),
    ],
)
@pytest.mark.parametrize(("kind", "path"), [("common", "spa508G.cfg"), ("device", "a.xml")])
def test_zone_as_rules(zone: str, time_zone: str, rule: str | None, kind: str, path: str) -> None:
    """The offset and the summer-time rule the phone applies all year, in both files."""
    context = phone_context("cisco_spa", kind, model=MODEL, timezone=zone)
    if kind == "device":
        path = "0002fdff2103.xml"
    params = flat_profile(render_path("cisco_spa", path, context))
    assert params["Time_Zone"] == time_zone
    assert params["Daylight_Saving_Time_Enable"] == ("Yes" if rule else "No")
    assert params.get("Daylight_Saving_Time_Rule") == rule


@pytest.mark.parametrize(
    ("timezone", "zone"),
    [("UTC", "GMT"), ("Asia/Kolkata", "GMT+05:30"), ("America/Sao_Paulo", "GMT-03:00")],
)
def test_time_zone_format(timezone: str, zone: str) -> None:
    context = phone_context("cisco_spa", "common", model=MODEL, timezone=timezone)
    assert flat_profile(render_path("cisco_spa", "spa508G.cfg", context))["Time_Zone"] == zone


def test_dst_rule_minutes_and_fifth_week() -> None:
    """Chatham changes at 2:45 and 3:45 (the minutes are kept), starting on the last Sunday
    of September (week 5: the last such weekday, -1)."""
    context = phone_context("cisco_spa", "common", model=MODEL, timezone="Pacific/Chatham")
    params = flat_profile(render_path("cisco_spa", "spa508G.cfg", context))
    assert params["Time_Zone"] == "GMT+12:45"
    assert params["Daylight_Saving_Time_Rule"] == "start=9/-1/7/2:45;end=4/1/7/3:45;save=1"


def test_readme_cites_every_written_key() -> None:
    """Every element the templates write is named in the README with its source."""
    readme = (TEMPLATES_ROOT / "cisco_spa" / "README.md").read_text(encoding="utf-8")
    tags: set[str] = set()
    for path, model in (("spa508G.cfg", MODEL), ("0002fdff2103.xml", MODEL)):
        kind = "common" if path.endswith(".cfg") else "device"
        context = phone_context(
            "cisco_spa",
            kind,
            model=model,
            firmware_url=FIRMWARE,
            outbound_proxy="sbc.example.net",
            prov_password="p" if kind == "device" else "",
        )
        tags |= set(flat_profile(render_path("cisco_spa", path, context)))
    missing = sorted(tag for tag in tags if f"`{tag}`" not in readme)
    assert missing == []


def account_params(n: int, slot_values: dict[str, str], port: str = "5060") -> dict[str, str]:
    """The _n_ parameters of account slot `n` (an enabled account, no outbound proxy)."""
    return {
        f"Line_Enable_{n}_": "Yes",
        f"Display_Name_{n}_": slot_values["display_name"],
        f"User_ID_{n}_": slot_values["extension"],
        f"Use_Auth_ID_{n}_": "Yes",
        f"Auth_ID_{n}_": slot_values["auth_username"],
        f"Password_{n}_": slot_values["password"],
        f"Proxy_{n}_": f"{DEFAULTS['registrar']}:{port}",
        f"Register_{n}_": "Yes",
        f"SIP_Transport_{n}_": "UDP",
        f"Use_Outbound_Proxy_{n}_": "No",
    }


@pytest.mark.parametrize(
    ("model", "accounts"),
    [
        ("cisco-spa508g", 8),  # SPA500: Ext 1..8, line keys 1..8
        ("cisco-spa509g", 12),
        ("cisco-cp-8841-3pcc", 10),  # MPP 8800: Ext 1..10
        ("cisco-cp-7861-3pcc", 16),
        ("cisco-cp-6821-3pcc", 2),
        ("cisco-spa962", 6),
    ],
)
def test_every_account_of_a_phone(model: str, accounts: int) -> None:
    """Slot n is Ext n: the same parameters as line 1 with the _n_ suffix, and the label of
    line key n (the key's extension is n by default)."""
    context = phone_context("cisco_spa", "device", model=model, accounts=accounts)
    params = flat_profile(render_path("cisco_spa", "0002fdff2103.xml", context))
    for slot in (2, accounts):
        values = account_values(slot)
        expected = account_params(slot, values) | {f"Short_Name_{slot}_": values["cli"]}
        assert {key: params.get(key) for key in expected} == expected, slot
    # Nothing beyond the model's last account.
    assert f"User_ID_{accounts + 1}_" not in params
    assert params["User_ID_1_"] == DEFAULTS["extension"]
    assert params["Station_Name"] == "Rossi & <Figli>"


def test_accounts_beyond_the_line_keys_have_no_label() -> None:
    """The MPP 7811 has one account and no line key: line 1 keeps its label (as every phone),
    nothing else is written."""
    context = phone_context("cisco_spa", "device", model="cisco-cp-7811-3pcc", accounts=3)
    params = flat_profile(render_path("cisco_spa", "0002fdff2103.xml", context))
    assert params["Short_Name_1_"] == DEFAULTS["cli"]
    assert "User_ID_2_" not in params  # one account: slot 2 is dropped by the context


@pytest.mark.parametrize(
    ("model", "path", "accounts"),
    [
        ("cisco-spa112", "0002fdff2103.xml", 2),  # two FXS ports: Line 1, Line 2
        ("cisco-spa8000", "0002fdff2103.xml", 8),
        ("cisco-ata192-mpp", "0002fdff2103.xml", 2),
    ],
)
def test_ata_one_account_per_port(model: str, path: str, accounts: int) -> None:
    """An ATA: Line n (FXS port n) carries account n; no station name, no line keys."""
    context = phone_context("cisco_spa", "device", model=model, accounts=accounts)
    params = flat_profile(render_path("cisco_spa", path, context))
    assert account_params(1, {**DEFAULTS, "display_name": "Rossi & <Figli>"}).items() <= (
        params.items()
    )
    for slot in (2, accounts):
        assert account_params(slot, account_values(slot)).items() <= params.items(), slot
    assert not [key for key in params if key.startswith(("Short_Name", "Station_Name"))]


def test_extra_account_over_tls_behind_an_outbound_proxy() -> None:
    context = phone_context(
        "cisco_spa",
        "device",
        model="cisco-spa504g",
        accounts=4,
        transport="tls",
        outbound_proxy="sbc.example.net",
    )
    params = flat_profile(render_path("cisco_spa", "0002fdff2103.xml", context))
    assert {key: params[key] for key in params if key.endswith("_4_")} == {
        "Line_Enable_4_": "Yes",
        "Display_Name_4_": account_values(4)["display_name"],
        "Short_Name_4_": account_values(4)["cli"],
        "User_ID_4_": account_values(4)["extension"],
        "Use_Auth_ID_4_": "Yes",
        "Auth_ID_4_": account_values(4)["auth_username"],
        "Password_4_": account_values(4)["password"],
        "Proxy_4_": f"{DEFAULTS['registrar']}:5061",
        "Register_4_": "Yes",
        "SIP_Transport_4_": "TLS",
        "Use_Outbound_Proxy_4_": "Yes",
        "Outbound_Proxy_4_": "sbc.example.net:5061",
    }


@pytest.mark.parametrize(
    ("path", "model"),
    [
        ("spa112.cfg", "cisco-spa112"),
        ("spa2102.cfg", "cisco-spa2102"),
        ("spa509G.cfg", "cisco-spa509g"),
        ("ata191.cfg", "cisco-ata191-mpp"),  # ATA 191/192 multiplatform: /ata$PSN.cfg
        ("6871-3PCC.xml", "cisco-cp-6871-3pcc"),
        ("CP-8832-3PCC.xml", "cisco-cp-8832-3pcc"),
    ],
)
def test_new_model_files(path: str, model: str) -> None:
    """The first file of each family resolves to its model and points at $MA.xml."""
    (match,) = match_path([load("cisco_spa")], path)
    assert match.spec.kind is FileKind.COMMON
    assert catalogue_models()[model].family.lower() == (match.family or "").lower()
    context = phone_context("cisco_spa", "common", model=model)
    assert flat_profile(render_path("cisco_spa", path, context))["Profile_Rule_B"] == MAC_RULE


# --- Keys and phone book (README "Keys and phone book") ------------------------------------

KEM_MODEL = "cisco-cp-8851-3pcc"  # 10 line keys, 2 modules of 28 keys
KEYS_CASE = Path(__file__).resolve().parents[1] / "keys_cases" / "cisco_spa.toml"


def device_params(
    model: str, keys: tuple[PhoneKey, ...], accounts: int = 1, prov_password: str = ""
) -> dict[str, str]:
    """The device file's parameters for a device with `keys`."""
    context = phone_context(
        "cisco_spa",
        "device",
        model=model,
        keys=keys,
        accounts=accounts,
        prov_password=prov_password,
    )
    text = render_path("cisco_spa", "0002fdff2103.xml", context)
    assert_no_leftovers(text)
    return flat_profile(text)


def function_fields(value: str) -> dict[str, str]:
    """An Extended Function string "fnc=type(;name=value)*" as name -> value."""
    fields = dict(field.split("=", 1) for field in value.split(";"))
    assert len(fields) == value.count(";") + 1, value
    return fields


def test_sample_keys_land_under_the_documented_parameters() -> None:
    params = device_params(KEM_MODEL, SAMPLE_KEYS)
    phone_keys = {
        n: (
            params[f"Extension_{n}_"],
            params[f"Short_Name_{n}_"],
            params[f"Extended_Function_{n}_"],
        )
        for n in range(1, 11)
    }
    # Line key 1: the account's extension, its main extension as the label, no function.
    assert phone_keys[1] == ("1", DEFAULTS["extension"], "")
    functions = {n: function_fields(phone_keys[n][2]) for n in range(2, 7)}
    assert functions == {
        2: {"fnc": "blf+sd+cp", "sub": "202@$PROXY", "ext": "202@$PROXY", "nme": "Anna & <Co>"},
        3: {"fnc": "sd", "ext": "+390612345678@$PROXY", "nme": "Reception"},
        4: {"fnc": "prk", "sub": "701@$PROXY", "nme": "Park"},
        5: {"fnc": "dnd", "nme": "DND"},
        6: {"fnc": "xml", "url": "https://intranet.example.net/a?b=1&c=2", "nme": "Intranet"},
    }
    assert [phone_keys[n][:2] for n in range(2, 7)] == [
        ("Disabled", "Anna & <Co>"),
        ("Disabled", "Reception"),
        ("Disabled", "Park"),
        ("Disabled", "DND"),
        ("Disabled", "Intranet"),
    ]
    # Keys 7..10 have no programmed key: emptied, so a removed key disappears.
    assert [phone_keys[n] for n in range(7, 11)] == [("Disabled", "", "")] * 4
    assert not [tag for tag in params if tag.startswith("Unit_")]


def test_label_is_escaped_for_xml() -> None:
    context = phone_context("cisco_spa", "device", model=KEM_MODEL, keys=SAMPLE_KEYS)
    text = render_path("cisco_spa", "0002fdff2103.xml", context)
    assert "nme=Anna &amp; &lt;Co&gt;</Extended_Function_2_>" in text
    assert '<Short_Name_2_ ua="na">Anna &amp; &lt;Co&gt;</Short_Name_2_>' in text


def test_separator_cannot_add_a_field() -> None:
    """ ";" separates the fields: a label loses it, a URL carries it percent-encoded."""
    keys = (
        PhoneKey(1, "speed_dial", "123", "a;fnc=dnd"),
        PhoneKey(2, "url", "https://x.example/a;b?c=d", "Web"),
        PhoneKey(3, "park", "", None),
    )
    params = device_params(KEM_MODEL, keys)
    assert function_fields(params["Extended_Function_1_"]) == {
        "fnc": "sd",
        "ext": "123@$PROXY",
        "nme": "a,fnc=dnd",
    }
    assert function_fields(params["Extended_Function_2_"])["url"] == "https://x.example/a%3Bb?c=d"
    # A park key without an orbit: the documented private-line form.
    assert function_fields(params["Extended_Function_3_"]) == {
        "fnc": "prk",
        "sub": "$USER@$PROXY",
        "nme": "Park",
    }


def test_line_key_of_another_account() -> None:
    """A line key names its account slot; the account's own label is not written twice."""
    keys = (PhoneKey(1, "line", "1", None), PhoneKey(3, "line", "2", "Sales"))
    params = device_params("cisco-spa508g", keys, accounts=2)
    assert (params["Extension_1_"], params["Short_Name_1_"]) == ("1", DEFAULTS["extension"])
    assert (params["Extension_3_"], params["Short_Name_3_"]) == ("2", "Sales")
    assert params["Extended_Function_3_"] == ""
    assert (params["Extension_2_"], params["Short_Name_2_"]) == ("Disabled", "")
    assert params["User_ID_2_"] == account_values(2)["extension"]


def test_module_keys_and_capacity() -> None:
    """Module u, key k: Unit_u_Key_k_; a line key cannot go to a module; nothing beyond the
    model's 10 + 2 x 28 positions is written."""
    keys = (
        PhoneKey(11, "speed_dial", "555", "M1"),  # module 1, key 1
        PhoneKey(41, "blf", "203", "Bob"),  # module 2, key 3
        PhoneKey(42, "line", "1", None),  # module 2, key 4: not writable
        PhoneKey(66, "dnd", "", None),  # module 2, key 28: the last position
        PhoneKey(67, "speed_dial", "999", "Beyond"),  # no such position
    )
    params = device_params(KEM_MODEL, keys)
    units = {tag: value for tag, value in params.items() if tag.startswith("Unit_")}
    assert units == {
        "Unit_1_Key_1_": "fnc=sd;ext=555@$PROXY;nme=M1",
        "Unit_2_Key_3_": "fnc=blf+sd+cp;sub=203@$PROXY;ext=203@$PROXY;nme=Bob",
        "Unit_2_Key_28_": "fnc=dnd;nme=DND",
    }
    assert "999" not in "".join(params.values())
    # Every phone key is free: all emptied.
    assert {params[f"Extension_{n}_"] for n in range(1, 11)} == {"Disabled"}


def test_no_keys_no_key_parameters() -> None:
    params = device_params(KEM_MODEL, ())
    assert not [
        tag for tag in params if tag.startswith(("Extension_", "Extended_Function_", "Unit_"))
    ]
    assert params["Short_Name_1_"] == DEFAULTS["cli"]


def test_keys_beyond_a_phone_without_modules() -> None:
    """The 7841 has 4 line keys and no module: keys 5 and on are never written."""
    params = device_params("cisco-cp-7841-3pcc", SAMPLE_KEYS)
    assert [tag for tag in params if tag.startswith("Extension_")] == [
        f"Extension_{n}_" for n in range(1, 5)
    ]
    assert "DND" not in params.values()
    assert not [tag for tag in params if tag.startswith("Unit_")]


def test_ata_has_no_keys_and_no_phone_book() -> None:
    params = device_params("cisco-spa112", SAMPLE_KEYS, accounts=2)
    assert not [tag for tag in params if tag.startswith(("Extension_", "Short_Name", "XML_"))]


def test_phone_book_parameters() -> None:
    params = device_params("cisco-cp-7841-3pcc", (), prov_password="provPass1")
    assert params["XML_Directory_Service_Name"] == "Directory"
    assert params["XML_Directory_Service_URL"] == PHONEBOOK_URL
    assert (params["XML_User_Name"], params["XML_Password"]) == (DEFAULTS["mac"], "provPass1")
    (match,) = match_path([load("cisco_spa")], f"phonebook/{DEFAULTS['mac']}.xml")
    assert (match.spec.kind, match.mac) == (FileKind.PHONEBOOK, DEFAULTS["mac"])


def test_phone_book_file() -> None:
    context = phone_context("cisco_spa", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = render_path("cisco_spa", f"phonebook/{DEFAULTS['mac']}.xml", context)
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


def test_empty_phone_book_file() -> None:
    context = phone_context("cisco_spa", "phonebook")
    root = xml_root(render_path("cisco_spa", f"phonebook/{DEFAULTS['mac']}.xml", context))
    assert root.findtext("Title") == "Directory"
    assert root.find("DirectoryEntry") is None


@pytest.mark.parametrize(
    ("model", "module_keys"),
    [
        ("cisco-cp-8851-3pcc", 28),
        ("cisco-cp-8865-3pcc", 28),
        ("cisco-cp-6851-3pcc", 28),
        ("cisco-spa962", 32),
        ("cisco-spa508g", 0),
    ],
)
def test_module_keys_in_the_catalogue(model: str, module_keys: int) -> None:
    assert catalogue_models()[model].module_keys == module_keys


def test_keys_case_matches_the_rendered_file() -> None:
    """tests/keys_cases/cisco_spa.toml holds for the device file as the template renders it."""
    case = tomllib.loads(KEYS_CASE.read_text(encoding="utf-8"))
    keys = (
        PhoneKey(1, "blf", "202", "Anna"),
        PhoneKey(2, "speed_dial", "0612345678", "Reception"),
        PhoneKey(3, "park", "701", None),
    )
    context = phone_context("cisco_spa", "device", model=case["model"], keys=keys)
    text = render_path("cisco_spa", "0002fdff2103.xml", context)
    for kind in ("blf", "speed_dial", "park"):
        assert case[kind], kind
        for pattern in case[kind]:
            assert re.search(pattern, text, re.MULTILINE), (kind, pattern)
    assert case["phonebook_format"] == "xml"
    assert catalogue_models()[case["model"]].line_keys >= 3
