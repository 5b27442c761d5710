"""Obihai / Poly OBi templates: obi<mac>.xml, the OBi full XML format (README.md, "Format").

Settings are TR-104 style objects: `<Object><Name>group.</Name>` holding
`<ParameterValueStruct><Name>param</Name><Value>value</Value>` pairs; every account N (its
slot) is SP service N, `VoiceService.1.VoiceProfile.1.Line.N.`, registering through ITSP
Profile A, `VoiceService.1.VoiceProfile.1.`, which carries the registrar.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, match_path, parse_user_agent
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    account_values,
    catalogue_models,
    phone_context,
)
from tests.template_checks import assert_no_leftovers, load, render_path, xml_root

MAC = "9cadef123456"
PATH = "obi9CADEF123456.xml"
PROFILE = "VoiceService.1.VoiceProfile.1.SIP."
PROVISIONING = "X_DeviceManagement.ITSPProvisioning."
FIRMWARE = "X_DeviceManagement.FirmwareUpdate."
LINES = "VoiceService.1.VoiceProfile.1.Line."


def line(slot: int, group: str = "") -> str:
    """The object of SP service `slot` (`group` "" for the service itself, "SIP.", ...)."""
    return f"{LINES}{slot}.{group}"


def settings(root: ET.Element) -> dict[str, dict[str, str]]:
    """{object name: {parameter: value}}; objects and parameters unique, values trimmed."""
    assert root.tag == "ParameterList"
    objects: dict[str, dict[str, str]] = {}
    for obj in root.findall("Object"):
        name = obj.findtext("Name") or ""
        assert name.endswith("."), name
        assert name not in objects, name
        params: dict[str, str] = {}
        for pair in obj.findall("ParameterValueStruct"):
            key = pair.findtext("Name") or ""
            assert key, name
            assert key not in params, (name, key)
            params[key] = pair.findtext("Value") or ""
        objects[name] = params
    return objects


def render(model: str = "obihai-obi202", **kwargs: Any) -> dict[str, dict[str, str]]:
    context = phone_context("obihai", "device", model=model, mac=MAC, **kwargs)
    text = render_path("obihai", PATH, context)
    assert_no_leftovers(text)
    return settings(xml_root(text))


def expected_account(slot: int, values: dict[str, str]) -> dict[str, dict[str, str]]:
    return {
        line(slot): {"Enable": "true", "X_ServProvProfile": "A", "X_RegisterEnable": "true"},
        line(slot, "SIP."): {
            "AuthUserName": values["auth_username"],
            "AuthPassword": values["password"],
            "URI": values["extension"],
        },
        line(slot, "CallingFeatures."): {"CallerIDName": values["display_name"]},
    }


FIRST = {
    "extension": DEFAULTS["extension"],
    "auth_username": DEFAULTS["auth_username"],
    "password": DEFAULTS["password"],
    "display_name": DEFAULTS["display_name"],
}


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
def test_device_file(transport: str, proxy: str) -> None:
    port = "5061" if transport == "tls" else "5060"
    got = render(transport=transport, outbound_proxy=proxy)
    profile = {
        "ProxyServer": DEFAULTS["registrar"],
        "ProxyServerPort": port,
        "ProxyServerTransport": transport.upper(),
        "RegistrarServer": DEFAULTS["registrar"],
        "RegistrarServerPort": port,
        # Unset, the proxy is written empty so that one set before is cleared.
        "OutboundProxy": proxy,
    }
    if proxy:
        profile["OutboundProxyPort"] = port
    assert got == {
        PROVISIONING: {
            "Method": "System Start",
            "ConfigURL": f"http://192.0.2.10:8080/obi{MAC}.xml",
        },
        PROFILE: profile,
        **expected_account(1, FIRST),
    }


def test_secrets_and_names_are_escaped() -> None:
    got = render(display_name='A "q" <b> &\nc')
    assert got[line(1, "CallingFeatures.")]["CallerIDName"] == 'A "q" <b> &c'
    assert got[line(1, "SIP.")]["AuthPassword"] == DEFAULTS["password"]  # '&' escaped and back


def test_disabled_account() -> None:
    assert render(enabled=False)[line(1)]["Enable"] == "false"


def test_provisioning_credentials_and_firmware() -> None:
    got = render(prov_password="provPass1", firmware_url="http://192.0.2.10:8080/fw/obi.fw")
    assert got[PROVISIONING] == {
        "Method": "System Start",
        "ConfigURL": f"http://192.0.2.10:8080/obi{MAC}.xml",
        "Username": MAC,
        "Password": "provPass1",
    }
    assert got[FIRMWARE] == {
        "Method": "System Start",
        "FirmwareURL": "http://192.0.2.10:8080/fw/obi.fw",
    }


@pytest.mark.parametrize(
    ("model", "last"),
    [("obihai-obi202", 4), ("obihai-obi312", 4), ("obihai-obi508vs", 9), ("obihai-obi1062", 6)],
)
def test_every_account_is_an_sp_service(model: str, last: int) -> None:
    """Account N is SP service N: slot 2 and the model's last slot, key by key; all use ITSP
    Profile A; nothing beyond the model's SP services."""
    got = render(model=model, accounts=last)
    for slot in (2, last):
        for name, params in expected_account(slot, account_values(slot)).items():
            assert got[name] == params
    assert got[line(1, "SIP.")]["AuthUserName"] == DEFAULTS["auth_username"]
    assert line(last + 1) not in got
    services = [name for name in got if name.startswith(LINES) and name.count(".") == 6]
    assert services == [line(slot) for slot in range(1, last + 1)]


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware"),
    [
        ("OBIHAI/OBi202-3.2.2.5921", "OBi202", "3.2.2.5921"),
        ("OBIHAI/OBi1032-5.1.11", "OBi1032", "5.1.11"),
        ("OBIHAI/OBi508vs-3.2.2.5898EX", "OBi508", "3.2.2.5898EX"),
    ],
)
def test_user_agent(user_agent: str, model: str, firmware: str) -> None:
    info = parse_user_agent([load("obihai")], user_agent)
    assert info is not None
    assert (info.model, info.firmware, info.mac) == (model, firmware, None)


@pytest.mark.parametrize(
    "user_agent",
    ["Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37", "Grandstream HT802 1.0.17.5", "OBIHAI"],
)
def test_foreign_user_agents(user_agent: str) -> None:
    assert parse_user_agent([load("obihai")], user_agent) is None


def test_file_names() -> None:
    vendor = load("obihai")
    (found,) = match_path([vendor], PATH)
    assert (found.spec.kind, found.mac) == (FileKind.DEVICE, MAC)
    for other in ("9CADEF123456.xml", "obi000000000000.xml", "obi9cadef12345.xml", "cfg.xml"):
        assert match_path([vendor], other) == []


def test_the_only_notify_reboots() -> None:
    """NOTIFY event=resync makes the device reboot and fetch again: it is the reboot event, and
    there is no resync event (a resync must never reboot a phone)."""
    vendor = load("obihai")
    assert (vendor.resync_event, vendor.reboot_event) == ("", "resync")


def test_catalogue() -> None:
    models = {m.name: m for m in catalogue_models().values() if m.vendor == "obihai"}
    assert len(models) >= 8
    assert all(m.ata for m in models.values() if not m.name.startswith("OBi10"))
    assert models["OBi504vs"].family == "OBi504"


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") -------


def test_catalogue_keys_of_the_phones() -> None:
    """The OBi1000 virtual line keys and side cars, as the guide counts them."""
    models = {m.name: m for m in catalogue_models().values() if m.vendor == "obihai"}
    counts = {
        name: (models[name].line_keys, models[name].expansion_modules, models[name].module_keys)
        for name in ("OBi1062", "OBi1032", "OBi1022", "OBi202")
    }
    assert counts == {
        "OBi1062": (24, 2, 16),
        "OBi1032": (12, 2, 16),
        "OBi1022": (10, 0, 0),
        "OBi202": (0, 0, 0),
    }


@pytest.mark.parametrize("model", ["obihai-obi1062", "obihai-obi202"])
def test_no_key_and_no_phone_book_is_written(model: str) -> None:
    """The object holding OBi feature keys is not documented: a user's keys leave the file
    exactly as it is without them, and there is no phone book file."""
    vendor = load("obihai")
    assert (vendor.key_types, vendor.phonebook_format) == ((), "")
    assert vendor.phonebook_path(MAC) is None
    context = phone_context("obihai", "device", model=model, mac=MAC, keys=SAMPLE_KEYS)
    assert (context["keys"], context["phonebook"]["url"]) == ([], "")
    plain = phone_context("obihai", "device", model=model, mac=MAC)
    assert render_path("obihai", PATH, context) == render_path("obihai", PATH, plain)
