"""ALE Myriad templates: XML <settings> of <setting id value/> elements, AccountX keys per slot
in config.<mac>.xml, shared settings in config.xml and config.<model>.xml."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from provisiond.domain.identify import FileKind
from tests import identify_cases as cases
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    account_values,
    catalogue,
    phone_context,
)
from tests.template_checks import assert_no_leftovers, load, render_path

VENDOR = "alcatel"
DEVICE_FILE = "config.001565aabbcc.xml"
COMMON_FILES = {"config.xml": None, "config.M5.xml": "alcatel-m5"}
SHARED = {
    "DeviceProvisionServerUrl",
    "SettingSntpServer",
    "SettingTimeZone",
    "SettingTimeZoneLocation",
}


def render(
    path: str = DEVICE_FILE, model: str | None = "alcatel-m3", **options: Any
) -> dict[str, str]:
    """Render `path`, check it and return {setting id: value} (each id once)."""
    kind = "device" if path == DEVICE_FILE else "common"
    text = render_path(VENDOR, path, phone_context(VENDOR, kind, model=model, **options))
    assert_no_leftovers(text)
    root = ET.fromstring(text.encode("utf-8"))
    assert root.tag == "settings"
    pairs = [(s.get("id", ""), s.get("value", "")) for s in root.findall("./setting")]
    assert len(pairs) == len(dict(pairs)), "a setting is written twice"
    return dict(pairs)


def account(
    slot: int, values: dict[str, str], port: str = "5060", transport: str = "udp"
) -> dict[str, str]:
    """The AccountX settings expected for one account."""
    return {
        f"Account{slot}Enable": "true",
        f"Account{slot}Label": values["cli"],
        f"Account{slot}DisplayName": values["display_name"],
        f"Account{slot}UserName": values["extension"],
        f"Account{slot}RegName": values["auth_username"],
        f"Account{slot}Password": values["password"],
        f"Account{slot}Server1Address": DEFAULTS["registrar"],
        f"Account{slot}Server1Port": port,
        f"Account{slot}Server1Transport": transport,
        f"Account{slot}OutboundProxy1Address": "",
    }


@pytest.mark.parametrize(("transport", "port"), [("udp", "5060"), ("tcp", "5060"), ("tls", "5061")])
def test_device_file_first_account(transport: str, port: str) -> None:
    values = render(transport=transport)
    assert set(values) == set(account(1, DEFAULTS)) | SHARED
    assert {k: values[k] for k in account(1, DEFAULTS)} == account(1, DEFAULTS, port, transport)


@pytest.mark.parametrize(("model", "last"), [("alcatel-m3", 8), ("alcatel-m8", 20)])
def test_every_account_by_slot(model: str, last: int) -> None:
    """AccountX with X = slot: slot 2 and the model's last slot (8 on M3/M5/M7, 20 on M8)."""
    assert catalogue()[model].accounts == last
    values = render(model=model, accounts=last)
    for slot in (2, last):
        expected = account(slot, account_values(slot))
        assert {k: values[k] for k in expected} == expected
    assert f"Account{last + 1}Enable" not in values


def test_label_inactive_and_empty_name() -> None:
    values = render(label="Reception", enabled=False, display_name="")
    assert (values["Account1Label"], values["Account1Enable"]) == ("Reception", "false")
    assert values["Account1DisplayName"] == DEFAULTS["extension"]


def test_outbound_proxy_set_and_cleared() -> None:
    values = render(outbound_proxy="sbc.example.net:5070")
    assert (values["Account1OutboundProxy1Address"], values["Account1OutboundProxy1Port"]) == (
        "sbc.example.net",
        "5070",
    )
    assert render()["Account1OutboundProxy1Address"] == ""


def test_provisioning_credentials_only_in_the_device_file() -> None:
    values = render(prov_password="s3cret&")
    assert (values["DeviceProvisionServerUsername"], values["DeviceProvisionServerPassword"]) == (
        DEFAULTS["mac"],
        "s3cret&",
    )
    for path, model in COMMON_FILES.items():
        assert "DeviceProvisionServerPassword" not in render(path, model, prov_password="s3cret&")


@pytest.mark.parametrize(("path", "model"), list(COMMON_FILES.items()))
def test_common_files_hold_shared_settings_only(path: str, model: str | None) -> None:
    url = "http://192.0.2.10:8080/firmware/m5.bin"
    assert render(path, model, firmware_url=url) == {
        "DeviceProvisionServerUrl": "http://192.0.2.10:8080/",
        "SettingSntpServer": DEFAULTS["ntp_server"],
        "SettingTimeZone": "+1:00",
        "SettingTimeZoneLocation": DEFAULTS["timezone"],
        "DeviceFirmwareUpgradeUrl": url,
    }


@pytest.mark.parametrize(
    ("timezone", "offset"),
    [("Europe/Rome", "+1:00"), ("America/New_York", "-5:00"), ("Asia/Kolkata", "+5:30"),
     ("America/St_Johns", "-3:30"), ("UTC", "+0:00")],
)  # fmt: skip
def test_time_zone_standard_offset(timezone: str, offset: str) -> None:
    values = render(timezone=timezone)
    assert (values["SettingTimeZone"], values["SettingTimeZoneLocation"]) == (offset, timezone)


# (User-Agent, model, firmware, MAC): the format is unverified (README.md, "User-Agent").
USER_AGENTS = [
    ("ALE M3-CE 2.11.01.1604 3c28a620089e", "M3", "2.11.01.1604", "3c28a620089e"),
    ("ALE M8 2.13.02.1001 3C28A620089F", "M8", "2.13.02.1001", "3c28a620089f"),
]
NOT_USER_AGENTS = [*cases.foreign_user_agents(VENDOR), "ALE", "ALE M3", "Mozilla/5.0"]
BOOT_FILES = [
    ("config.xml", FileKind.COMMON, None, None),
    ("config.M3.xml", FileKind.COMMON, None, "M3"),
    ("config.m8.xml", FileKind.COMMON, None, "m8"),
    ("config.3c28a620089e.xml", FileKind.DEVICE, "3c28a620089e", None),
    ("config.3C28A620089E.xml", FileKind.DEVICE, "3c28a620089e", None),
]
NOT_ALCATEL = ["config.000000000000.xml", "config.3c28a620089.xml", "config.cfg", "cfg.xml"]


@pytest.mark.parametrize(
    "check", cases.checks(VENDOR, USER_AGENTS, NOT_USER_AGENTS, BOOT_FILES, NOT_ALCATEL)
)
def test_identification(check: Callable[[], None]) -> None:
    check()


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") -------


def test_no_key_and_no_phone_book_is_written() -> None:
    """No ALE parameter for keys or a phone book is known: the vendor declares neither, and a
    user's keys leave the device file exactly as it is without them."""
    spec = load(VENDOR)
    assert spec.key_types == ()
    assert spec.phonebook_format == ""
    assert spec.phonebook_path(DEFAULTS["mac"]) is None
    for model in ("alcatel-m3", "alcatel-m8"):
        context = phone_context(VENDOR, "device", model=model, keys=SAMPLE_KEYS)
        assert context["keys"] == []
        assert context["phonebook"]["url"] == ""
        text = render_path(VENDOR, DEVICE_FILE, context)
        plain = render_path(VENDOR, DEVICE_FILE, phone_context(VENDOR, "device", model=model))
        assert text == plain
