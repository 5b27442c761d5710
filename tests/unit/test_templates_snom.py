"""Snom templates: snom<model>.htm, snom<model>-<MAC>.htm and the firmware settings file."""

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

MODEL = "snom-d785"
FIRMWARE = "http://192.0.2.10:8080/firmware/snomD785-10.1.33.33-SIP-r.bin"


def phone_settings(text: str) -> dict[str, str]:
    """<settings><phone-settings> as {name or name[idx]: text}, each once."""
    root = xml_root(text)
    assert root.tag == "settings"
    settings_element = root.find("phone-settings")
    assert settings_element is not None
    settings: dict[str, str] = {}
    for element in settings_element:
        assert element.attrib["perm"] == "R"
        name = element.tag + (f"[{element.attrib['idx']}]" if "idx" in element.attrib else "")
        assert name not in settings, name
        settings[name] = element.text or ""
    return settings


def expected_settings(firmware_url: str) -> dict[str, str]:
    """Settings shared by the model file and the per-MAC file."""
    settings = {
        "ntp_server": DEFAULTS["ntp_server"],
        "timezone": "ITA+1",
        "language": "Italiano",
        "web_language": "Italiano",
    }
    if firmware_url:
        settings |= {
            "update_policy": "auto_update",
            "firmware_status": f"{PROVISIONING_BASE_URL}snomD785-firmware.xml",
        }
    return settings


def test_vendor_description() -> None:
    vendor = load("snom")
    assert (vendor.id, vendor.resync_event) == ("snom", "check-sync;reboot=false")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template(variant: dict[str, str]) -> None:
    check_every_template("snom", MODEL, variant)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = sample_context(
        "device",
        model=MODEL,
        mac="000413922d24",
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
    )
    text = render_path("snom", "snomD785-000413922D24.htm", context)
    assert_no_leftovers(text)
    port = "5061" if transport == "tls" else "5060"
    assert phone_settings(text) == {
        "user_active[1]": "on",
        "user_realname[1]": "Rossi & <Figli>",
        "user_name[1]": DEFAULTS["extension"],
        "user_pname[1]": DEFAULTS["auth_username"],
        "user_pass[1]": DEFAULTS["password"],
        "user_host[1]": f"{DEFAULTS['registrar']}:{port};transport={transport}",
        # Empty clears an outbound proxy configured earlier.
        "user_outbound[1]": f"{proxy}:{port};transport={transport}" if proxy else "",
        "user_idle_text[1]": DEFAULTS["cli"],
        "setting_server": f"{PROVISIONING_BASE_URL}snomD785-000413922D24.htm",
        **expected_settings(firmware_url),
    }


def test_label_and_disabled_identity() -> None:
    context = sample_context("device", model=MODEL, label="Lobby", enabled=False)
    settings = phone_settings(render_path("snom", "snomD785-001565AABBCC.htm", context))
    assert (settings["user_idle_text[1]"], settings["user_active[1]"]) == ("Lobby", "off")


@pytest.mark.parametrize("credentials", [False, True])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_model_file(credentials: bool, firmware_url: str) -> None:
    context = sample_context(
        "common",
        model=MODEL,
        firmware_url=firmware_url,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("snom", "snomD785.htm", context)
    assert_no_leftovers(text)
    expected = expected_settings(firmware_url)
    if credentials:
        expected |= {"http_client_user": "provuser", "http_client_pass": "provPass1"}
    assert phone_settings(text) == expected


@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_firmware_file(firmware_url: str) -> None:
    context = sample_context("common", model=MODEL, firmware_url=firmware_url)
    root = xml_root(render_path("snom", "snomD785-firmware.xml", context))
    assert root.tag == "firmware-settings"
    assert [element.text for element in root.iter("firmware")] == (
        [firmware_url] if firmware_url else []
    )
