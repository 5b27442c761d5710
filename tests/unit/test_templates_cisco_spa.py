"""Cisco SPA / MPP templates: the model profile and the per-MAC <flat-profile>."""

from __future__ import annotations

import pytest

from provisiond.domain.identify import FileKind, match_path
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
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
        **expected_settings(firmware_url),
    }
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
