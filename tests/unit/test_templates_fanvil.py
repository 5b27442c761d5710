"""Fanvil templates: every file renders to well-formed <sysConf> XML with the right values."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import load_vendor
from tests.template_context import DEFAULTS, sample_context

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
DEVICE_FILE = "001565aabbcc.cfg"
# One requested name per templated file spec, with the catalogue model it resolves to.
COMMON_FILES = {
    "f0X4hw1.100.cfg": "fanvil-x4",
    "F0V00X300000.cfg": "fanvil-x3s",
    "X6U.cfg": "fanvil-x6u",
}
TRANSPORT_CODES = {"udp": "0", "tcp": "1", "tls": "3"}


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
    context = sample_context(str(found.spec.kind), model=model, **options)
    text = renderer.render("fanvil", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<sysConf>')
    return ET.fromstring(text)


def line_values(root: ET.Element) -> dict[str, str]:
    """The children of <sip><line index="1"> as {tag: text}."""
    lines = root.findall("./sip/line")
    assert [line.get("index") for line in lines] == ["1"]
    return {child.tag: child.text or "" for child in lines[0]}


def test_every_templated_file_is_covered(vendor: VendorSpec) -> None:
    """The names tested here reach every file spec that renders a template."""
    templated = {spec.pattern.pattern for spec in vendor.files if spec.template}
    tested = {
        match_path([vendor], path)[0].spec.pattern.pattern for path in [DEVICE_FILE, *COMMON_FILES]
    }
    assert tested == templated


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_account(
    renderer: Renderer, vendor: VendorSpec, transport: str
) -> None:
    """Extension, auth name, password, display name and registrar under Fanvil's keys."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", transport=transport)
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
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4")
    assert root.findtext("./phone/display/LCDTitle") == f"Rossi & <Figli> {DEFAULTS['cli']}"
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", label="Reception", cli="200")
    assert root.findtext("./phone/display/LCDTitle") == "Reception 200"


def test_disabled_device_does_not_register(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device gets its account with registration switched off."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", enabled=False)
    assert line_values(root)["EnableReg"] == "0"


def test_outbound_proxy_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """A set outbound proxy lands in ProxyAddr/ProxyPort; unset, ProxyAddr is cleared."""
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", outbound_proxy="sbc.example.net")
    values = line_values(root)
    assert (values["ProxyAddr"], values["ProxyPort"]) == ("sbc.example.net", "5060")
    unset = line_values(render(renderer, vendor, DEVICE_FILE, "fanvil-x4"))
    assert unset["ProxyAddr"] == ""
    assert "ProxyPort" not in unset


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_provisioning_and_firmware(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """NTP, time zone, provisioning URL and (only when set) the firmware URL."""
    model = COMMON_FILES.get(path, "fanvil-x4")
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
    root = render(renderer, vendor, DEVICE_FILE, "fanvil-x4", base_url="tftp://192.0.2.10/")
    assert root.findtext("./ap/FlashServerIP") == "tftp://192.0.2.10"
    assert root.find("./ap/FlashProtocol") is None


@pytest.mark.parametrize(("path", "model"), COMMON_FILES.items())
def test_common_files_hold_no_account(
    renderer: Renderer, vendor: VendorSpec, path: str, model: str
) -> None:
    """Model common files carry shared settings only: no <sip> block, no secret."""
    root = render(renderer, vendor, path, model, outbound_proxy="sbc.example.net")
    assert root.find("./sip") is None
    assert DEFAULTS["password"] not in "".join(root.itertext())
    assert FileKind.COMMON is match_path([vendor], path)[0].spec.kind
