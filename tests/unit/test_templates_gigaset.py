"""Gigaset template: the per-MAC file is well-formed provisioning XML with the right params."""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.timezones import zone_rules
from provisiond.provisioning.vendors import load_vendor
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    phone_context,
)

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
DEVICE_FILE = "7C2F80E0D605.xml"
TRANSPORT_CODES = {"udp": "1", "tcp": "2", "tls": "3"}
ACCOUNT = "SipAccount.00001."
PROVIDER = "SipProvider.0."


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Gigaset description, loaded by the real loader."""
    return load_vendor(ROOT / "gigaset" / "vendor.toml")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The production renderer over the repository's templates."""
    return Renderer(ROOT)


def render(
    renderer: Renderer, vendor: VendorSpec, model: str = "gigaset-n870", **options: Any
) -> ET.Element:
    """Render the per-MAC file and parse it (it must be clean XML)."""
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("gigaset", "device", model=model, mac="7c2f80e0d605", **options)
    text = renderer.render("gigaset", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    root = ET.fromstring(text)
    assert (root.tag, root.get("version")) == ("provisioning", "1.1")
    return root


def params(root: ET.Element) -> dict[str, str]:
    """The <nvm><param name= value=> pairs; a name may appear only once."""
    pairs = [(p.get("name", ""), p.get("value", "")) for p in root.findall("./nvm/param")]
    names = [name for name, _ in pairs]
    assert len(names) == len(set(names))
    return dict(pairs)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_account_and_registrar(renderer: Renderer, vendor: VendorSpec, transport: str) -> None:
    """Extension, auth name, password, display name and registrar under Gigaset's names."""
    values = params(render(renderer, vendor, transport=transport))
    port = "5061" if transport == "tls" else "5060"
    assert {k: v for k, v in values.items() if k.startswith(ACCOUNT)} == {
        ACCOUNT + "ProviderId": "0",
        ACCOUNT + "UserName": DEFAULTS["extension"],
        ACCOUNT + "AuthName": DEFAULTS["auth_username"],
        ACCOUNT + "AuthPassword": DEFAULTS["password"],
        ACCOUNT + "DisplayName": "Rossi & <Figli>",
    }
    assert values[PROVIDER + "Domain"] == DEFAULTS["registrar"]
    assert values[PROVIDER + "RegServerAddress"] == DEFAULTS["registrar"]
    assert values[PROVIDER + "RegServerPort"] == port
    assert values[PROVIDER + "ProxyServerPort"] == port
    assert values[PROVIDER + "TransportProtocol"] == TRANSPORT_CODES[transport]


def test_outbound_proxy_only_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """Set: mode 0 with address and port; unset: mode 2 (never) and no address."""
    values = params(render(renderer, vendor, outbound_proxy="sbc.example.net"))
    assert values[PROVIDER + "OutboundProxyMode"] == "0"
    assert values[PROVIDER + "OutboundProxyAddress"] == "sbc.example.net"
    assert values[PROVIDER + "OutboundProxyPort"] == "5060"
    unset = params(render(renderer, vendor))
    assert unset[PROVIDER + "OutboundProxyMode"] == "2"
    assert PROVIDER + "OutboundProxyAddress" not in unset


def test_reboot_on_request_enabled(renderer: Renderer, vendor: VendorSpec) -> None:
    """Without CheckSyncRebootEnabled the base ignores reboot=true (firmware 2.52+)."""
    assert params(render(renderer, vendor))["SystemSettings.global.CheckSyncRebootEnabled"] == "1"


def test_time_and_provisioning(renderer: Renderer, vendor: VendorSpec) -> None:
    """NTP server, time zone and the provisioning server URL (no credentials: plain URL)."""
    values = params(render(renderer, vendor))
    assert values["DmGlobal.0.NtpServer"] == DEFAULTS["ntp_server"]
    assert values["DmGlobal.0.TimeZone"] == "Europe/Rome"
    assert values["Provisioning.global.ProvisioningServer"] == "http://192.0.2.10:8080"


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        ("Europe/Rome", "Europe/Rome"),  # in the base's list: its name
        ("America/New_York", "America/New_York"),
        ("Australia/Sydney", "Australia/Sydney"),  # southern hemisphere, in the list
        ("Australia/Melbourne", "Australia/Sydney"),  # same rules as a listed zone
        ("UTC", "Greenwich"),  # the old default, which the base did not know
        ("Asia/Kolkata", None),  # half-hour offset, no listed zone: the key is left out
        ("Pacific/Auckland", None),
    ],
)
def test_time_zone_is_a_name_from_the_base_list(
    renderer: Renderer, vendor: VendorSpec, timezone: str, expected: str | None
) -> None:
    """A name the base knows (it applies the summer-time rules itself), never the raw IANA name."""
    values = params(render(renderer, vendor, timezone=timezone))
    assert values.get("DmGlobal.0.TimeZone") == expected


def test_zone_table_maps_only_to_equal_rules() -> None:
    """Every non-identity entry names a listed zone with the same rules as the zone itself."""
    table = tomllib.loads((ROOT / "gigaset" / "timezones.toml").read_text(encoding="utf-8"))
    listed = {value for name, value in table["zones"].items() if name == value}

    def key(name: str) -> tuple[object, ...]:
        rules = zone_rules(name)
        dst = rules.dst
        summer = None if dst is None else (dst.offset_minutes, dst.start, dst.end)
        return (rules.offset_minutes, summer)

    for name, value in table["zones"].items():
        assert value in listed or value in {"Europe/Kiev", "Greenwich"}, name
        assert key(name) == key(value), name


def test_provisioning_credentials_in_the_server_url(renderer: Renderer, vendor: VendorSpec) -> None:
    """The base's own digest user and password ride in the URL, percent-encoded."""
    values = params(render(renderer, vendor, prov_password="a/b:c@d"))
    url = values["Provisioning.global.ProvisioningServer"]
    assert url == "http://7c2f80e0d605:a%2Fb%3Ac%40d@192.0.2.10:8080"


def test_handset_registration_for_the_account(renderer: Renderer, vendor: VendorSpec) -> None:
    """Handset 00001 is opened for DECT registration: its SIP account needs a handset."""
    (oper,) = render(renderer, vendor).findall("./nvm/oper")
    assert (oper.get("name"), oper.get("value")) == ("add_hs", "00001")
    assert [(p.get("name"), p.get("value")) for p in oper] == [("hs.RegStatus", "ToReg")]
    assert render(renderer, vendor, enabled=False).find("./nvm/oper") is None


def test_firmware_only_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """The <firmware><file> element appears with a firmware URL and only then."""
    url = "http://192.0.2.10:8080/firmware/n870.bin"
    files = render(renderer, vendor, firmware_url=url).findall("./firmware/file")
    assert [(f.get("url"), f.get("version")) for f in files] == [(url, "1.2.3.4")]
    assert render(renderer, vendor).find("./firmware") is None


def test_disabled_device_gets_no_credentials(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device's file carries no account and no password at all."""
    root = render(renderer, vendor, enabled=False)
    assert not any(name.startswith(ACCOUNT) for name in params(root))
    assert DEFAULTS["password"] not in "".join(p.get("value", "") for p in root.iter("param"))


def _account_params(values: dict[str, str], prefix: str) -> dict[str, str]:
    return {k: v for k, v in values.items() if k.startswith(prefix)}


@pytest.mark.parametrize(("model", "slot"), [
    ("gigaset-n870", 2),
    ("gigaset-n870", 250),  # the last handset of an N870
    ("gigaset-n610", 8),  # the last handset of an N610
])  # fmt: skip
def test_further_handsets_and_their_accounts(
    renderer: Renderer, vendor: VendorSpec, model: str, slot: int
) -> None:
    """Handset `slot` (five digits) gets add_hs and SipAccount.<slot> with its own values."""
    accounts = {"gigaset-n870": 250, "gigaset-n610": 8}[model]
    root = render(renderer, vendor, model, accounts=accounts)
    values, hs = account_values(slot), f"{slot:05d}"
    assert _account_params(params(root), f"SipAccount.{hs}.") == {
        f"SipAccount.{hs}.ProviderId": "0",
        f"SipAccount.{hs}.UserName": values["extension"],
        f"SipAccount.{hs}.AuthName": values["auth_username"],
        f"SipAccount.{hs}.AuthPassword": values["password"],
        f"SipAccount.{hs}.DisplayName": values["display_name"],
    }
    opers = [oper.get("value") for oper in root.findall("./nvm/oper[@name='add_hs']")]
    assert opers == [f"{n:05d}" for n in range(1, accounts + 1)]
    # Handset 1 keeps its own account; nothing beyond the model's last handset.
    assert params(root)[ACCOUNT + "UserName"] == DEFAULTS["extension"]
    assert f"SipAccount.{accounts + 1:05d}.UserName" not in params(root)


MAXWELL = "SIP.Account."


def maxwell_params(root: ET.Element) -> dict[str, str]:
    """The <param name= value=> pairs directly under a Maxwell's <provisioning>."""
    pairs = [(p.get("name", ""), p.get("value", "")) for p in root.findall("./param")]
    assert len(pairs) == len(dict(pairs))
    return dict(pairs)


@pytest.mark.parametrize(("model", "accounts", "slot"), [
    ("gigaset-maxwell-3", 12, 1),
    ("gigaset-maxwell-3", 12, 2),
    ("gigaset-maxwell-3", 12, 12),  # the last account of a Maxwell 3
    ("gigaset-maxwell-basic", 6, 6),
])  # fmt: skip
def test_maxwell_accounts(
    renderer: Renderer, vendor: VendorSpec, model: str, accounts: int, slot: int
) -> None:
    """Account `slot` is SIP.Account.<slot - 1> with the registrar in every server field."""
    root = render(renderer, vendor, model, accounts=accounts, transport="tcp")
    assert (root.tag, root.get("version"), root.get("productID")) == (
        "provisioning", "1.1", "mx3b",
    )  # fmt: skip
    values = maxwell_params(root)
    expected = (
        {
            "extension": DEFAULTS["extension"],
            "auth_username": DEFAULTS["auth_username"],
            "password": DEFAULTS["password"],
            "display_name": DEFAULTS["display_name"],
            "cli": DEFAULTS["cli"],
        }
        if slot == 1
        else account_values(slot)
    )
    p = f"{MAXWELL}{slot - 1}."
    assert _account_params(values, p) == {
        p + "Active": "1",
        p + "AccountName": expected["cli"],
        p + "Username": expected["extension"],
        p + "AuthName": expected["auth_username"],
        p + "AuthPassword": expected["password"],
        p + "DisplayName": expected["display_name"],
        p + "Domain": DEFAULTS["registrar"],
        p + "ProxyServer.Address": DEFAULTS["registrar"],
        p + "ProxyServer.Port": "5060",
        p + "RegistrationServer.Address": DEFAULTS["registrar"],
        p + "RegistrationServer.Port": "5060",
        p + "OutboundProxy.Mode": "2",
    }
    assert values["SIP.DefaultAccount"] == "0"
    assert f"{MAXWELL}{accounts}.Username" not in values


def test_maxwell_outbound_proxy_firmware_and_disabled(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    url = "http://192.0.2.10:8080/firmware/maxwell.bin"
    root = render(
        renderer, vendor, "gigaset-maxwell-2", outbound_proxy="sbc.example.net", firmware_url=url
    )
    values = maxwell_params(root)
    proxy = [values[f"SIP.Account.0.OutboundProxy.{k}"] for k in ("Mode", "Address", "Port")]
    assert proxy == ["0", "sbc.example.net", "5060"]
    assert [(f.get("url"), f.get("version")) for f in root.findall("./file")] == [(url, "1.2.3.4")]
    off = maxwell_params(render(renderer, vendor, "gigaset-maxwell-2", enabled=False))
    assert _account_params(off, MAXWELL) == {"SIP.Account.0.Active": "0"}


# --- Keys and the company phone book (README.md, "Keys and phone book") ---

PHONEBOOK_URL = f"{PROVISIONING_BASE_URL}phonebook/7c2f80e0d605.xml"
CENTRAL_BOOK = {
    "Netdir.21.Activated": "1",
    "CentralBook.0.Name": "Directory",
    "CentralBook.0.ServerURL": PHONEBOOK_URL,
}


def test_no_key_types(vendor: VendorSpec) -> None:
    """Gigaset documents no provisioned programmable keys: none are written."""
    assert vendor.key_types == ()


@pytest.mark.parametrize("model", ["gigaset-n870", "gigaset-maxwell-3"])
def test_keys_change_nothing(renderer: Renderer, vendor: VendorSpec, model: str) -> None:
    """A device with keys (even one beyond any capacity) gets exactly the file it gets
    without."""
    keys = (*SAMPLE_KEYS, PhoneKey(999, "blf", "202", "Anna & <Co>"))
    with_keys = ET.tostring(render(renderer, vendor, model, keys=keys))
    assert with_keys == ET.tostring(render(renderer, vendor, model))


def test_central_phone_book(renderer: Renderer, vendor: VendorSpec) -> None:
    """The N-series central phone book: activated, named with the title, this device's URL,
    which is a name the vendor serves as the phone book."""
    values = params(render(renderer, vendor))
    assert {name: values[name] for name in CENTRAL_BOOK} == CENTRAL_BOOK
    path = PHONEBOOK_URL.removeprefix(PROVISIONING_BASE_URL)
    (found,) = match_path([vendor], path)
    assert (found.spec.kind, found.mac) == (FileKind.PHONEBOOK, "7c2f80e0d605")


def test_phone_book_title_is_escaped(renderer: Renderer, vendor: VendorSpec) -> None:
    """The admin's title arrives exactly, whatever XML it contains."""
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("gigaset", "device", model="gigaset-n870", mac="7c2f80e0d605")
    context["phonebook"]["title"] = 'R&D <"Sede"> Niccolò'
    text = renderer.render("gigaset", found.spec, context).decode("utf-8")
    assert params(ET.fromstring(text))["CentralBook.0.Name"] == 'R&D <"Sede"> Niccolò'


def test_maxwell_is_not_pointed_at_the_phone_book(renderer: Renderer, vendor: VendorSpec) -> None:
    """No Maxwell phone book parameter is documented: none is written."""
    root = render(renderer, vendor, "gigaset-maxwell-3")
    names = [p.get("name", "") for p in root.iter("param")]
    assert not [n for n in names if n.startswith(("CentralBook.", "Netdir."))]


def test_phone_book_file(renderer: Renderer, vendor: VendorSpec) -> None:
    """LocalDirectory: one entry per user, the whole name as surname, the extension as
    office1 and the mobile as mobile1, exactly as given (&, <, quotes, accents)."""
    (found,) = match_path([vendor], "phonebook/7c2f80e0d605.xml")
    context = phone_context("gigaset", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = renderer.render("gigaset", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    root = ET.fromstring(text)
    assert root.tag == "LocalDirectory"
    entries = [
        (e.get("surname"), e.get("name"), e.get("office1"), e.get("mobile1"))
        for e in root.findall("entry")
    ]
    assert entries == [
        ("Anna Bianchi & <Co>", "", "202", "+393331234567"),
        ('Niccolò "Nico" D\'Àmbrosio', "", "203", ""),
        ("Rossi & <Figli>", "", "201", ""),
    ]
