"""Grandstream templates: cfg<mac>.xml, cfg<model>.xml and cfg.xml (P-values)."""

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
from tests.template_context import DEFAULTS, sample_context

MODEL = "grandstream-gxp2135"
TRANSPORTS = {"udp": "0", "tcp": "1", "tls": "2"}
FIRMWARE = "http://192.0.2.10:8080/firmware/gs/gxp2135fw.bin"


def p_values(text: str) -> dict[str, str]:
    """The P-values of <gs_provision><config> (tag -> text), each once."""
    root = xml_root(text)
    assert root.tag == "gs_provision"
    config = root.find("config")
    assert config is not None
    values: dict[str, str] = {}
    for element in config:
        assert element.tag not in values, element.tag
        values[element.tag] = element.text or ""
    return values


def expected_settings(base_url: str, firmware_url: str) -> dict[str, str]:
    """P-values shared by the common files and cfg<mac>.xml."""
    scheme, _, location = base_url.partition("://")
    values = {
        "P212": {"tftp": "0", "http": "1", "https": "2"}[scheme],
        "P237": location,
        "P30": DEFAULTS["ntp_server"],
        "P64": "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00",
        "P1362": "it",
    }
    if firmware_url:
        values["P192"] = "192.0.2.10:8080/firmware/gs"
    return values


def test_vendor_description() -> None:
    vendor = load("grandstream")
    assert (vendor.id, vendor.resync_event) == ("grandstream", "resync")


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template(variant: dict[str, str]) -> None:
    check_every_template("grandstream", MODEL, variant)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = sample_context(
        "device", model=MODEL, transport=transport, outbound_proxy=proxy, firmware_url=firmware_url
    )
    text = render_path("grandstream", "cfg000b828aa872.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.findtext("mac") == DEFAULTS["mac"]
    port = "5061" if transport == "tls" else "5060"
    assert p_values(text) == {
        "P271": "1",
        "P270": DEFAULTS["cli"],
        "P47": f"{DEFAULTS['registrar']}:{port}",
        # An empty P48 clears an outbound proxy configured earlier.
        "P48": f"{proxy}:{port}" if proxy else "",
        "P35": DEFAULTS["extension"],
        "P36": DEFAULTS["auth_username"],
        "P34": DEFAULTS["password"],
        "P3": "Rossi & <Figli>",
        "P130": TRANSPORTS[transport],
        **expected_settings("http://192.0.2.10:8080/", firmware_url),
    }


def test_label_disabled_line_and_no_credentials_in_device_file() -> None:
    context = sample_context(
        "device", model=MODEL, label="Desk", enabled=False, prov_username="provuser"
    )
    values = p_values(render_path("grandstream", "cfg000b828aa872.xml", context))
    assert (values["P270"], values["P271"]) == ("Desk", "0")
    assert "P1360" not in values


@pytest.mark.parametrize(("path", "model"), [("cfg.xml", None), ("cfggxp2135.xml", MODEL)])
@pytest.mark.parametrize("base_url", ["http://192.0.2.10:8080/", "tftp://192.0.2.10/"])
@pytest.mark.parametrize("credentials", [False, True])
def test_common_files(path: str, model: str | None, base_url: str, credentials: bool) -> None:
    context = sample_context(
        "common",
        model=model,
        base_url=base_url,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("grandstream", path, context)
    assert_no_leftovers(text)
    expected = expected_settings(base_url, "")
    if credentials:
        expected |= {"P1360": "provuser", "P1361": "provPass1"}
    assert p_values(text) == expected


def test_unknown_time_zone_and_language_are_left_out() -> None:
    context = sample_context("common")
    context["time"]["timezone"] = "Asia/Kathmandu"
    context["language"] = "xx"
    values = p_values(render_path("grandstream", "cfg.xml", context))
    assert "P64" not in values
    assert "P1362" not in values
