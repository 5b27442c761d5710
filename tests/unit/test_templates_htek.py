"""Htek templates: well-formed <hl_provision> XML with the P-values the phone reads (accounts,
settings, line keys)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import VendorSpec, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import load_vendor
from tests.phone_context import DEFAULTS, SAMPLE_KEYS, account_values, phone_context

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
DEVICE_FILE = "cfg001565aabbcc.xml"
COMMON_FILES = {"cfg0010.xml": "htek-uc926", "cfg0012.xml": "htek-uc924"}
TRANSPORT_CODES = {"udp": "0", "tcp": "1", "tls": "2"}
# P-values present whatever the options (HTTP provisioning, NTP set, UTC+1).
SHARED = {"P212", "P237", "P30", "P64", "P75"}
ACCOUNT = {"P271", "P31", "P35", "P36", "P34", "P3", "P20000", "P47", "P130", "P48"}
CREDENTIALS = {"P1360", "P1361"}


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Htek description, loaded by the real loader."""
    return load_vendor(ROOT / "htek" / "vendor.toml")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The production renderer over the repository's templates."""
    return Renderer(ROOT)


def render(renderer: Renderer, vendor: VendorSpec, path: str, **options: Any) -> dict[str, str]:
    """Render the file for `path`, parse it and return {P-value: text} (each P once)."""
    (found,) = match_path([vendor], path)
    model = COMMON_FILES.get(path, "htek-uc926")
    context = phone_context("htek", found.spec.kind, model=model, **options)
    text = renderer.render("htek", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    root = ET.fromstring(text)
    assert (root.tag, root.get("version")) == ("hl_provision", "1")
    pairs = [(p.tag, p.text or "") for p in root.findall("./config/*")]
    assert len(pairs) == len(dict(pairs)), "a P-value is set twice"
    return dict(pairs)


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_account(
    renderer: Renderer, vendor: VendorSpec, transport: str
) -> None:
    """Extension, auth id, password, display name, registrar and transport as P-values."""
    values = render(renderer, vendor, DEVICE_FILE, transport=transport)
    assert set(values) == SHARED | ACCOUNT
    port = "5061" if transport == "tls" else "5060"
    assert {key: values[key] for key in ACCOUNT} == {
        "P271": "1",
        "P31": "1",
        "P35": DEFAULTS["extension"],
        "P36": DEFAULTS["auth_username"],
        "P34": DEFAULTS["password"],
        "P3": "Rossi & <Figli>",
        "P20000": DEFAULTS["cli"],
        "P47": f"{DEFAULTS['registrar']}:{port}",
        "P130": TRANSPORT_CODES[transport],
        "P48": "",
    }


def test_label_replaces_the_presented_number(renderer: Renderer, vendor: VendorSpec) -> None:
    """An explicit label is the line label; without one the label is the presented CLI."""
    assert render(renderer, vendor, DEVICE_FILE, label="Reception")["P20000"] == "Reception"


def test_disabled_device_account_is_inactive(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device gets account 1 switched off and not registering."""
    values = render(renderer, vendor, DEVICE_FILE, enabled=False)
    assert (values["P271"], values["P31"]) == ("0", "0")


def test_empty_display_name_falls_back_to_the_extension(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    assert render(renderer, vendor, DEVICE_FILE, display_name="")["P3"] == DEFAULTS["extension"]


def test_device_file_carries_the_provisioning_credentials(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """The phone's own HTTP digest credentials ride in cfg<mac>.xml, the file with secrets."""
    values = render(renderer, vendor, DEVICE_FILE, prov_password="s3cret&")
    assert (values["P1360"], values["P1361"]) == (DEFAULTS["mac"], "s3cret&")
    assert not CREDENTIALS & set(render(renderer, vendor, DEVICE_FILE))


def test_outbound_proxy_when_set(renderer: Renderer, vendor: VendorSpec) -> None:
    """host:port with a proxy; without one the value is cleared."""
    values = render(renderer, vendor, DEVICE_FILE, outbound_proxy="sbc.example.net")
    assert values["P48"] == "sbc.example.net:5060"


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_provisioning_and_firmware(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """NTP, time zone code, DST, config server (HTTP) and firmware directory when set."""
    url = "http://192.0.2.10:8080/firmware/fw926.rom"
    values = render(renderer, vendor, path, firmware_url=url)
    assert values["P30"] == DEFAULTS["ntp_server"]
    # Htek's code for UTC+1; summer time automatic (the zone's rules), not "on today".
    assert (values["P64"], values["P75"]) == ("49", "2")
    assert (values["P212"], values["P237"]) == ("1", "http://192.0.2.10:8080/")
    assert values["P192"] == "http://192.0.2.10:8080/firmware"
    assert "P192" not in render(renderer, vendor, path)


def test_tftp_provisioning(renderer: Renderer, vendor: VendorSpec) -> None:
    """A TFTP base URL selects upgrade mode 0."""
    values = render(renderer, vendor, "cfg0010.xml", base_url="tftp://192.0.2.10/")
    assert (values["P212"], values["P237"]) == ("0", "tftp://192.0.2.10/")


@pytest.mark.parametrize("path", COMMON_FILES)
def test_common_files_hold_no_account(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """Model common files: shared settings only, never the account's secret."""
    values = render(renderer, vendor, path, outbound_proxy="sbc.example.net")
    assert set(values) == SHARED
    assert DEFAULTS["password"] not in "".join(values.values())


@pytest.mark.parametrize(
    ("timezone", "code", "dst"),
    [
        ("Europe/Rome", "49", "2"),
        ("America/New_York", "18", "2"),
        ("Australia/Sydney", "96", "2"),  # southern hemisphere: same switch, rules on the phone
        ("Asia/Kolkata", "84", "0"),  # half-hour offset, no summer time
    ],
)
@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_zone_all_year(
    renderer: Renderer, vendor: VendorSpec, path: str, timezone: str, code: str, dst: str
) -> None:
    """Zone code by standard offset; summer time automatic where the zone has it, else off."""
    values = render(renderer, vendor, path, timezone=timezone)
    assert (values["P64"], values["P75"]) == (code, dst)


def test_offset_missing_from_the_zone_table(renderer: Renderer, vendor: VendorSpec) -> None:
    """UTC+5:45 has no Htek code: P64 is left out (the phone keeps its zone); no summer time."""
    values = render(renderer, vendor, DEVICE_FILE, timezone="Asia/Kathmandu")
    assert "P64" not in values
    assert values["P75"] == "0"


# Accounts 2-4 (README.md, "Accounts"): (active, SIP server, outbound proxy, transport, label,
# user id, auth id, password, display name, SIP registration) per slot.
ACCOUNT_KEYS = {
    2: ("P401", "P747", "P748", "P830", "P20001", "P735", "P736", "P734", "P703", "P731"),
    3: ("P501", "P502", "P503", "P930", "P20002", "P504", "P505", "P506", "P507", "P510"),
    4: ("P601", "P602", "P603", "P1030", "P20003", "P604", "P605", "P606", "P607", "P610"),
}


def account_file(
    renderer: Renderer, vendor: VendorSpec, model: str, accounts: int, **options: Any
) -> tuple[dict[str, str], dict[str, str | None]]:
    """{P-value: text} of the device file of `model` carrying `accounts` accounts."""
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("htek", "device", model=model, accounts=accounts, **options)
    text = renderer.render("htek", found.spec, context).decode("utf-8")
    pairs = [(p.tag, p.text or "") for p in ET.fromstring(text).findall("./config/*")]
    assert len(pairs) == len(dict(pairs)), "a P-value is set twice"
    return dict(pairs), {p.tag: p.get("para") for p in ET.fromstring(text).findall("./config/*")}


@pytest.mark.parametrize(("model", "accounts"), [("htek-uc924", 4), ("htek-uc903", 4)])
def test_second_and_last_account(
    renderer: Renderer, vendor: VendorSpec, model: str, accounts: int
) -> None:
    values, paras = account_file(
        renderer, vendor, model, accounts, transport="tcp", outbound_proxy="sbc.example.net"
    )
    for slot in (2, accounts):
        expected = account_values(slot)
        keys = ACCOUNT_KEYS[slot]
        assert {key: values[key] for key in keys} == dict(
            zip(
                keys,
                (
                    "1",
                    f"{DEFAULTS['registrar']}:5060",
                    "sbc.example.net:5060",
                    "1",
                    expected["cli"],
                    expected["extension"],
                    expected["auth_username"],
                    expected["password"],
                    expected["display_name"],
                    "1",
                ),
                strict=True,
            )
        )
        assert paras[keys[5]] == f"Account{slot}.SipUserId"
    # Account 1 is unchanged by the others.
    assert (values["P35"], values["P34"]) == (DEFAULTS["extension"], DEFAULTS["password"])


def test_account_two_by_name(renderer: Renderer, vendor: VendorSpec) -> None:
    """UC912 (two accounts): account 2 spelled out; no account 3 keys."""
    values, _ = account_file(renderer, vendor, "htek-uc912", 2)
    two = account_values(2)
    assert {key: values[key] for key in ACCOUNT_KEYS[2]} == {
        "P401": "1",
        "P747": "pbx.example.net:5060",
        "P748": "",
        "P830": "0",
        "P20001": two["cli"],
        "P735": two["extension"],
        "P736": two["auth_username"],
        "P734": two["password"],
        "P703": two["display_name"],
        "P731": "1",
    }
    assert not set(ACCOUNT_KEYS[3]) & set(values)


# --- Line keys (README.md, "Keys and phone book") ------------------------------------------

# (type, value, label, account) P-values of line keys 1-4 and of 5 and 8.
LINE_KEY_PVALUES = {
    1: ("P41200", "P41300", "P41400", "P41500"),
    2: ("P41201", "P41301", "P41401", "P41501"),
    3: ("P41202", "P41302", "P41402", "P41502"),
    4: ("P41203", "P41303", "P41403", "P41503"),
    5: ("P20200", "P20201", "P20202", "P20203"),
    8: ("P20215", "P20216", "P20217", "P20218"),
}
# Htek's key types: 1 Line, 2 Speed Dial, 3 BLF, 8 Call Park.
KEY_TYPES = {"line": "1", "speed_dial": "2", "blf": "3", "park": "8"}


def key_file(
    renderer: Renderer,
    vendor: VendorSpec,
    model: str,
    keys: Sequence[PhoneKey],
    **options: Any,
) -> tuple[dict[str, str], dict[str, str | None]]:
    """({P-value: text}, {P-value: para}) of the device file of `model` with `keys`."""
    (found,) = match_path([vendor], DEVICE_FILE)
    context = phone_context("htek", "device", model=model, keys=keys, **options)
    text = renderer.render("htek", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None"):
        assert leftover not in text
    elements = ET.fromstring(text).findall("./config/*")
    pairs = [(p.tag, p.text or "") for p in elements]
    assert len(pairs) == len(dict(pairs)), "a P-value is set twice"
    return dict(pairs), {p.tag: p.get("para") for p in elements}


def line_key(values: dict[str, str], position: int) -> tuple[str, ...]:
    return tuple(values[p] for p in LINE_KEY_PVALUES[position])


def test_sample_keys_on_the_line_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """Line, BLF, speed dial, park under the line keys' P-values; account 1 is 0."""
    values, paras = key_file(renderer, vendor, "htek-uc926", SAMPLE_KEYS)
    assert line_key(values, 1) == (KEY_TYPES["line"], "", DEFAULTS["extension"], "0")
    assert line_key(values, 2) == (KEY_TYPES["blf"], "202", "Anna & <Co>", "0")
    assert line_key(values, 3) == (KEY_TYPES["speed_dial"], "+390612345678", "Reception", "0")
    assert line_key(values, 4) == (KEY_TYPES["park"], "701", "Park", "0")
    assert [paras[p] for p in LINE_KEY_PVALUES[2]] == [
        "LineKey2_Type",
        "LineKey2_Value",
        "LineKey2_Label",
        "LineKey2_Account",
    ]
    # DND and URL keys (positions 5 and 6) have no Htek type: nothing is written for them.
    assert not set(LINE_KEY_PVALUES[5]) & set(values)
    assert not [p for p in values if p.startswith("P202")]
    # The account itself is unchanged.
    assert values["P35"] == DEFAULTS["extension"]


def test_keys_from_the_fifth_on(renderer: Renderer, vendor: VendorSpec) -> None:
    """UC926: keys 5-8 on the second P-value range, five numbers per key."""
    values, paras = key_file(
        renderer,
        vendor,
        "htek-uc926",
        (PhoneKey(5, "blf", "203", "Bruno"), PhoneKey(8, "line", "2", None)),
        accounts=2,
    )
    assert line_key(values, 5) == (KEY_TYPES["blf"], "203", "Bruno", "0")
    # Line key of account 2: its main extension as the label, account index 1.
    assert line_key(values, 8) == (KEY_TYPES["line"], "", account_values(2)["extension"], "1")
    assert paras["P20215"] == "LineKey8_Type"


def test_no_keys_writes_no_key(renderer: Renderer, vendor: VendorSpec) -> None:
    values, paras = key_file(renderer, vendor, "htek-uc926", ())
    assert not [para for para in paras.values() if para and para.startswith("LineKey")]
    assert set(values) == SHARED | ACCOUNT


def test_free_keys_are_left_alone(renderer: Renderer, vendor: VendorSpec) -> None:
    """No documented N/A type: only the keys set are written."""
    _, paras = key_file(renderer, vendor, "htek-uc926", (PhoneKey(2, "blf", "202", "A"),))
    assert sorted(p for p, para in paras.items() if para and para.startswith("LineKey")) == (
        sorted(LINE_KEY_PVALUES[2])
    )


def test_label_is_escaped(renderer: Renderer, vendor: VendorSpec) -> None:
    """XML-escaped: the label arrives exactly and cannot add an element."""
    evil = 'A & <P34>x</P34> "q"'
    values, _ = key_file(renderer, vendor, "htek-uc926", (PhoneKey(2, "blf", "202", evil),))
    assert values["P41401"] == evil
    assert values["P34"] == DEFAULTS["password"]


@pytest.mark.parametrize(("model", "beyond"), [("htek-uc926", 9), ("htek-uc912", 3)])
def test_key_beyond_the_capacity_never_appears(
    renderer: Renderer, vendor: VendorSpec, model: str, beyond: int
) -> None:
    values, paras = key_file(
        renderer, vendor, model, (PhoneKey(1, "blf", "202", "A"), PhoneKey(beyond, "blf", "9", "Z"))
    )
    assert line_key(values, 1)[0] == KEY_TYPES["blf"]
    assert "Z" not in values.values()
    assert [para for para in paras.values() if para and para.startswith("LineKey")] == [
        "LineKey1_Type",
        "LineKey1_Value",
        "LineKey1_Label",
        "LineKey1_Account",
    ]


def test_no_phone_book(vendor: VendorSpec) -> None:
    """No Htek document gives the phone book's keys or format: no file, no URL."""
    assert vendor.phonebook_path(DEFAULTS["mac"]) is None
    assert not vendor.phonebook_format
    context = phone_context("htek", "device", model="htek-uc926")
    assert context["phonebook"]["url"] == ""
