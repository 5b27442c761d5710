"""Aastra/Mitel templates: "key: value" files with exactly the expected keys and values."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from provisiond.domain.identify import VendorSpec, match_path
from provisiond.domain.keys import PhoneKey
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.vendors import load_vendor
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    phone_context,
)

ROOT = Path(__file__).resolve().parents[2] / "phone_templates"
DEVICE_FILE = "00085D237429.cfg"
COMMON_FILES = {"aastra.cfg": None, "startup.cfg": None, "6731i.cfg": "aastra-6731i"}
TRANSPORT_CODES = {"udp": "1", "tcp": "2", "tls": "4"}
RULE_KEYS = {
    "dst minutes",
    "dst [start|end] relative date",
    *(
        f"dst {edge} {part}"
        for edge in ("start", "end")
        for part in ("month", "week", "day", "hour")
    ),
}
SHARED_KEYS = {  # Europe/Rome, a zone of the phone's own list (IT-Rome)
    "download protocol",
    "http server",
    "http port",
    "time server disabled",
    "time server1",
    "time zone name",
    "dst config",
    "sip transport protocol",
    "sip outbound proxy",
}
CREDENTIAL_KEYS = {"http digest username", "http digest password"}
# Every device file names the company phone book (the directory list file).
DIRECTORY_KEYS = {"directory 1"}
LINE_KEYS = {
    f"sip line1 {name}"
    for name in (
        "user name",
        "auth name",
        "password",
        "display name",
        "screen name",
        "screen name 2",
        "proxy ip",
        "proxy port",
        "registrar ip",
        "registrar port",
    )
}


@pytest.fixture(scope="module")
def vendor() -> VendorSpec:
    """The Aastra description, loaded by the real loader."""
    return load_vendor(ROOT / "aastra" / "vendor.toml")


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    """The production renderer over the repository's templates."""
    return Renderer(ROOT)


def render(renderer: Renderer, vendor: VendorSpec, path: str, **options: Any) -> dict[str, str]:
    """Render the file for `path` and parse it into {key: value} (quotes removed).

    Every line must be a comment or ``key: value`` with a non-empty value, every key once.
    The zone is named from Aastra's list as the resolver does; ``zone_list=False`` renders
    with a list that lacks the zone (as for any zone Aastra does not name).
    """
    (found,) = match_path([vendor], path)
    model = options.pop("model", None) or COMMON_FILES.get(path, "aastra-6731i")
    if not options.pop("zone_list", True):
        zone = options.get("timezone", DEFAULTS["timezone"])
        vendor = replace(vendor, timezones={k: v for k, v in vendor.timezones.items() if k != zone})
    context = phone_context(vendor, found.spec.kind, model=model, **options)
    text = renderer.render("aastra", found.spec, context).decode("utf-8")
    for leftover in ("{{", "{%", "{#", "None", "\r"):
        assert leftover not in text
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, colon, value = line.partition(": ")
        assert colon, f"not a key: value line: {line!r}"
        assert value.strip(), f"empty value for {key!r}"
        assert key not in values, f"duplicate key {key!r}"
        values[key] = value.removeprefix('"').removesuffix('"')
    return values


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_device_file_carries_the_account(
    renderer: Renderer, vendor: VendorSpec, transport: str
) -> None:
    """Exactly the shared and line keys, with the account under Aastra's key names."""
    values = render(renderer, vendor, DEVICE_FILE, transport=transport)
    assert set(values) == SHARED_KEYS | DIRECTORY_KEYS | LINE_KEYS
    port = "5061" if transport == "tls" else "5060"
    assert {key: values[key] for key in LINE_KEYS} == {
        "sip line1 user name": DEFAULTS["extension"],
        "sip line1 auth name": DEFAULTS["auth_username"],
        "sip line1 password": DEFAULTS["password"],
        "sip line1 display name": "Rossi & <Figli>",
        # Without a label of its own, the idle screen shows the user's name, then the number.
        "sip line1 screen name": "Rossi & <Figli>",
        "sip line1 screen name 2": DEFAULTS["cli"],
        "sip line1 proxy ip": DEFAULTS["registrar"],
        "sip line1 proxy port": port,
        "sip line1 registrar ip": DEFAULTS["registrar"],
        "sip line1 registrar port": port,
    }
    assert values["sip transport protocol"] == TRANSPORT_CODES[transport]


def test_label_is_the_screen_name(renderer: Renderer, vendor: VendorSpec) -> None:
    """An explicit label replaces the display name on the idle screen."""
    values = render(renderer, vendor, DEVICE_FILE, label="Reception")
    assert values["sip line1 screen name"] == "Reception"


def test_disabled_device_does_not_register(renderer: Renderer, vendor: VendorSpec) -> None:
    """An inactive device's line gets the 0.0.0.0 registrar: it stops registering."""
    values = render(renderer, vendor, DEVICE_FILE, enabled=False)
    assert values["sip line1 registrar ip"] == "0.0.0.0"


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_outbound_proxy_and_firmware_only_when_set(
    renderer: Renderer, vendor: VendorSpec, path: str
) -> None:
    """Options add their keys when set; unset they leave no empty or "None" value."""
    url = "http://192.0.2.10:8080/firmware/6731i.st"
    values = render(renderer, vendor, path, outbound_proxy="sbc.example.net", firmware_url=url)
    assert values["sip outbound proxy"] == "sbc.example.net"
    assert values["sip outbound proxy port"] == "5060"
    assert values["firmware server"] == "http://192.0.2.10:8080/firmware"
    unset = render(renderer, vendor, path)
    assert unset["sip outbound proxy"] == "0.0.0.0"
    assert "sip outbound proxy port" not in unset
    assert "firmware server" not in unset


@pytest.mark.parametrize("path", [DEVICE_FILE, *COMMON_FILES])
def test_time_and_provisioning(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """NTP, Rome as the phone's own zone (its rules applied by the phone), the HTTP server."""
    values = render(renderer, vendor, path)
    assert values["time server1"] == DEFAULTS["ntp_server"]
    assert values["time server disabled"] == "0"
    assert values["time zone name"] == "IT-Rome"
    assert values["dst config"] == "3"
    assert not RULE_KEYS & set(values)
    assert "time zone minutes" not in values
    assert values["download protocol"] == "HTTP"
    assert (values["http server"], values["http port"]) == ("192.0.2.10", "8080")
    assert "http path" not in values


def test_tftp_provisioning_with_a_path(renderer: Renderer, vendor: VendorSpec) -> None:
    """A TFTP base URL with a directory becomes tftp server and tftp path."""
    values = render(renderer, vendor, "aastra.cfg", base_url="tftp://192.0.2.10/phones/aastra/")
    assert values["download protocol"] == "TFTP"
    assert (values["tftp server"], values["tftp path"]) == ("192.0.2.10", "phones/aastra")
    assert "http server" not in values


@pytest.mark.parametrize("path", COMMON_FILES)
def test_common_files_hold_no_account(renderer: Renderer, vendor: VendorSpec, path: str) -> None:
    """aastra.cfg, startup.cfg and <model>.cfg: the shared keys only, no secret."""
    values = render(renderer, vendor, path)
    assert set(values) == SHARED_KEYS
    assert DEFAULTS["password"] not in "".join(values.values())


def test_display_name_cannot_inject_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """CR/LF in a name are dropped and a quote becomes an apostrophe: one line, one key."""
    evil = 'Eve"\r\nsip line1 password: stolen #x'
    values = render(renderer, vendor, DEVICE_FILE, display_name=evil)
    assert set(values) == SHARED_KEYS | DIRECTORY_KEYS | LINE_KEYS
    assert values["sip line1 password"] == DEFAULTS["password"]
    assert values["sip line1 display name"] == "Eve'sip line1 password: stolen #x"


def test_no_ntp_server_leaves_no_time_server_keys(renderer: Renderer, vendor: VendorSpec) -> None:
    """Without an NTP server the time server keys are left out, never empty."""
    values = render(renderer, vendor, DEVICE_FILE, ntp_server="")
    assert set(values) == (SHARED_KEYS | DIRECTORY_KEYS | LINE_KEYS) - {
        "time server disabled",
        "time server1",
    }


def _rules(values: dict[str, str]) -> dict[str, str]:
    """The summer-time rule keys of a rendered file."""
    return {key: values[key] for key in RULE_KEYS}


@pytest.mark.parametrize(
    ("timezone", "name"),
    [
        ("Europe/Rome", "IT-Rome"),
        ("America/New_York", "US-Eastern"),
        ("Australia/Sydney", "AU-Sydney"),
    ],
)
def test_listed_zone_is_named(
    renderer: Renderer, vendor: VendorSpec, timezone: str, name: str
) -> None:
    """A zone of Aastra's list is written by name with automatic DST, whatever the date."""
    for path in (DEVICE_FILE, "aastra.cfg"):
        values = render(renderer, vendor, path, timezone=timezone)
        assert (values["time zone name"], values["dst config"]) == (name, "3")
        assert not RULE_KEYS & set(values)


@pytest.mark.parametrize(
    ("timezone", "minutes", "rules"),
    [
        (  # EU: last Sunday of March 02:00 to last Sunday of October 03:00
            "Europe/Rome",
            "-60",
            ("3", "-1", "1", "2", "10", "-1", "1", "3"),
        ),
        (  # US: second Sunday of March 02:00 to first Sunday of November 02:00
            "America/New_York",
            "300",
            ("3", "2", "1", "2", "11", "1", "1", "2"),
        ),
        (  # southern hemisphere: starts in October, ends in April
            "Australia/Sydney",
            "-600",
            ("10", "1", "1", "2", "4", "1", "1", "3"),
        ),
    ],
)
def test_custom_zone_carries_the_rules(
    renderer: Renderer, vendor: VendorSpec, timezone: str, minutes: str, rules: tuple[str, ...]
) -> None:
    """Without a zone name: the standard offset (minutes west) and the yearly relative rules."""
    values = render(renderer, vendor, DEVICE_FILE, timezone=timezone, zone_list=False)
    assert values["time zone name"] == "Custom"
    assert values["time zone minutes"] == minutes
    assert values["dst config"] == "3"
    assert values["dst minutes"] == "60"
    assert values["dst [start|end] relative date"] == "1"
    names = [
        f"dst {edge} {part}"
        for edge in ("start", "end")
        for part in ("month", "week", "day", "hour")
    ]
    assert tuple(values[name] for name in names) == rules


def test_zone_missing_from_the_list_falls_back_to_offset(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """Asia/Kolkata is not in Aastra's list: Custom, -330 minutes (half hour), no DST."""
    values = render(renderer, vendor, DEVICE_FILE, timezone="Asia/Kolkata")
    assert values["time zone name"] == "Custom"
    assert values["time zone minutes"] == "-330"
    assert values["dst config"] == "0"
    assert not RULE_KEYS & set(values)


def test_unlisted_zone_with_summer_time_gets_rules(renderer: Renderer, vendor: VendorSpec) -> None:
    """A zone the list lacks (Cuba) still changes its clock: Custom plus the rules."""
    values = render(renderer, vendor, "aastra.cfg", timezone="America/Havana")
    assert (values["time zone name"], values["time zone minutes"]) == ("Custom", "300")
    assert values["dst config"] == "3"
    assert set(values) >= RULE_KEYS


def test_device_file_carries_provisioning_credentials(
    renderer: Renderer, vendor: VendorSpec
) -> None:
    """The phone's own HTTP digest credentials go in <MAC>.cfg, and only when set."""
    values = render(renderer, vendor, DEVICE_FILE, prov_password="provPass1")
    assert set(values) == SHARED_KEYS | DIRECTORY_KEYS | LINE_KEYS | CREDENTIAL_KEYS
    assert values["http digest username"] == DEFAULTS["mac"]
    assert values["http digest password"] == "provPass1"
    assert not CREDENTIAL_KEYS & set(render(renderer, vendor, DEVICE_FILE))


def _line_keys(slot: int) -> set[str]:
    """The keys of account `slot`: "sip lineN ..." with N the slot."""
    return {key.replace("sip line1 ", f"sip line{slot} ") for key in LINE_KEYS}


@pytest.mark.parametrize(
    ("model", "accounts"),
    [("aastra-6731i", 9), ("aastra-6869i", 24), ("aastra-57i-ct", 9), ("mitel-6940", 24)],
)
def test_every_account_gets_its_line(
    renderer: Renderer, vendor: VendorSpec, model: str, accounts: int
) -> None:
    """Slot N is written as "sip lineN ...": slot 2 and the model's last slot exactly; line 1
    stays the device's own account; nothing beyond the model's count."""
    values = render(renderer, vendor, DEVICE_FILE, model=model, accounts=accounts)
    every_line = set().union(*(_line_keys(slot) for slot in range(1, accounts + 1)))
    assert set(values) == SHARED_KEYS | DIRECTORY_KEYS | every_line
    for slot in (2, accounts):
        account = account_values(slot)
        assert {key: values[key] for key in _line_keys(slot)} == {
            f"sip line{slot} user name": account["extension"],
            f"sip line{slot} auth name": account["auth_username"],
            f"sip line{slot} password": account["password"],
            f"sip line{slot} display name": account["display_name"],
            # No label of its own: the idle screen shows the user's name, then the number.
            f"sip line{slot} screen name": account["display_name"],
            f"sip line{slot} screen name 2": account["cli"],
            f"sip line{slot} proxy ip": DEFAULTS["registrar"],
            f"sip line{slot} proxy port": "5060",
            f"sip line{slot} registrar ip": DEFAULTS["registrar"],
            f"sip line{slot} registrar port": "5060",
        }
    assert values["sip line1 user name"] == DEFAULTS["extension"]
    assert values["sip line1 password"] == DEFAULTS["password"]


def test_two_line_model_stops_at_its_count(renderer: Renderer, vendor: VendorSpec) -> None:
    """A device of the 6863i (2 accounts) never gets a line 3, even when asked for more."""
    values = render(renderer, vendor, DEVICE_FILE, model="aastra-6863i", accounts=3)
    assert set(values) == SHARED_KEYS | DIRECTORY_KEYS | LINE_KEYS | _line_keys(2)


# --- Programmable keys and the company phone book (README.md, "Keys and phone book") -------

PHONEBOOK_FILE = f"phonebook/{DEFAULTS['mac']}.csv"
KEY_PREFIXES = ("prgkey", "softkey", "topsoftkey", "expmod")


def _key_values(values: dict[str, str]) -> dict[str, str]:
    """The programmable-key lines of a parsed device file."""
    return {key: value for key, value in values.items() if key.startswith(KEY_PREFIXES)}


def test_sample_keys_on_top_softkeys(renderer: Renderer, vendor: VendorSpec) -> None:
    """6757i: topsoftkeyN type/label/value/line in Aastra's names; the free own keys "none"."""
    values = render(renderer, vendor, DEVICE_FILE, model="aastra-6757i", keys=SAMPLE_KEYS)
    expected = {
        "topsoftkey1 type": "line",
        "topsoftkey1 label": DEFAULTS["extension"],
        "topsoftkey1 line": "1",
        "topsoftkey2 type": "blf",
        "topsoftkey2 label": "Anna & <Co>",
        "topsoftkey2 value": "202",
        "topsoftkey2 line": "1",
        "topsoftkey3 type": "speeddial",
        "topsoftkey3 label": "Reception",
        "topsoftkey3 value": "+390612345678",
        "topsoftkey3 line": "1",
        "topsoftkey4 type": "park",
        "topsoftkey4 label": "Park",
        "topsoftkey4 value": "asterisk;701",
        "topsoftkey4 line": "1",
        "topsoftkey5 type": "dnd",
        "topsoftkey5 label": "DND",
        "topsoftkey6 type": "xml",
        "topsoftkey6 label": "Intranet",
        "topsoftkey6 value": "https://intranet.example.net/a?b=1&c=2",
    }
    expected |= {f"topsoftkey{n} type": "none" for n in range(7, 13)}
    assert _key_values(values) == expected


def test_programmable_keys_take_no_label(renderer: Renderer, vendor: VendorSpec) -> None:
    """6731i: prgkeyN (labels are paper there), softkeyN on the 9480i."""
    values = _key_values(render(renderer, vendor, DEVICE_FILE, keys=SAMPLE_KEYS))
    assert values["prgkey2 type"] == "blf"
    assert values["prgkey2 value"] == "202"
    assert not [key for key in values if key.endswith(" label")]
    assert not [key for key in values if not key.startswith("prgkey")]
    softkeys = render(renderer, vendor, DEVICE_FILE, model="aastra-9480i", keys=SAMPLE_KEYS)
    assert softkeys["softkey3 type"] == "speeddial"
    assert softkeys["softkey3 label"] == "Reception"


def test_module_keys_and_capacity(renderer: Renderer, vendor: VendorSpec) -> None:
    """Positions after the phone's 12 keys go to "expmodM keyN" (36 keys a module); one beyond
    the third module is never written."""
    keys = (
        PhoneKey(13, "blf", "203", "Bob"),
        PhoneKey(12 + 36 + 2, "speed_dial", "0612345678", None),
        PhoneKey(12 + 3 * 36 + 1, "blf", "204", "Beyond"),
    )
    values = _key_values(render(renderer, vendor, DEVICE_FILE, model="aastra-6757i", keys=keys))
    modules = {key: value for key, value in values.items() if key.startswith("expmod")}
    assert modules == {
        "expmod1 key1 type": "blf",
        "expmod1 key1 label": "Bob",
        "expmod1 key1 value": "203",
        "expmod1 key1 line": "1",
        "expmod2 key2 type": "speeddial",
        "expmod2 key2 label": "0612345678",
        "expmod2 key2 value": "0612345678",
        "expmod2 key2 line": "1",
    }
    assert "Beyond" not in values.values()
    assert "204" not in values.values()
    # Every own key is free here: each becomes "none".
    assert {values[f"topsoftkey{n} type"] for n in range(1, 13)} == {"none"}


def test_keys_beyond_a_small_model_never_appear(renderer: Renderer, vendor: VendorSpec) -> None:
    """The 6863i has 3 programmable keys and no module: positions 4.. are dropped."""
    values = _key_values(
        render(renderer, vendor, DEVICE_FILE, model="aastra-6863i", keys=SAMPLE_KEYS)
    )
    assert {key.split(" ")[0] for key in values} == {"prgkey1", "prgkey2", "prgkey3"}


def test_no_keys_leaves_the_phone_its_own(renderer: Renderer, vendor: VendorSpec) -> None:
    values = render(renderer, vendor, DEVICE_FILE, model="aastra-6757i")
    assert _key_values(values) == {}


def test_key_label_cannot_break_the_line(renderer: Renderer, vendor: VendorSpec) -> None:
    """A label with a quote, "#" and a line break stays one quoted value of its key."""
    keys = (PhoneKey(1, "blf", "202", 'Eve "X" #1\ntopsoftkey9 type: dnd'),)
    values = render(renderer, vendor, DEVICE_FILE, model="aastra-6757i", keys=keys)
    assert values["topsoftkey1 label"] == "Eve 'X' #1topsoftkey9 type: dnd"
    assert values["topsoftkey9 type"] == "none"


@pytest.mark.parametrize("base_url", ["http://192.0.2.10:8080/", "https://prov.example.net/p/"])
def test_device_file_names_the_phone_book(
    renderer: Renderer, vendor: VendorSpec, base_url: str
) -> None:
    """ "directory 1" is the file under the configuration server the phone reads at boot."""
    values = render(renderer, vendor, DEVICE_FILE, base_url=base_url)
    assert values["directory 1"] == PHONEBOOK_FILE
    assert vendor.phonebook_path(DEFAULTS["mac"]) == PHONEBOOK_FILE


def _phonebook_rows(text: str) -> tuple[list[str], list[list[str]]]:
    """(comment lines, entries) of a directory list: "name", "number" rows."""
    comments = [line for line in text.splitlines() if line.startswith("#")]
    body = [line for line in text.splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(body, skipinitialspace=True))
    return comments, rows


def test_phone_book_lists_every_entry() -> None:
    """Every name exactly (a double quote doubled inside its quoted field) with its extension;
    a mobile is a second entry of the same name."""
    context = phone_context(vendor="aastra", kind="phonebook", phonebook=SAMPLE_PHONEBOOK)
    (found,) = match_path([load_vendor(ROOT / "aastra" / "vendor.toml")], PHONEBOOK_FILE)
    text = Renderer(ROOT).render("aastra", found.spec, context).decode("utf-8")
    comments, rows = _phonebook_rows(text)
    assert comments == ["# Directory"]
    assert rows == [
        ["Anna Bianchi & <Co>", "202"],
        ["Anna Bianchi & <Co>", "+393331234567"],
        ['Niccolò "Nico" D\'Àmbrosio', "203"],
        ["Rossi & <Figli>", "201"],
    ]
    assert found.spec.content_type == "text/plain; charset=utf-8"
    assert '"Niccolò ""Nico"" D\'Àmbrosio", "203"' in text.splitlines()
