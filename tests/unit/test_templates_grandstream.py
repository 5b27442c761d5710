"""Grandstream templates: cfg<mac>.xml, cfg<model>.xml and cfg.xml (P-values)."""

from __future__ import annotations

import tomllib

import pytest

from provisiond.domain.timezone import ZoneRules, parse_posix_tz
from provisiond.provisioning.timezones import zone_rules
from tests.phone_context import DEFAULTS, phone_context
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
