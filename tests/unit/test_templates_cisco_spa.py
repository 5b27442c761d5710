"""Cisco SPA / MPP templates: the model profile and the per-MAC <flat-profile>."""

from __future__ import annotations

import pytest

from tests.template_checks import (
    VARIANTS,
    assert_no_leftovers,
    check_every_template,
    load,
    render_path,
    xml_root,
)
from tests.template_context import DEFAULTS, PROVISIONING_BASE_URL, sample_context

MODEL = "cisco-spa508g"
FIRMWARE = "http://192.0.2.10:8080/firmware/spa50x-30x-7-6-2e.bin"


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
    """Parameters shared by the model profile and the per-MAC profile."""
    params = {
        "Primary_NTP_Server": DEFAULTS["ntp_server"],
        "Time_Zone": "GMT+01:00",
        "Daylight_Saving_Time_Enable": "Yes",
        "Resync_On_Reset": "Yes",
    }
    if firmware_url:
        params |= {"Upgrade_Enable": "Yes", "Upgrade_Rule": firmware_url}
    return params


def test_vendor_description() -> None:
    vendor = load("cisco_spa")
    assert (vendor.id, vendor.resync_event) == ("cisco_spa", "resync")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template(variant: dict[str, str]) -> None:
    check_every_template("cisco_spa", MODEL, variant)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
@pytest.mark.parametrize("credentials", [False, True])
def test_device_profile(transport: str, proxy: str, firmware_url: str, credentials: bool) -> None:
    context = sample_context(
        "device",
        model=MODEL,
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
        prov_username="provuser" if credentials else "",
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
        "Report_Rule": f"{PROVISIONING_BASE_URL}$MA-report.xml",
        **expected_settings(firmware_url),
    }
    if proxy:
        expected["Outbound_Proxy_1_"] = f"{proxy}:{port}"
    if not credentials:
        # With credentials the model profile's Profile_Rule (which carries them) stays.
        expected["Profile_Rule"] = f"{PROVISIONING_BASE_URL}$MA.xml"
    assert flat_profile(text) == expected
    assert "provPass1" not in text


def test_label_and_disabled_line() -> None:
    context = sample_context("device", model=MODEL, label="Front desk", enabled=False)
    params = flat_profile(render_path("cisco_spa", "0002fdff2103.xml", context))
    assert params["Short_Name_1_"] == "Front desk"
    assert (params["Line_Enable_1_"], params["Register_1_"]) == ("No", "No")


@pytest.mark.parametrize(
    ("path", "model"),
    [("spa508G.cfg", "cisco-spa508g"), ("CP-8841-3PCC.xml", "cisco-cp-8841-3pcc")],
)
@pytest.mark.parametrize("credentials", [False, True])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_model_profile(path: str, model: str, credentials: bool, firmware_url: str) -> None:
    context = sample_context(
        "common",
        model=model,
        firmware_url=firmware_url,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("cisco_spa", path, context)
    assert_no_leftovers(text)
    rule = f"{PROVISIONING_BASE_URL}$MA.xml"
    if credentials:
        rule = f"[--uid provuser --pwd provPass1] {rule}"
    assert flat_profile(text) == {
        "Provision_Enable": "Yes",
        "Profile_Rule": rule,
        **expected_settings(firmware_url),
    }


@pytest.mark.parametrize(
    ("minutes", "offset", "zone"),
    [(0, "+0", "GMT+00:00"), (330, "+5:30", "GMT+05:30"), (-180, "-3", "GMT-03:00")],
)
def test_time_zone_format(minutes: int, offset: str, zone: str) -> None:
    context = sample_context("common", model=MODEL)
    context["time"] |= {"utc_offset_minutes": minutes, "utc_offset": offset}
    assert flat_profile(render_path("cisco_spa", "spa508G.cfg", context))["Time_Zone"] == zone
