"""Yealink templates: boot files, common files and the per-MAC account file."""

from __future__ import annotations

import pytest

from tests.phone_context import DEFAULTS, PROVISIONING_BASE_URL, phone_context
from tests.template_checks import (
    assert_no_leftovers,
    parse_key_values,
    render_path,
)

MODEL = "yealink-t46s"
TRANSPORT_TYPES = {"udp": "0", "tcp": "1", "tls": "2"}
FIRMWARE = "http://192.0.2.10:8080/firmware/T46S-66.86.0.15.rom"


# Europe/Rome (the sample zone) as yearly rules: last Sunday of March 02:00 to last Sunday of
# October 03:00, one hour (by week: month/week (5 = last)/day (7 = Sunday)/hour).
ROME_TIME = {
    "local_time.time_zone": "+1",
    "local_time.summer_time": "1",
    "local_time.dst_time_type": "1",
    "local_time.start_time": "3/5/7/2",
    "local_time.end_time": "10/5/7/3",
    "local_time.offset_time": "60",
}
TIME_KEYS = (
    "local_time.time_zone",
    "local_time.summer_time",
    "local_time.dst_time_type",
    "local_time.start_time",
    "local_time.end_time",
    "local_time.offset_time",
    "local_time.time_zone_name",
)


def expected_settings(firmware_url: str) -> dict[str, str]:
    """Keys shared by the common files and the device file."""
    keys = {
        "static.auto_provision.server.url": PROVISIONING_BASE_URL,
        "sip.notify_reboot_enable": "0",
        "local_time.ntp_server1": DEFAULTS["ntp_server"],
        **ROME_TIME,
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
    context = phone_context(
        "yealink",
        "device",
        model=MODEL,
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
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


def test_label_and_disabled_line() -> None:
    context = phone_context("yealink", "device", model=MODEL, label="Reception", enabled=False)
    keys = parse_key_values(render_path("yealink", "001565aabbcc.cfg", context), "=")
    assert keys["account.1.label"] == "Reception"
    assert keys["account.1.enable"] == "0"


def test_provisioning_credentials_in_the_device_file() -> None:
    """The phone's own HTTP digest credentials ride in <mac>.cfg, the file with secrets."""
    context = phone_context("yealink", "device", model=MODEL, prov_password="provPass1")
    keys = parse_key_values(render_path("yealink", "001565aabbcc.cfg", context), "=")
    assert keys["static.auto_provision.server.username"] == DEFAULTS["mac"]
    assert keys["static.auto_provision.server.password"] == "provPass1"
    # No credentials configured: the keys are left out (the phone keeps none).
    plain = render_path(
        "yealink", "001565aabbcc.cfg", phone_context("yealink", "device", model=MODEL)
    )
    assert "static.auto_provision.server.user" not in plain
    assert "static.auto_provision.server.password" not in plain


def test_provisioning_password_cannot_inject_a_key() -> None:
    evil = "p\nsip.notify_reboot_enable = 1"
    context = phone_context("yealink", "device", model=MODEL, prov_password=evil)
    keys = parse_key_values(render_path("yealink", "001565aabbcc.cfg", context), "=")
    assert keys["sip.notify_reboot_enable"] == "0"
    assert keys["static.auto_provision.server.password"] == "psip.notify_reboot_enable = 1"


def time_keys(timezone: str, path: str = "001565aabbcc.cfg") -> dict[str, str]:
    """The time-zone keys of the file `path` for `timezone`."""
    kind = "device" if path == "001565aabbcc.cfg" else "common"
    context = phone_context("yealink", kind, model=MODEL, timezone=timezone)
    keys = parse_key_values(render_path("yealink", path, context), "=")
    return {key: keys[key] for key in TIME_KEYS if key in keys}


@pytest.mark.parametrize("path", ["001565aabbcc.cfg", "y000000000066.cfg", "y000000000000.cfg"])
def test_time_zone_as_yearly_rules_europe(path: str) -> None:
    """Rome gets explicit rules (summer_time 1), not an on/off switch taken on the render day."""
    assert time_keys("Europe/Rome", path) == ROME_TIME


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        (  # second Sunday of March 02:00 to first Sunday of November 02:00
            "America/New_York",
            {
                "local_time.time_zone": "-5",
                "local_time.start_time": "3/2/7/2",
                "local_time.end_time": "11/1/7/2",
            },
        ),
        (  # southern hemisphere: starts in October, ends in April of the next year
            "Australia/Sydney",
            {
                "local_time.time_zone": "+10",
                "local_time.start_time": "10/1/7/2",
                "local_time.end_time": "4/1/7/3",
            },
        ),
    ],
)
def test_time_zone_as_yearly_rules(timezone: str, expected: dict[str, str]) -> None:
    assert time_keys(timezone) == {
        "local_time.summer_time": "1",
        "local_time.dst_time_type": "1",
        "local_time.offset_time": "60",
        **expected,
    }


def test_zone_without_summer_time_and_half_hour_offset() -> None:
    """Kolkata: UTC+5:30 all year, summer time switched off (not left on automatic)."""
    assert time_keys("Asia/Kolkata") == {
        "local_time.time_zone": "+5:30",
        "local_time.summer_time": "0",
    }


def test_any_zone_takes_the_offset_and_rules_fallback() -> None:
    """No Yealink zone-name list is used: every zone gets offset + rules (here half-hour DST)."""
    assert time_keys("Australia/Lord_Howe") == {
        "local_time.time_zone": "+10:30",
        "local_time.summer_time": "1",
        "local_time.dst_time_type": "1",
        "local_time.start_time": "10/1/7/2",
        "local_time.end_time": "4/1/7/2",
        "local_time.offset_time": "30",
    }


def test_display_name_cannot_inject_a_key() -> None:
    evil = "Evil\naccount.1.password = stolen\r\nstatic.firmware.url = http://x/"
    context = phone_context("yealink", "device", model=MODEL, display_name=evil)
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
    context = phone_context(
        "yealink",
        "common",
        model=model,
        firmware_url=firmware_url,
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("yealink", path, context)
    assert_no_leftovers(text)
    # Common files never carry credentials (the resolver gives them none).
    assert "provPass1" not in text
    assert parse_key_values(text, "=") == expected_settings(firmware_url)


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
    context = phone_context("yealink", "device_boot", model=model, mac="249ad8d1a631")
    text = render_path("yealink", "249AD8D1A631.boot", context)
    assert_no_leftovers(text)
    assert include_lines(text) == [family_file, "249ad8d1a631.cfg"]


def test_common_boot_file() -> None:
    context = phone_context("yealink", "common", prov_password="provPass1")
    text = render_path("yealink", "y000000000000.boot", context)
    assert include_lines(text) == ["y000000000000.cfg"]
    assert "provuser" not in text
