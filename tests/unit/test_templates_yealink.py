"""Yealink templates: boot files, common files and the per-MAC account file."""

from __future__ import annotations

import pytest

from tests.template_checks import (
    VARIANTS,
    assert_no_leftovers,
    check_every_template,
    load,
    parse_key_values,
    render_path,
)
from tests.template_context import DEFAULTS, PROVISIONING_BASE_URL, sample_context

MODEL = "yealink-t46s"
TRANSPORT_TYPES = {"udp": "0", "tcp": "1", "tls": "2"}
FIRMWARE = "http://192.0.2.10:8080/firmware/T46S-66.86.0.15.rom"


def test_vendor_description() -> None:
    vendor = load("yealink")
    assert (vendor.id, vendor.resync_event) == ("yealink", "check-sync")
    assert [spec.template for spec in vendor.files if spec.template] == [
        "mac.boot.j2",
        "common.boot.j2",
        "common.cfg.j2",
        "common.cfg.j2",
        "mac.cfg.j2",
    ]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_template(variant: dict[str, str]) -> None:
    check_every_template("yealink", MODEL, variant)


def expected_settings(firmware_url: str) -> dict[str, str]:
    """Keys shared by the common files and the device file."""
    keys = {
        "static.auto_provision.server.url": PROVISIONING_BASE_URL,
        "local_time.ntp_server1": DEFAULTS["ntp_server"],
        "local_time.time_zone": "+1",
        "local_time.summer_time": "2",
        "lang.gui": "Italian",
        "lang.wui": "Italian",
    }
    if firmware_url:
        keys["static.firmware.url"] = firmware_url
    return keys


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = sample_context(
        "device", model=MODEL, transport=transport, outbound_proxy=proxy, firmware_url=firmware_url
    )
    text = render_path("yealink", "001565AABBCC.cfg", context)
    assert text.startswith("#!version:1.0.0.1\n")
    assert_no_leftovers(text)
    port = "5061" if transport == "tls" else "5060"
    expected = {
        "account.1.enable": "1",
        "account.1.label": DEFAULTS["cli"],
        "account.1.display_name": "Rossi & <Figli>",
        "account.1.user_name": DEFAULTS["extension"],
        "account.1.auth_name": DEFAULTS["auth_username"],
        "account.1.password": DEFAULTS["password"],
        "account.1.sip_server.1.address": DEFAULTS["registrar"],
        "account.1.sip_server.1.port": port,
        "account.1.sip_server.1.transport_type": TRANSPORT_TYPES[transport],
        "account.1.outbound_proxy_enable": "1" if proxy else "0",
        **expected_settings(firmware_url),
    }
    if proxy:
        expected["account.1.outbound_proxy.1.address"] = proxy
        expected["account.1.outbound_proxy.1.port"] = port
    assert parse_key_values(text, "=") == expected


def test_label_disabled_line_and_provisioning_credentials() -> None:
    context = sample_context(
        "device", model=MODEL, label="Reception", enabled=False, prov_username="provuser"
    )
    keys = parse_key_values(render_path("yealink", "001565aabbcc.cfg", context), "=")
    assert keys["account.1.label"] == "Reception"
    assert keys["account.1.enable"] == "0"
    # Provisioning credentials belong to the common files only.
    assert not [key for key in keys if key.startswith("static.auto_provision.server.user")]


def test_display_name_cannot_inject_a_key() -> None:
    evil = "Evil\naccount.1.password = stolen\r\nstatic.firmware.url = http://x/"
    context = sample_context("device", model=MODEL, display_name=evil)
    keys = parse_key_values(render_path("yealink", "001565aabbcc.cfg", context), "=")
    assert keys["account.1.display_name"] == (
        "Evilaccount.1.password = stolenstatic.firmware.url = http://x/"
    )
    assert keys["account.1.password"] == DEFAULTS["password"]
    assert "static.firmware.url" not in keys


@pytest.mark.parametrize(
    ("path", "model"), [("y000000000000.cfg", None), ("y000000000066.cfg", MODEL)]
)
@pytest.mark.parametrize("credentials", [False, True])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_common_files(path: str, model: str | None, credentials: bool, firmware_url: str) -> None:
    context = sample_context(
        "common",
        model=model,
        firmware_url=firmware_url,
        prov_username="provuser" if credentials else "",
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("yealink", path, context)
    assert_no_leftovers(text)
    expected = expected_settings(firmware_url)
    if credentials:
        expected["static.auto_provision.server.username"] = "provuser"
        expected["static.auto_provision.server.password"] = "provPass1"
    assert parse_key_values(text, "=") == expected


def include_lines(text: str) -> list[str]:
    """The include:config targets of a boot file; every other line must be a comment."""
    assert text.startswith("#!version:1.0.0.1\n")
    targets = []
    for line in text.splitlines()[1:]:
        if line.startswith("#"):
            continue
        assert line.startswith('include:config "'), line
        assert line.endswith('"'), line
        targets.append(line.removeprefix('include:config "').removesuffix('"'))
    return targets


@pytest.mark.parametrize(
    ("model", "family_file"),
    [("yealink-t46s", "y000000000066.cfg"), ("yealink-w80b", "y000000000103.cfg")],
)
def test_device_boot_file(model: str, family_file: str) -> None:
    context = sample_context("device_boot", model=model, mac="249ad8d1a631")
    text = render_path("yealink", "249AD8D1A631.boot", context)
    assert_no_leftovers(text)
    assert include_lines(text) == [family_file, "249ad8d1a631.cfg"]


def test_common_boot_file() -> None:
    text = render_path("yealink", "y000000000000.boot", sample_context("common"))
    assert include_lines(text) == ["y000000000000.cfg"]
