"""Polycom templates: master files, <mac>-user.cfg and common.cfg (XML attributes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from tests.template_checks import (
    VARIANTS,
    assert_no_leftovers,
    check_every_template,
    load,
    render_path,
    xml_root,
)
from tests.template_context import DEFAULTS, sample_context

MODEL = "polycom-vvx-400"
TRANSPORTS = {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}
FIRMWARE = "http://192.0.2.10:8080/firmware/3111-46135-002.sip.ld"


def attributes(root: ET.Element) -> dict[str, str]:
    """Every setting of a <polycomConfig> document (settings are attributes), keys unique."""
    settings: dict[str, str] = {}
    for element in root.iter():
        for key, value in element.attrib.items():
            assert key not in settings, key
            settings[key] = value
    return settings


def expected_settings(base_url: str = "http://192.0.2.10:8080/") -> dict[str, str]:
    """Time, language and provisioning server, shared by common.cfg and <mac>-user.cfg."""
    scheme, _, location = base_url.partition("://")
    return {
        "tcpIpApp.sntp.address": DEFAULTS["ntp_server"],
        "tcpIpApp.sntp.gmtOffset": "3600",
        "tcpIpApp.sntp.daylightSavings.enable": "1",
        "lcl.ml.lang": "Italian_Italy",
        "device.set": "1",
        "device.prov.serverType.set": "1",
        "device.prov.serverType": {"tftp": "1", "http": "2", "https": "3"}[scheme],
        "device.prov.serverName.set": "1",
        "device.prov.serverName": location,
    }


def test_vendor_description() -> None:
    vendor = load("polycom")
    assert (vendor.id, vendor.dhcp_options) == ("polycom", (66, 160))


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template(variant: dict[str, str]) -> None:
    check_every_template("polycom", MODEL, variant)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("credentials", [False, True])
def test_user_file(transport: str, proxy: str, credentials: bool) -> None:
    context = sample_context(
        "device",
        model=MODEL,
        transport=transport,
        outbound_proxy=proxy,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("polycom", "0004F2AABBCC-user.cfg", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "polycomConfig"
    port = "5061" if transport == "tls" else "5060"
    expected = {
        "reg.1.address": DEFAULTS["extension"],
        "reg.1.auth.userId": DEFAULTS["auth_username"],
        "reg.1.auth.password": DEFAULTS["password"],
        "reg.1.displayName": "Rossi & <Figli>",
        "reg.1.label": DEFAULTS["cli"],
        "reg.1.server.1.address": DEFAULTS["registrar"],
        "reg.1.server.1.port": port,
        "reg.1.server.1.transport": TRANSPORTS[transport],
        "reg.1.server.1.register": "1",
        **expected_settings(),
    }
    if proxy:
        expected["reg.1.outboundProxy.address"] = proxy
        expected["reg.1.outboundProxy.port"] = port
        expected["reg.1.outboundProxy.transport"] = TRANSPORTS[transport]
    # Provisioning credentials are never in the per-device file.
    assert attributes(root) == expected


def test_user_file_label_and_disabled_line() -> None:
    context = sample_context("device", model=MODEL, label="Desk 1", enabled=False)
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["reg.1.label"] == "Desk 1"
    assert settings["reg.1.server.1.register"] == "0"


@pytest.mark.parametrize("base_url", ["http://192.0.2.10:8080/", "tftp://192.0.2.10/"])
@pytest.mark.parametrize("credentials", [False, True])
def test_common_file(base_url: str, credentials: bool) -> None:
    context = sample_context(
        "common",
        base_url=base_url,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("polycom", "common.cfg", context)
    assert_no_leftovers(text)
    expected = expected_settings(base_url)
    if credentials:
        expected |= {
            "device.prov.user.set": "1",
            "device.prov.user": "provuser",
            "device.prov.password.set": "1",
            "device.prov.password": "provPass1",
        }
    assert attributes(xml_root(text)) == expected


@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_master_files(firmware_url: str) -> None:
    own = render_path(
        "polycom",
        "0004F2AABBCC.cfg",
        sample_context("device_boot", model=MODEL, mac="0004f2aabbcc", firmware_url=firmware_url),
    )
    default = render_path(
        "polycom", "000000000000.cfg", sample_context("common", firmware_url=firmware_url)
    )
    for text, first in ((own, "0004f2aabbcc-user.cfg"), (default, "[PHONE_MAC_ADDRESS]-user.cfg")):
        assert_no_leftovers(text)
        root = xml_root(text)
        assert root.tag == "APPLICATION"
        assert root.attrib["APP_FILE_PATH"] == (firmware_url or "sip.ld")
        # The account file comes first: files listed first win.
        assert root.attrib["CONFIG_FILES"] == f"{first}, common.cfg"
        assert DEFAULTS["password"] not in text


def test_display_name_is_escaped() -> None:
    context = sample_context("device", model=MODEL, display_name='A "quoted" <name> &\nx')
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["reg.1.displayName"] == 'A "quoted" <name> &x'
