"""Grandstream templates: cfg<mac>.xml, cfg<model>.xml and cfg.xml (P-values)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import parse_user_agent
from provisiond.domain.keys import PhoneKey
from provisiond.domain.timezone import ZoneRules, parse_posix_tz
from provisiond.provisioning.timezones import zone_rules
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue,
    phone_context,
    vendors,
)
from tests.template_checks import (
    TEMPLATES_ROOT,
    assert_no_leftovers,
    render_path,
    xml_root,
)

MODEL = "grandstream-gxp2135"
TRANSPORTS = {"udp": "0", "tcp": "1", "tls": "2"}
FIRMWARE = "http://192.0.2.10:8080/firmware/gs/gxp2135fw.bin"
ROME_RULE = "CET-1CEST-2,M3.5.0/02:00:00,M10.5.0/03:00:00"
DEVICE_FILE = "cfg000b828aa872.xml"
# The company phone book in every GXP/GRP device file: HTTP download from the per-MAC directory
# (the phone adds "phonebook.xml"), every 60 minutes (the default refresh), replacing edits.
PHONEBOOK_VALUES = {
    "P330": "1",
    "P331": "192.0.2.10:8080/phonebook/001565aabbcc",
    "P332": "60",
    "P333": "1",
}


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
        # Rome is in Grandstream's list: its entry, the EU rule the phone applies all year.
        "P64": ROME_RULE,
        "P143": "0",
        "P1362": "it",
    }
    if firmware_url:
        values["P192"] = "192.0.2.10:8080/firmware/gs"
    return values


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = phone_context(
        "grandstream",
        "device",
        model=MODEL,
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
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
        "P26015": "0",
        **PHONEBOOK_VALUES,
        **expected_settings("http://192.0.2.10:8080/", firmware_url),
    }


def test_label_and_disabled_line() -> None:
    context = phone_context("grandstream", "device", model=MODEL, label="Desk", enabled=False)
    values = p_values(render_path("grandstream", DEVICE_FILE, context))
    assert (values["P270"], values["P271"]) == ("Desk", "0")


def test_provisioning_credentials_in_the_device_file() -> None:
    """Config HTTP/HTTPS user name (P1360) and password (P1361) of this phone, device file only."""
    context = phone_context("grandstream", "device", model=MODEL, prov_password="provPass1")
    values = p_values(render_path("grandstream", DEVICE_FILE, context))
    assert (values["P1360"], values["P1361"]) == (DEFAULTS["mac"], "provPass1")
    bare = phone_context("grandstream", "device", model=MODEL)
    without = p_values(render_path("grandstream", DEVICE_FILE, bare))
    assert "P1360" not in without
    assert "P1361" not in without


@pytest.mark.parametrize(("path", "model"), [("cfg.xml", None), ("cfggxp2135.xml", MODEL)])
@pytest.mark.parametrize("base_url", ["http://192.0.2.10:8080/", "tftp://192.0.2.10/"])
def test_common_files(path: str, model: str | None, base_url: str) -> None:
    """Shared settings; a `tftp://` public URL makes the phone fetch over TFTP."""
    context = phone_context("grandstream", "common", model=model, base_url=base_url)
    text = render_path("grandstream", path, context)
    assert_no_leftovers(text)
    assert p_values(text) == expected_settings(base_url, "")


def test_unknown_language_is_left_out() -> None:
    context = phone_context("grandstream", "common", language="xx")
    assert "P1362" not in p_values(render_path("grandstream", "cfg.xml", context))


def zone_values(timezone: str, kind: str = "common") -> dict[str, str]:
    """P64/P246/P143 for `timezone`, with Grandstream's zone name as the resolver passes it."""
    model = None if kind == "common" else MODEL
    context = phone_context("grandstream", kind, model=model, timezone=timezone)
    path = "cfg.xml" if kind == "common" else DEVICE_FILE
    values = p_values(render_path("grandstream", path, context))
    return {key: values[key] for key in ("P64", "P246", "P143") if key in values}


@pytest.mark.parametrize("kind", ["common", "device"])
@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        # Grandstream's own list entry: the EU rule, applied by the phone all year.
        ("Europe/Rome", {"P64": ROME_RULE, "P143": "0"}),
        ("America/New_York", {"P64": "EST5EDT", "P143": "0"}),
        # No summer time, half-hour offset: Grandstream's list entry.
        ("Asia/Kolkata", {"P64": "TZT-5:30", "P143": "0"}),
        # Southern hemisphere: Grandstream's "Sydney" entry has the rules before 2008
        # (last Sunday of October / March), so the current rule goes in the self-defined zone.
        (
            "Australia/Sydney",
            {
                "P64": "customize",
                "P246": "AEST-10AEDT-11,M10.1.0/02:00:00,M4.1.0/03:00:00",
                "P143": "0",
            },
        ),
        # Not in Grandstream's list: the self-defined zone, half-hour offset west of UTC.
        (
            "America/St_Johns",
            {
                "P64": "customize",
                "P246": "NST+3:30NDT+2:30,M3.2.0/02:00:00,M11.1.0/02:00:00",
                "P143": "0",
            },
        ),
        # Numeric tzdata abbreviations (<-03>) become letters the phone's parser takes.
        ("America/Sao_Paulo", {"P64": "customize", "P246": "STD+3", "P143": "0"}),
    ],
)
def test_time_zone_as_rules(kind: str, timezone: str, expected: dict[str, str]) -> None:
    assert zone_values(timezone, kind) == expected


@pytest.mark.parametrize("timezone", ["Australia/Sydney", "America/St_Johns", "Pacific/Auckland"])
def test_self_defined_zone_is_the_zone_rule(timezone: str) -> None:
    """P246 read back as POSIX gives the zone's offsets and summer-time rules exactly."""
    context = phone_context("grandstream", "common", timezone=timezone)
    values = p_values(render_path("grandstream", "cfg.xml", context))
    assert values["P64"] == "customize"
    assert same_rules(parse_posix_tz(timezone, values["P246"]), timezone)


def rules_key(rules: ZoneRules) -> tuple[object, ...]:
    """Offsets and transitions (abbreviations and notation left out)."""
    dst = rules.dst
    return (rules.offset_minutes, None if dst is None else (dst.offset_minutes, dst.start, dst.end))


def same_rules(parsed: ZoneRules, timezone: str) -> bool:
    """The parsed rule gives the same clock all year as the zone's current tzdata rules."""
    return rules_key(parsed) == rules_key(zone_rules(timezone))


# Grandstream list values without explicit rules: the phone applies the US/Canadian rules.
_US_RULES = ",M3.2.0,M11.1.0"
_NO_RULES = {"AKST9AKDT", "PST8PDT", "MST7MDT", "CST6CDT", "EST5EDT", "AST4ADT"}


def test_every_listed_zone_matches_its_current_rules() -> None:
    """timezones.toml only names Grandstream values equal to the zone's rules in tzdata."""
    table = tomllib.loads((TEMPLATES_ROOT / "grandstream" / "timezones.toml").read_text())
    assert "Grandstream" in table["source"]
    for timezone, value in table["zones"].items():
        rule = value + _US_RULES if value in _NO_RULES else value
        if timezone == "Europe/Dublin":
            # tzdata writes Irish time as negative summer time (IST-1GMT0,M10.5.0,M3.5.0/1);
            # Grandstream's GMT/IST rule gives the same clock all year.
            assert value == "GMT+0IST-1,M3.5.0/01:00:00,M10.5.0/02:00:00"
            continue
        assert same_rules(parse_posix_tz(timezone, rule), timezone), timezone


# Several accounts (README.md, "Keys"): each slot's P-values, from the Grandstream templates.
PHONE_OFFSETS = (1, 17, 2, 3, 4, 5, 6, 7, 48)


def account_p_values(slot: int, base: int, proxy: str = "") -> dict[str, str]:
    """The phone-layout P-values account `slot` must carry (base + Grandstream's offsets)."""
    values = account_values(slot)
    expected = (
        "1",
        values["cli"],
        f"{DEFAULTS['registrar']}:5060",
        proxy,
        values["extension"],
        values["auth_username"],
        values["password"],
        values["display_name"],
        "0",
    )
    return {
        f"P{base + offset}": value for offset, value in zip(PHONE_OFFSETS, expected, strict=True)
    }


def device_values(model: str, accounts: int, **options: Any) -> dict[str, str]:
    context = phone_context("grandstream", "device", model=model, accounts=accounts, **options)
    text = render_path("grandstream", DEVICE_FILE, context)
    assert_no_leftovers(text)
    return p_values(text)


@pytest.mark.parametrize(
    ("model", "accounts", "slots"),
    [
        # GXP21xx template 1.0.11.16: accounts 2 (P401..), 6 (P1801..).
        ("grandstream-gxp2135", 6, {2: 400, 6: 1800}),
        # GXP16xx template: account 3 (P501..) of the GXP1630.
        ("grandstream-gxp1630", 3, {2: 400, 3: 500}),
        # GXP17xx template: account 4 (P601..) of the GXP1782.
        ("grandstream-gxp1782", 4, {2: 400, 4: 600}),
        # GXV3350 template: account 5 (P1701..), 7 (P50601..) and the last, 16 (P51501..).
        ("grandstream-gxv3350", 16, {2: 400, 5: 1700, 7: 50600, 16: 51500}),
        # WP820 template: account 2.
        ("grandstream-wp820", 2, {2: 400}),
    ],
)
def test_phone_accounts(model: str, accounts: int, slots: dict[int, int]) -> None:
    values = device_values(model, accounts, outbound_proxy="sbc.example.net")
    for slot, base in slots.items():
        expected = account_p_values(slot, base, "sbc.example.net:5060")
        assert {key: values[key] for key in expected} == expected, slot
    # Account 1 keeps its own P-values.
    assert (values["P35"], values["P34"], values["P271"]) == (
        DEFAULTS["extension"],
        DEFAULTS["password"],
        "1",
    )


def test_ht802_second_port() -> None:
    """HT80x template, "FXS PORT 2 Settings (HT802 Only)": P401, P747, P748, P735, P736,
    P734, P703, P830."""
    values = device_values("grandstream-ht802", 2)
    port2 = account_values(2)
    assert {
        key: values[key] for key in ("P401", "P747", "P748", "P735", "P736", "P734", "P703", "P830")
    } == {
        "P401": "1",
        "P747": f"{DEFAULTS['registrar']}:5060",
        "P748": "",
        "P735": port2["extension"],
        "P736": port2["auth_username"],
        "P734": port2["password"],
        "P703": port2["display_name"],
        "P830": "0",
    }
    assert (values["P35"], values["P3"]) == (DEFAULTS["extension"], "Rossi & <Figli>")
    # An ATA has no account name key: the label/CLI is not written.
    assert "P270" not in values
    assert "P417" not in values


@pytest.mark.parametrize(
    ("model", "accounts"), [("grandstream-ht818", 8), ("grandstream-dp750", 10)]
)
def test_profile_accounts(model: str, accounts: int) -> None:
    """HT81x/HT818 "FXS Ports" and DP75x "DECT/SIP Account Settings": one profile (P271/P47/
    P48/P130), per account P4060+i user ID, P4090+i auth ID, P4120+i password, P4180+i name,
    P4150+i profile (0 = profile 1), P4595+i active."""
    values = device_values(model, accounts, transport="tcp")
    assert (values["P271"], values["P47"], values["P48"], values["P130"]) == (
        "1",
        f"{DEFAULTS['registrar']}:5060",
        "",
        "1",
    )
    assert (values["P4060"], values["P4090"], values["P4120"], values["P4180"]) == (
        DEFAULTS["extension"],
        DEFAULTS["auth_username"],
        DEFAULTS["password"],
        "Rossi & <Figli>",
    )
    for slot in (2, accounts):
        i, expected = slot - 1, account_values(slot)
        assert {
            key: values[key]
            for key in (
                f"P{4060 + i}",
                f"P{4090 + i}",
                f"P{4120 + i}",
                f"P{4180 + i}",
                f"P{4150 + i}",
                f"P{4595 + i}",
            )
        } == {
            f"P{4060 + i}": expected["extension"],
            f"P{4090 + i}": expected["auth_username"],
            f"P{4120 + i}": expected["password"],
            f"P{4180 + i}": expected["display_name"],
            f"P{4150 + i}": "0",
            f"P{4595 + i}": "1",
        }
    # The phone layout's account-1 keys are not written for a profile-based device.
    assert not {"P35", "P34", "P270", "P26015"} & set(values)


def test_gxv_and_wp_leave_time_zone_and_language_out() -> None:
    """No GXV/WP template read documents P64/P246/P143 or P1362: they are not written."""
    for model in ("grandstream-gxv3350", "grandstream-wp820"):
        assert not {"P64", "P246", "P143", "P1362"} & set(device_values(model, 1))
    # HT81x template documents P64/P246/P143 (its language key differs: P1362 is left out).
    values = device_values("grandstream-ht818", 1)
    assert values["P64"] == ROME_RULE
    assert "P1362" not in values


def test_second_and_last_account_by_name() -> None:
    """The same keys spelled out: GXP2135 account 2 and GXV3350 account 16 (the last)."""
    two, last = account_values(2), account_values(16)
    gxp = device_values("grandstream-gxp2135", 6)
    assert {k: gxp[k] for k in ("P401", "P417", "P402", "P403", "P404", "P405", "P406", "P407",
                                "P448")} == {
        "P401": "1", "P417": two["cli"], "P402": "pbx.example.net:5060", "P403": "",
        "P404": two["extension"], "P405": two["auth_username"], "P406": two["password"],
        "P407": two["display_name"], "P448": "0",
    }  # fmt: skip
    gxv = device_values("grandstream-gxv3350", 16, transport="tls")
    assert {k: gxv[k] for k in ("P51501", "P51517", "P51502", "P51504", "P51505", "P51506",
                                "P51507", "P51548")} == {
        "P51501": "1", "P51517": last["cli"], "P51502": "pbx.example.net:5061",
        "P51504": last["extension"], "P51505": last["auth_username"],
        "P51506": last["password"], "P51507": last["display_name"], "P51548": "2",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("agent", "model"),
    [
        # Observed forms (README.md, "User-Agent"): hardware revision, two spaces on GXV33xx.
        ("Grandstream Model HW GXV3350  V1.3A SW 1.0.1.8 DevId c074ad150b88", "GXV3350"),
        ("Grandstream Model HW HT801 V1.1A SW 1.0.17.5 DevId c074ad273a10", "HT801"),
        ("Grandstream Model HW GXP1760W SW 1.0.1.64 DevId c074ad150b88", "GXP1760W"),
    ],
)
def test_user_agent_forms(agent: str, model: str) -> None:
    found = parse_user_agent(tuple(vendors().values()), agent)
    assert found is not None
    assert (found.vendor.id, found.model) == ("grandstream", model)
    assert found.mac in {"c074ad150b88", "c074ad273a10"}


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") ----------

MAC = DEFAULTS["mac"]


def vpk_numbers(k: int) -> list[str]:
    """Mode, account, description and value of fixed VPK / line key `k`."""
    if k <= 6:
        numbers = [1363 + 2 * (k - 1), 1364 + 2 * (k - 1), 1465 + 2 * (k - 1), 1466 + 2 * (k - 1)]
    else:
        numbers = [23800 + 4 * (k - 7) + i for i in range(4)]
    return [f"P{n}" for n in numbers]


def vpk(values: dict[str, str], k: int) -> tuple[str | None, ...]:
    """(mode, account, description, value) of VPK `k` as written (None where absent)."""
    return tuple(values.get(name) for name in vpk_numbers(k))


def key_values(model: str, keys: tuple[PhoneKey, ...] = SAMPLE_KEYS, **options: Any) -> str:
    context = phone_context("grandstream", "device", model=model, keys=keys, **options)
    text = render_path("grandstream", DEVICE_FILE, context)
    assert_no_leftovers(text)
    return text


def is_key_value(name: str) -> bool:
    """A line-key or expansion-module P-value (the ranges of [TPL])."""
    number = int(name[1:])
    return 1363 <= number <= 1374 or 1465 <= number <= 1476 or 23000 <= number <= 23999


def test_sample_keys_land_in_the_gxp21xx_vpks() -> None:
    """GXP2135 (8 fixed VPKs): line 0, BLF 11, Speed Dial 10, CallPark 19, DND 32; the URL key
    (no Grandstream mode) and the free VPKs 6-8 become None (-1) without account."""
    values = p_values(key_values("grandstream-gxp2135"))
    assert vpk(values, 1) == ("0", "0", DEFAULTS["extension"], "")
    assert vpk(values, 2) == ("11", "0", "Anna & <Co>", "202")
    assert vpk(values, 3) == ("10", "0", "Reception", "+390612345678")
    assert vpk(values, 4) == ("19", "0", "Park", "701")
    assert vpk(values, 5) == ("32", "0", "DND", "")
    for k in (6, 7, 8):
        assert vpk(values, k) == ("-1", None, "", "")
    assert "P23808" not in values  # VPK 9: beyond the phone's 8 keys


def test_no_key_settings_without_keys() -> None:
    """No keys: not one VPK or module P-value, the phone keeps its own."""
    values = p_values(key_values("grandstream-gxp2140", keys=()))
    assert not [name for name in values if is_key_value(name)]


def test_label_is_xml_escaped_and_cut_to_32() -> None:
    """The label reaches the phone exactly (& and < escaped once), at most 32 characters."""
    long = "x" * 40
    keys = (PhoneKey(1, "blf", "202", "Anna & <Co>"), PhoneKey(2, "speed_dial", "3", long))
    text = key_values("grandstream-gxp2135", keys=keys)
    assert "<P1465>Anna &amp; &lt;Co&gt;</P1465>" in text
    values = p_values(text)
    assert values["P1465"] == "Anna & <Co>"
    assert values["P1467"] == "x" * 32


def test_second_account_line_key() -> None:
    """A line key of account 2 has account index 1."""
    keys = (PhoneKey(1, "line", "1"), PhoneKey(2, "line", "2"))
    values = p_values(key_values("grandstream-gxp2135", keys=keys, accounts=2))
    assert vpk(values, 2) == ("0", "1", account_values(2)["extension"], "")


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        # GRP261x template: Default (31), BLF 1, SpeedDial 0, CallPark 9; 3 line keys.
        (
            "grandstream-grp2603",
            {1: ("31", "0", "201", ""), 2: ("1", "0", "Anna & <Co>", "202"),
             3: ("0", "0", "Reception", "+390612345678")},
        ),
        # GXP17xx: no DND mode, so key 5 is None; the free key 6 too.
        (
            "grandstream-gxp1760",
            {4: ("19", "0", "Park", "701"), 5: ("-1", None, "", ""), 6: ("-1", None, "", "")},
        ),
        # GXP16xx: BLF only on GXP1628/GXP1630; no None mode, so nothing else is written.
        ("grandstream-gxp1630", {2: ("11", "0", "Anna & <Co>", "202")}),
        (
            "grandstream-gxp1620",
            {1: ("0", "0", "201", ""), 2: (None, None, None, None)},
        ),
    ],
)  # fmt: skip
def test_each_family_has_its_own_modes(
    model: str, expected: dict[int, tuple[str | None, ...]]
) -> None:
    values = p_values(key_values(model))
    for k, found in expected.items():
        assert vpk(values, k) == found, k


def test_expansion_module_keys() -> None:
    """GXP2140 (4 line keys) + GXP2200EXT: module n key i at P23000 + 5 (40 (n - 1) + i - 1);
    a key past the last module never appears."""
    keys = (
        PhoneKey(5, "blf", "205", "M1 K1"),
        PhoneKey(44, "speed_dial", "123", "M1 K40"),
        PhoneKey(45, "park", "702", None),
        PhoneKey(164, "blf", "206", "M4 K40"),
        PhoneKey(165, "blf", "207", "beyond"),
        PhoneKey(166, "dnd", "", None),
    )
    text = key_values("grandstream-gxp2140", keys=keys)
    values = p_values(text)
    found = {name: value for name, value in values.items() if is_key_value(name)}
    assert found == {
        "P23000": "1", "P23001": "0", "P23002": "M1 K1", "P23003": "205",
        "P23195": "0", "P23196": "0", "P23197": "M1 K40", "P23198": "123",
        "P23200": "9", "P23201": "0", "P23202": "Park", "P23203": "702",
        "P23795": "1", "P23796": "0", "P23797": "M4 K40", "P23798": "206",
        # The phone's own 4 VPKs are free: None.
        "P1363": "-1", "P1465": "", "P1466": "",
        "P1365": "-1", "P1467": "", "P1468": "",
        "P1367": "-1", "P1469": "", "P1470": "",
        "P1369": "-1", "P1471": "", "P1472": "",
    }  # fmt: skip
    assert "207" not in text
    assert catalogue()["grandstream-gxp2140"].module_keys == 40


@pytest.mark.parametrize("model", ["grandstream-ht802", "grandstream-ht818", "grandstream-dp750",
                                   "grandstream-gxv3350", "grandstream-wp820"])  # fmt: skip
def test_models_without_keys_or_phone_book_write_none(model: str) -> None:
    """ATAs, DECT bases and the touch/Wi-Fi models (0 line keys): no key, no phone book."""
    values = p_values(key_values(model))
    assert not [name for name in values if is_key_value(name)]
    assert "P330" not in values


def test_phone_book_settings() -> None:
    """P330 (3 = HTTPS), P331 host/path without scheme or file name, P332 minutes, P333;
    the download credentials P6713/P6714 are the device's provisioning ones."""
    context = phone_context(
        "grandstream",
        "device",
        model="grandstream-grp2614",
        base_url="https://prov.example.net/p/",
        prov_password="provPass1",
    )
    assert context["phonebook"]["url"] == (
        f"https://prov.example.net/p/phonebook/{MAC}/phonebook.xml"
    )
    values = p_values(render_path("grandstream", DEVICE_FILE, context))
    assert {k: values[k] for k in ("P330", "P331", "P332", "P333", "P6713", "P6714")} == {
        "P330": "3",
        "P331": f"prov.example.net/p/phonebook/{MAC}",
        "P332": str(context["phonebook"]["refresh_minutes"]),
        "P333": "1",
        "P6713": MAC,
        "P6714": "provPass1",
    }
    without = p_values(key_values("grandstream-grp2614"))
    assert "P6713" not in without
    assert "P6714" not in without


def test_phone_book_file_name_is_per_mac_directory() -> None:
    spec = vendors()["grandstream"]
    assert spec.phonebook_path(MAC) == f"phonebook/{MAC}/phonebook.xml"
    assert set(spec.key_types) == {"line", "blf", "speed_dial", "park", "dnd"}


def test_phone_book_file() -> None:
    """<AddressBook>: every name exactly (accents, &, quotes), its extension as the Work
    number and the mobile, when there is one, as a second number of the same contact."""
    context = phone_context("grandstream", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = render_path("grandstream", f"phonebook/{MAC}/phonebook.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "AddressBook"
    contacts = [
        (
            contact.findtext("LastName"),
            [(p.get("type"), p.findtext("phonenumber"), p.findtext("accountindex"))
             for p in contact.findall("Phone")],
        )
        for contact in root.findall("Contact")
    ]  # fmt: skip
    assert contacts == [
        ("Anna Bianchi & <Co>", [("Work", "202", "0"), ("Mobile", "+393331234567", "0")]),
        ('Niccolò "Nico" D\'Àmbrosio', [("Work", "203", "0")]),
        ("Rossi & <Figli>", [("Work", "201", "0")]),
    ]


def test_keys_case_matches_the_device_file() -> None:
    """tests/keys_cases/grandstream.toml holds for the file as rendered."""
    case = tomllib.loads(
        (Path(__file__).resolve().parents[1] / "keys_cases" / "grandstream.toml").read_text()
    )
    keys = (
        PhoneKey(1, "blf", "202", "Anna"),
        PhoneKey(2, "speed_dial", "0612345678", "Reception"),
        PhoneKey(3, "park", "701", None),
    )
    text = key_values(case["model"], keys=keys)
    for kind in ("blf", "speed_dial", "park"):
        assert case[kind]
        for pattern in case[kind]:
            assert re.search(pattern, text, re.MULTILINE), (kind, pattern)
