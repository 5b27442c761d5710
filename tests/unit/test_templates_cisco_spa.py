"""Cisco SPA / MPP templates: the model profile and the per-MAC <flat-profile>."""

from __future__ import annotations

import pytest

from provisiond.domain.identify import FileKind, match_path
from tests.phone_context import DEFAULTS, PROVISIONING_BASE_URL, phone_context
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
