"""Yealink templates: boot files, common files, the per-MAC account file (with the keys) and
the phone book file."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import pytest

from provisiond.domain.identify import match_path, parse_user_agent
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.directory import PhonebookEntry
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue,
    phone_context,
    vendors,
)
from tests.template_checks import (
    assert_no_leftovers,
    parse_key_values,
    render_path,
    xml_root,
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


# The company phone book in every desk/conference phone's <mac>.cfg (platform defaults: the
# title "Directory", a refresh every 3600 s).
PHONEBOOK_KEYS = {
    "remote_phonebook.data.1.url": f"{PROVISIONING_BASE_URL}phonebook/{DEFAULTS['mac']}.xml",
    "remote_phonebook.data.1.name": "Directory",
    "features.remote_phonebook.flash_time": "3600",
}


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
        **PHONEBOOK_KEYS,
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


# --- Several accounts per device -----------------------------------------------------------


def account_keys(model: str, accounts: int, **options: Any) -> dict[str, str]:
    """The keys of the device file of `model` carrying `accounts` accounts."""
    context = phone_context("yealink", "device", model=model, accounts=accounts, **options)
    text = render_path("yealink", "001565aabbcc.cfg", context)
    assert_no_leftovers(text)
    return parse_key_values(text, "=")


def expected_account(slot: int, port: str = "5060", transport: str = "0") -> dict[str, str]:
    """The documented account.X.* keys of account `slot` (2 and up) of the test device."""
    values = account_values(slot)
    return {
        f"account.{slot}.enable": "1",
        # No presented-number key: the label shows the account's own CLI.
        f"account.{slot}.label": values["cli"],
        f"account.{slot}.display_name": values["display_name"],
        f"account.{slot}.user_name": values["extension"],
        f"account.{slot}.auth_name": values["auth_username"],
        f"account.{slot}.password": values["password"],
        f"account.{slot}.sip_server.1.address": DEFAULTS["registrar"],
        f"account.{slot}.sip_server.1.port": port,
        f"account.{slot}.sip_server.1.transport_type": transport,
        f"account.{slot}.outbound_proxy_enable": "0",
    }


def keys_of(keys: dict[str, str], slot: int) -> dict[str, str]:
    return {k: v for k, v in keys.items() if k.startswith(f"account.{slot}.")}


@pytest.mark.parametrize(
    ("model", "last"),
    [
        ("yealink-t46s", 16),  # T46S: X = 1-16
        ("yealink-t42s", 12),  # T42S: X = 1-12
        ("yealink-t41s", 6),  # T41S: X = 1-6
        ("yealink-t33g", 4),  # T33G: X = 1-4
        ("yealink-w52p", 5),  # DECT base: one account per handset
        ("yealink-w80b", 100),
    ],
)
def test_second_and_last_account(model: str, last: int) -> None:
    assert catalogue()[model].accounts == last
    keys = account_keys(model, last)
    assert keys_of(keys, 2) == expected_account(2)
    assert keys_of(keys, last) == expected_account(last)
    assert keys_of(keys, last + 1) == {}
    # Slot 1 stays the device's own account.
    assert keys["account.1.user_name"] == DEFAULTS["extension"]
    assert keys["account.1.password"] == DEFAULTS["password"]


def test_every_account_takes_the_transport_and_the_outbound_proxy() -> None:
    keys = account_keys("yealink-t54w", 3, transport="tls", outbound_proxy="sbc.example.net")
    for slot in (1, 2, 3):
        assert keys[f"account.{slot}.sip_server.1.port"] == "5061"
        assert keys[f"account.{slot}.sip_server.1.transport_type"] == "2"
        assert keys[f"account.{slot}.outbound_proxy_enable"] == "1"
        assert keys[f"account.{slot}.outbound_proxy.1.address"] == "sbc.example.net"
        assert keys[f"account.{slot}.outbound_proxy.1.port"] == "5061"
    # The modern firmware gets no legacy key.
    assert not [k for k in keys if k.endswith((".transport", "_host", "_port"))]


def test_slots_beyond_the_model_are_never_written() -> None:
    """A T41S carries 6 accounts: a seventh (left after a model change) is dropped."""
    keys = account_keys("yealink-t41s", 8)
    assert keys["account.6.user_name"] == account_values(6)["extension"]
    assert keys_of(keys, 7) == {}
    assert keys_of(keys, 8) == {}


def test_firmware_before_81_gets_the_account_transport() -> None:
    """T4xG (firmware before 81) reads account.X.transport (0 UDP, 1 TCP, 2 TLS)."""
    keys = account_keys("yealink-t46g", 2, transport="tcp")
    assert keys["account.1.transport"] == keys["account.2.transport"] == "1"
    assert keys["account.2.sip_server.1.transport_type"] == "1"
    assert "account.2.sip_server_host" not in keys


def test_first_generation_gets_the_older_server_keys() -> None:
    """T2xP (firmware 70-73): sip_server_host/port and outbound_host/port as well."""
    keys = account_keys("yealink-t22p", 3, transport="tcp", outbound_proxy="sbc.example.net:5070")
    assert keys_of(keys, 3) == {
        **expected_account(3, transport="1"),
        "account.3.transport": "1",
        "account.3.sip_server_host": DEFAULTS["registrar"],
        "account.3.sip_server_port": "5060",
        "account.3.outbound_proxy_enable": "1",
        "account.3.outbound_proxy.1.address": "sbc.example.net",
        "account.3.outbound_proxy.1.port": "5070",
        "account.3.outbound_host": "sbc.example.net",
        "account.3.outbound_port": "5070",
    }


@pytest.mark.parametrize(
    ("user_agent", "model"),
    [
        ("Yealink SIP-T21P_E2 52.84.0.15 00:15:65:aa:bb:cc", "yealink-t21p-e2"),
        ("Yealink SIP-T21_E2 52.84.0.15 00:15:65:aa:bb:cc", "yealink-t21-e2"),
        ("Yealink SIP-VP-T49G 51.80.0.100 00:15:65:aa:bb:cc", "yealink-vp-t49g"),
        ("Yealink CP920 78.86.0.15 00:15:65:aa:bb:cc", "yealink-cp920"),
        ("Yealink SIP-W80DM 103.87.0.14 00:15:65:aa:bb:cc", "yealink-w80dm"),
    ],
)
def test_user_agents_of_the_new_families(user_agent: str, model: str) -> None:
    agent = parse_user_agent(tuple(vendors().values()), user_agent)
    assert agent is not None
    assert agent.vendor.id == "yealink"
    assert agent.mac == "001565aabbcc"
    info = catalogue()[model]
    assert agent.model is not None
    assert agent.model.replace("_", " ").lower() == info.name.lower()


@pytest.mark.parametrize(
    ("path", "family"),
    [("y000000000005.cfg", "5"), ("y000000000123.cfg", "123"), ("y000000000185.cfg", "185")],
)
def test_one_to_three_digit_family_files(path: str, family: str) -> None:
    (match,) = match_path((vendors()["yealink"],), path)
    assert match.family == family
    assert [m for m in catalogue().values() if m.vendor == "yealink" and m.family == family]


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") ------


def key_file(model: str, keys: Sequence[PhoneKey], **options: Any) -> dict[str, str]:
    """The keys of the device file of `model` for a device with `keys`."""
    context = phone_context("yealink", "device", model=model, keys=keys, **options)
    text = render_path("yealink", "001565aabbcc.cfg", context)
    assert_no_leftovers(text)
    return parse_key_values(text, "=")


def key_settings(keys: dict[str, str]) -> dict[str, str]:
    """Only the key settings: linekey.* and expansion_module.*."""
    return {k: v for k, v in keys.items() if k.startswith(("linekey.", "expansion_module."))}


def test_sample_keys_on_the_line_keys() -> None:
    """Each sample key under linekey.N with the documented type code and the account."""
    keys = key_settings(key_file(MODEL, SAMPLE_KEYS))
    assert keys == {
        # Line 1: the user's main extension as the label, no value.
        "linekey.1.type": "15",
        "linekey.1.line": "1",
        "linekey.1.label": DEFAULTS["extension"],
        "linekey.2.type": "16",
        "linekey.2.line": "1",
        "linekey.2.value": "202",
        "linekey.2.label": "Anna & <Co>",
        "linekey.3.type": "13",
        "linekey.3.line": "1",
        "linekey.3.value": "+390612345678",
        "linekey.3.label": "Reception",
        "linekey.4.type": "10",
        "linekey.4.line": "1",
        "linekey.4.value": "701",
        "linekey.4.label": "Park",
        "linekey.5.type": "5",
        "linekey.5.line": "1",
        "linekey.5.label": "DND",
        "linekey.6.type": "17",
        "linekey.6.line": "1",
        "linekey.6.value": "https://intranet.example.net/a?b=1&c=2",
        "linekey.6.label": "Intranet",
        # The T46S's other own keys (27) become N/A: a key the admin removed disappears.
        **{f"linekey.{n}.type": "0" for n in range(7, 28)},
    }


def test_no_keys_writes_no_key_setting() -> None:
    """Without keys the phone keeps its own: not even N/A is written."""
    assert key_settings(key_file(MODEL, ())) == {}


def test_line_key_of_a_second_account() -> None:
    keys = key_file(MODEL, (PhoneKey(1, "line", "2", "Mobile"),), accounts=2)
    assert (keys["linekey.1.type"], keys["linekey.1.line"]) == ("15", "2")
    assert keys["linekey.1.label"] == "Mobile"
    assert "linekey.1.value" not in keys


def test_park_key_without_orbit_writes_no_value() -> None:
    keys = key_file(MODEL, (PhoneKey(2, "park", "", None),))
    assert (keys["linekey.2.type"], keys["linekey.2.label"]) == ("10", "Park")
    assert "linekey.2.value" not in keys
    assert keys["linekey.1.type"] == "0"


def test_label_cannot_inject_a_setting() -> None:
    """A label is one value on one line: a line break cannot add a setting."""
    evil = "Anna\nlinekey.9.type = 16\r\naccount.1.password = x"
    keys = key_file(MODEL, (PhoneKey(2, "blf", "202", evil),))
    assert keys["linekey.2.label"] == "Annalinekey.9.type = 16account.1.password = x"
    assert keys["linekey.9.type"] == "0"
    assert keys["account.1.password"] == DEFAULTS["password"]


def test_expansion_module_keys() -> None:
    """T46S: 27 own keys (linekey.1-27), then each EXP40 module's 40 keys (positions 28-67,
    68-107, ...)."""
    info = catalogue()[MODEL]
    assert (info.line_keys, info.expansion_modules, info.module_keys) == (27, 6, 40)
    keys = key_file(
        MODEL,
        (
            PhoneKey(28, "blf", "202", "Anna"),
            PhoneKey(67, "speed_dial", "0612345678", "Reception"),
            PhoneKey(68, "park", "701", None),
            PhoneKey(267, "dnd", "", None),  # the last key of the sixth module
        ),
    )
    assert {k: v for k, v in keys.items() if k.startswith("expansion_module.")} == {
        "expansion_module.1.key.1.type": "16",
        "expansion_module.1.key.1.line": "1",
        "expansion_module.1.key.1.value": "202",
        "expansion_module.1.key.1.label": "Anna",
        "expansion_module.1.key.40.type": "13",
        "expansion_module.1.key.40.line": "1",
        "expansion_module.1.key.40.value": "0612345678",
        "expansion_module.1.key.40.label": "Reception",
        "expansion_module.2.key.1.type": "10",
        "expansion_module.2.key.1.line": "1",
        "expansion_module.2.key.1.value": "701",
        "expansion_module.2.key.1.label": "Park",
        "expansion_module.6.key.40.type": "5",
        "expansion_module.6.key.40.line": "1",
        "expansion_module.6.key.40.label": "DND",
    }
    # Module keys are no own keys: all 27 own keys are free (N/A).
    assert {k: v for k, v in keys.items() if k.startswith("linekey.")} == {
        f"linekey.{n}.type": "0" for n in range(1, 28)
    }


@pytest.mark.parametrize(
    ("model", "beyond"),
    [
        ("yealink-t46s", 268),  # 27 + 6 x 40
        ("yealink-t41s", 16),  # 15 own keys, no module (the guide lists no ext keys for it)
        ("yealink-t54w", 191),  # 10 + 3 x 60 (EXP50)
    ],
)
def test_key_beyond_the_capacity_never_appears(model: str, beyond: int) -> None:
    info = catalogue()[model]
    assert info.line_keys + info.expansion_modules * info.module_keys == beyond - 1
    keys = key_file(model, (PhoneKey(2, "blf", "202", "Anna"), PhoneKey(beyond, "dnd", "", "X")))
    assert keys["linekey.2.type"] == "16"
    assert not [k for k in keys if k.startswith("expansion_module.")]
    assert "X" not in keys.values()


def test_t29g_module_key_21_is_skipped() -> None:
    """T27/T29 modules: ext key 21 cannot be configured (the guide's Y = 1-20, 22-40)."""
    keys = key_file(
        "yealink-t29g",
        (PhoneKey(48, "blf", "202", "Anna"), PhoneKey(49, "blf", "203", "Bruno")),
    )
    assert not [k for k in keys if k.startswith("expansion_module.1.key.21.")]
    assert keys["expansion_module.1.key.22.value"] == "203"


def test_first_generation_gets_no_n_a_keys() -> None:
    """T2xP (firmware 70-73): the keys set, but the free ones are left alone."""
    keys = key_settings(key_file("yealink-t22p", (PhoneKey(2, "blf", "202", "Anna"),)))
    assert keys == {
        "linekey.2.type": "16",
        "linekey.2.line": "1",
        "linekey.2.value": "202",
        "linekey.2.label": "Anna",
    }


@pytest.mark.parametrize("model", ["yealink-cp920", "yealink-w80b"])
def test_models_without_line_keys_get_no_keys(model: str) -> None:
    assert catalogue()[model].line_keys == 0
    assert key_settings(key_file(model, SAMPLE_KEYS)) == {}


def test_phone_book_keys() -> None:
    """Desk and conference phones point at their phone book file; DECT bases do not (no
    document found for them)."""
    for model in (MODEL, "yealink-cp920", "yealink-t22p"):
        keys = key_file(model, ())
        assert {k: keys[k] for k in PHONEBOOK_KEYS} == PHONEBOOK_KEYS
    dect = key_file("yealink-w80b", ())
    assert not [k for k in dect if "phonebook" in k]
    # The URL is a file of this vendor, for this very MAC.
    (match,) = match_path((vendors()["yealink"],), f"phonebook/{DEFAULTS['mac']}.xml")
    assert match.spec.kind == "phonebook"
    assert match.mac == DEFAULTS["mac"]


def phone_book(entries: Sequence[PhonebookEntry]) -> ET.Element:
    text = render_path(
        "yealink",
        f"phonebook/{DEFAULTS['mac']}.xml",
        phone_context("yealink", "phonebook", phonebook=entries),
    )
    assert_no_leftovers(text)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    return xml_root(text)


def test_phone_book_file() -> None:
    """Every name exactly (accents, &, <, quotes), its extension, then its mobile."""
    root = phone_book(SAMPLE_PHONEBOOK)
    assert root.tag == "YealinkIPPhoneDirectory"
    entries = [
        (entry.findtext("Name"), [t.text for t in entry.findall("Telephone")])
        for entry in root.findall("DirectoryEntry")
    ]
    assert entries == [
        ("Anna Bianchi & <Co>", ["202", "+393331234567"]),
        ('Niccolò "Nico" D\'Àmbrosio', ["203"]),
        ("Rossi & <Figli>", ["201"]),
    ]
    assert len(root) == len(SAMPLE_PHONEBOOK)


def test_empty_phone_book_file_parses() -> None:
    root = phone_book(())
    assert (root.tag, len(root)) == ("YealinkIPPhoneDirectory", 0)
