"""Polycom templates: master files, <mac>-user.cfg and common.cfg (XML attributes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from provisiond.domain.identify import FileKind, parse_user_agent
from provisiond.domain.keys import PhoneKey
from tests.phone_context import (
    DEFAULTS,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    catalogue,
    catalogue_models,
    phone_context,
)
from tests.template_checks import (
    assert_no_leftovers,
    load,
    render_path,
    spec_for,
    xml_root,
)

MODEL = "polycom-vvx-400"
TRANSPORTS = {"udp": "UDPOnly", "tcp": "TCPOnly", "tls": "TLS"}
FIRMWARE = "http://192.0.2.10:8080/firmware/3111-46135-002.sip.ld"


DST = "tcpIpApp.sntp.daylightSavings"
# Europe/Rome (CET-1CEST,M3.5.0,M10.5.0/3): last Sunday of March 02:00 to last Sunday of
# October 03:00. dayOfWeek counts 1 = Sunday; lastInMonth makes the date unnecessary.
ROME_TIME = {
    "tcpIpApp.sntp.gmtOffset": "3600",
    f"{DST}.enable": "1",
    f"{DST}.fixedDayEnable": "0",
    f"{DST}.start.month": "3",
    f"{DST}.start.dayOfWeek": "1",
    f"{DST}.start.dayOfWeek.lastInMonth": "1",
    f"{DST}.start.time": "2",
    f"{DST}.stop.month": "10",
    f"{DST}.stop.dayOfWeek": "1",
    f"{DST}.stop.dayOfWeek.lastInMonth": "1",
    f"{DST}.stop.time": "3",
}
CREDENTIALS = {
    "device.prov.user.set": "1",
    "device.prov.user": "0004f2aabbcc",  # the device's MAC
    "device.prov.password.set": "1",
    "device.prov.password": "provPass1",
}


def attributes(root: ET.Element) -> dict[str, str]:
    """Every setting of a <polycomConfig> document (settings are attributes), keys unique."""
    settings: dict[str, str] = {}
    for element in root.iter():
        for key, value in element.attrib.items():
            assert key not in settings, key
            settings[key] = value
    return settings


def expected_settings(base_url: str = "http://192.0.2.10:8080/") -> dict[str, str]:
    """Time, language and provisioning server, shared by common.cfg and <mac>-user.cfg."""
    scheme, _, location = base_url.partition("://")
    return {
        "tcpIpApp.sntp.address": DEFAULTS["ntp_server"],
        **ROME_TIME,
        "lcl.ml.lang": "Italian_Italy",
        "voIpProt.SIP.specialEvent.checkSync.alwaysReboot": "0",
        "device.set": "1",
        "device.prov.serverType.set": "1",
        "device.prov.serverType": {"tftp": "1", "http": "2", "https": "3"}[scheme],
        "device.prov.serverName.set": "1",
        "device.prov.serverName": location,
    }


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("credentials", [False, True])
def test_user_file(transport: str, proxy: str, credentials: bool) -> None:
    context = phone_context(
        "polycom",
        "device",
        model=MODEL,
        mac="0004f2aabbcc",
        transport=transport,
        outbound_proxy=proxy,
        prov_password="provPass1" if credentials else "",
    )
    text = render_path("polycom", "0004F2AABBCC-user.cfg", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "polycomConfig"
    port = "5061" if transport == "tls" else "5060"
    expected = {
        "reg.1.address": DEFAULTS["extension"],
        "reg.1.auth.userId": DEFAULTS["auth_username"],
        "reg.1.auth.password": DEFAULTS["password"],
        "reg.1.displayName": "Rossi & <Figli>",
        "reg.1.label": DEFAULTS["cli"],
        "reg.1.server.1.address": DEFAULTS["registrar"],
        "reg.1.server.1.port": port,
        "reg.1.server.1.transport": TRANSPORTS[transport],
        "reg.1.server.1.register": "1",
        **expected_settings(),
    }
    if proxy:
        expected["reg.1.outboundProxy.address"] = proxy
        expected["reg.1.outboundProxy.port"] = port
        expected["reg.1.outboundProxy.transport"] = TRANSPORTS[transport]
    # The phone's own provisioning (HTTP digest) credentials ride in the file with secrets,
    # and only when the device has some.
    if credentials:
        expected |= CREDENTIALS
    # The phone book is the contact directory, read-only (README.md, "Keys and phone book").
    expected["dir.local.readonly"] = "1"
    assert attributes(root) == expected


def test_user_file_label_and_disabled_line() -> None:
    context = phone_context("polycom", "device", model=MODEL, label="Desk 1", enabled=False)
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["reg.1.label"] == "Desk 1"
    assert settings["reg.1.server.1.register"] == "0"


@pytest.mark.parametrize("base_url", ["http://192.0.2.10:8080/", "tftp://192.0.2.10/"])
def test_common_file(base_url: str) -> None:
    """Shared by every phone; a `tftp://` public URL makes the phones fetch over TFTP."""
    context = phone_context("polycom", "common", base_url=base_url)
    text = render_path("polycom", "common.cfg", context)
    assert_no_leftovers(text)
    assert attributes(xml_root(text)) == expected_settings(base_url)


@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_master_files(firmware_url: str) -> None:
    own = render_path(
        "polycom",
        "0004F2AABBCC.cfg",
        phone_context(
            "polycom", "device_boot", model=MODEL, mac="0004f2aabbcc", firmware_url=firmware_url
        ),
    )
    default = render_path(
        "polycom", "000000000000.cfg", phone_context("polycom", "common", firmware_url=firmware_url)
    )
    for text, first in ((own, "0004f2aabbcc-user.cfg"), (default, "[PHONE_MAC_ADDRESS]-user.cfg")):
        assert_no_leftovers(text)
        root = xml_root(text)
        assert root.tag == "APPLICATION"
        assert root.attrib["APP_FILE_PATH"] == (firmware_url or "sip.ld")
        # The account file comes first: files listed first win.
        assert root.attrib["CONFIG_FILES"] == f"{first}, common.cfg"
        assert DEFAULTS["password"] not in text


def test_display_name_is_escaped() -> None:
    context = phone_context("polycom", "device", model=MODEL, display_name='A "quoted" <name> &\nx')
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["reg.1.displayName"] == 'A "quoted" <name> &x'


def test_provisioning_password_is_escaped() -> None:
    context = phone_context("polycom", "device", model=MODEL, prov_password='p"x\n<a>&q')
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["device.prov.password"] == 'p"x<a>&q'


def time_settings(timezone: str, path: str = "0004f2aabbcc-user.cfg") -> dict[str, str]:
    """The time settings (gmtOffset and daylightSavings.*) of `path` for `timezone`."""
    kind = "device" if path.endswith("-user.cfg") else "common"
    context = phone_context(
        "polycom", kind, model=MODEL if kind == "device" else None, timezone=timezone
    )
    settings = attributes(xml_root(render_path("polycom", path, context)))
    return {
        key: value
        for key, value in settings.items()
        if key.startswith(DST) or key == "tcpIpApp.sntp.gmtOffset"
    }


@pytest.mark.parametrize("path", ["0004f2aabbcc-user.cfg", "common.cfg"])
def test_time_zone_as_yearly_rules_europe(path: str) -> None:
    """Rome gets the rules the phone applies all year, not "summer time on" of the render day."""
    assert time_settings("Europe/Rome", path) == ROME_TIME


@pytest.mark.parametrize(
    ("timezone", "expected"),
    [
        (  # EST5EDT,M3.2.0,M11.1.0: second Sunday of March 02:00 (date 8 = second such day)
            # to first Sunday of November 02:00 (date 1 = first such day)
            "America/New_York",
            {
                "tcpIpApp.sntp.gmtOffset": "-18000",
                "start.month": "3",
                "start.date": "8",
                "start.time": "2",
                "stop.month": "11",
                "stop.date": "1",
                "stop.time": "2",
            },
        ),
        (  # AEST-10AEDT,M10.1.0,M4.1.0/3: southern hemisphere, starts in October and ends in
            # April of the next year
            "Australia/Sydney",
            {
                "tcpIpApp.sntp.gmtOffset": "36000",
                "start.month": "10",
                "start.date": "1",
                "start.time": "2",
                "stop.month": "4",
                "stop.date": "1",
                "stop.time": "3",
            },
        ),
    ],
)
def test_time_zone_as_yearly_rules(timezone: str, expected: dict[str, str]) -> None:
    offset = expected.pop("tcpIpApp.sntp.gmtOffset")
    assert time_settings(timezone) == {
        "tcpIpApp.sntp.gmtOffset": offset,
        f"{DST}.enable": "1",
        f"{DST}.fixedDayEnable": "0",
        f"{DST}.start.dayOfWeek": "1",
        f"{DST}.start.dayOfWeek.lastInMonth": "0",
        f"{DST}.stop.dayOfWeek": "1",
        f"{DST}.stop.dayOfWeek.lastInMonth": "0",
        **{f"{DST}.{key}": value for key, value in expected.items()},
    }


@pytest.mark.parametrize(
    ("timezone", "offset"),
    [("Asia/Kolkata", "19800"), ("Asia/Kathmandu", "20700"), ("America/Sao_Paulo", "-10800")],
)
def test_time_zone_without_summer_time(timezone: str, offset: str) -> None:
    """No summer time (half-hour and quarter-hour offsets too): the offset, DST off, no rules."""
    assert time_settings(timezone) == {"tcpIpApp.sntp.gmtOffset": offset, f"{DST}.enable": "0"}


def test_every_zone_takes_the_rules_fallback() -> None:
    """Polycom has no zone list here (no cited city-ID table): every zone, including one no
    list would have, gets the standard offset plus its rules; weekday and week map through."""
    assert load("polycom").timezones == {}
    # <-04>4<-03>,M9.1.6/24,M4.1.6/24: Santiago changes at 24:00 on Saturdays; the hour is
    # clamped into the day (23), as the README says.
    assert time_settings("America/Santiago") == {
        "tcpIpApp.sntp.gmtOffset": "-14400",
        f"{DST}.enable": "1",
        f"{DST}.fixedDayEnable": "0",
        f"{DST}.start.month": "9",
        f"{DST}.start.dayOfWeek": "7",
        f"{DST}.start.dayOfWeek.lastInMonth": "0",
        f"{DST}.start.date": "1",
        f"{DST}.start.time": "23",
        f"{DST}.stop.month": "4",
        f"{DST}.stop.dayOfWeek": "7",
        f"{DST}.stop.dayOfWeek.lastInMonth": "0",
        f"{DST}.stop.date": "1",
        f"{DST}.stop.time": "23",
    }


def test_resync_and_reboot_events() -> None:
    """check-sync re-reads the files (alwaysReboot 0 in every file); the reboot differs."""
    vendor = load("polycom")
    assert vendor.resync_event == "check-sync"
    assert vendor.reboot_event == "check-sync;reboot=true"
    assert vendor.reboot_event != vendor.resync_event


def account_settings(model: str, accounts: int, **kwargs: Any) -> dict[str, str]:
    """The settings of <mac>-user.cfg for a device of `model` carrying `accounts` accounts."""
    context = phone_context("polycom", "device", model=model, accounts=accounts, **kwargs)
    return attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))


def expected_registration(slot: int, proxy: str = "") -> dict[str, str]:
    """reg.N.* of account `slot` (2 and up) of the test device (tests/phone_context.py)."""
    values = account_values(slot)
    reg = f"reg.{slot}"
    expected = {
        f"{reg}.address": values["extension"],
        f"{reg}.auth.userId": values["auth_username"],
        f"{reg}.auth.password": values["password"],
        f"{reg}.displayName": values["display_name"],
        f"{reg}.label": values["cli"],  # no label of its own: the presented number
        f"{reg}.server.1.address": DEFAULTS["registrar"],
        f"{reg}.server.1.port": "5060",
        f"{reg}.server.1.transport": "UDPOnly",
        f"{reg}.server.1.register": "1",
    }
    if proxy:
        expected[f"{reg}.outboundProxy.address"] = proxy
        expected[f"{reg}.outboundProxy.port"] = "5060"
        expected[f"{reg}.outboundProxy.transport"] = "UDPOnly"
    return expected


def registration(settings: dict[str, str], slot: int) -> dict[str, str]:
    return {key: value for key, value in settings.items() if key.startswith(f"reg.{slot}.")}


@pytest.mark.parametrize(
    ("model", "last"),
    [
        ("polycom-vvx-201", 2),
        ("polycom-vvx-600", 16),
        ("polycom-spip-650", 34),  # 34 registrations with expansion modules
        ("polycom-trio-8800", 2),
        ("polycom-edge-e350", 8),
        ("polycom-ccx-500", 8),
    ],
)
def test_every_account_is_a_registration(model: str, last: int) -> None:
    """Account N becomes reg.N.* (slot 2 and the model's last slot checked key by key); slot 1
    stays the device's own line, and no registration beyond the model's count is written."""
    settings = account_settings(model, last)
    assert registration(settings, 2) == expected_registration(2)
    assert registration(settings, last) == expected_registration(last)
    assert settings["reg.1.address"] == DEFAULTS["extension"]
    assert settings["reg.1.auth.password"] == DEFAULTS["password"]
    assert not any(key.startswith(f"reg.{last + 1}.") for key in settings)


def test_outbound_proxy_for_every_account() -> None:
    settings = account_settings("polycom-vvx-410", 3, outbound_proxy="sbc.example.net")
    assert registration(settings, 3) == expected_registration(3, proxy="sbc.example.net")
    assert settings["reg.1.outboundProxy.address"] == "sbc.example.net"


def test_single_account_file_is_unchanged() -> None:
    """A device without further accounts gets only reg.1 (the file as before accounts)."""
    settings = account_settings(MODEL, 1)
    assert {key.split(".")[1] for key in settings if key.startswith("reg.")} == {"1"}


@pytest.mark.parametrize(
    ("user_agent", "model", "firmware"),
    [
        (
            "FileTransport PolycomVVX-VVX_101-UA/5.9.7.3480 Type/Application",
            "VVX_101",
            "5.9.7.3480",
        ),
        ("FileTransport PolycomSoundPointIP-SPIP_650-UA/4.0.15.1009", "SPIP_650", "4.0.15.1009"),
        ("FileTransport PolycomSoundStationIP-SSIP_6000-UA/4.0.9.1400", "SSIP_6000", "4.0.9.1400"),
        (
            "FileTransport PolycomRealPresenceTrio-Trio_8800-UA/7.2.2.1094 Type/Application",
            "Trio_8800",
            "7.2.2.1094",
        ),
        (
            "FileTransport PolyEdge-Edge_E350-UA/8.0.0.1234 Type/Application",
            "Edge_E350",
            "8.0.0.1234",
        ),
        (
            "FileTransport PolyCCX-CCX_500-UA/9.4.1.0508 (SN:64167f9f4c90) Type/Application",
            "CCX_500",
            "9.4.1.0508",
        ),
    ],
)
def test_user_agents_of_every_family(user_agent: str, model: str, firmware: str) -> None:
    """Polycom<Product>-<family>-UA/<version>; newer firmware says Poly<Product>-...: the
    model is the catalogue family, which names exactly one model."""
    info = parse_user_agent([load("polycom")], user_agent)
    assert info is not None
    assert (info.model, info.firmware, info.mac) == (model, firmware, None)
    families = [m.id for m in catalogue_models().values() if m.family == model]
    assert len(families) == 1


# --- Keys and phone book (README.md, "Keys and phone book") -----------------------------------


def key_settings(model: str = MODEL, keys: tuple[PhoneKey, ...] = SAMPLE_KEYS) -> dict[str, str]:
    """The lineKey.* and attendant.* settings of <mac>-user.cfg for a device with `keys`."""
    context = phone_context("polycom", "device", model=model, keys=keys)
    text = render_path("polycom", "0004f2aabbcc-user.cfg", context)
    assert_no_leftovers(text)
    return {
        key: value
        for key, value in attributes(xml_root(text)).items()
        if key.startswith(("lineKey.", "attendant."))
    }


def test_keys_land_on_documented_settings() -> None:
    """Line -> category Line (index = registration); BLF and park -> category BLF, index 0, and
    the next attendant resource ("normal" / "automata") with the label, escaped for XML;
    speed dial, DND and URL have no line-key category: their positions and every free one of
    the phone's 12 keys are Unassigned."""
    expected = {
        "lineKey.reassignment.enabled": "1",
        "lineKey.1.category": "Line",
        "lineKey.1.index": "1",
        "lineKey.2.category": "BLF",
        "lineKey.2.index": "0",
        "lineKey.4.category": "BLF",
        "lineKey.4.index": "0",
        "attendant.resourceList.1.address": "202",
        "attendant.resourceList.1.label": "Anna & <Co>",
        "attendant.resourceList.1.type": "normal",
        "attendant.resourceList.2.address": "701",
        "attendant.resourceList.2.label": "Park",
        "attendant.resourceList.2.type": "automata",
    }
    expected |= {f"lineKey.{p}.category": "Unassigned" for p in (3, 5, 6, *range(7, 13))}
    assert key_settings() == expected
    assert load("polycom").key_types == ("line", "blf", "park")


def test_no_keys_no_key_settings() -> None:
    """Without keys the phone keeps its own layout: no lineKey.* or attendant.* at all."""
    assert key_settings(keys=()) == {}


def test_line_key_of_another_account() -> None:
    """A line key's index is the account's registration (reg.N); a slot the device lacks
    falls back to the first account (the context's rule)."""
    key = (PhoneKey(3, "line", "2", None),)
    two = phone_context("polycom", "device", model=MODEL, accounts=2, keys=key)
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", two)))
    assert (settings["lineKey.3.category"], settings["lineKey.3.index"]) == ("Line", "2")
    assert settings["reg.2.address"] == account_values(2)["extension"]
    alone = key_settings(keys=key)
    assert (alone["lineKey.3.category"], alone["lineKey.3.index"]) == ("Line", "1")


def test_park_key_without_orbit_is_unassigned() -> None:
    settings = key_settings(keys=(PhoneKey(1, "park", "", None), PhoneKey(2, "blf", "202", "A")))
    assert settings["lineKey.1.category"] == "Unassigned"
    assert "lineKey.1.index" not in settings
    assert settings["attendant.resourceList.1.address"] == "202"
    assert not any(key.startswith("attendant.resourceList.2.") for key in settings)


def test_keys_beyond_the_model_never_appear() -> None:
    """VVX 201: two keys, no modules; the keys at positions 3..6 are not written."""
    settings = key_settings("polycom-vvx-201")
    assert {k for k in settings if k.startswith("lineKey.")} == {
        "lineKey.reassignment.enabled",
        "lineKey.1.category",
        "lineKey.1.index",
        "lineKey.2.category",
        "lineKey.2.index",
    }
    assert settings["attendant.resourceList.1.address"] == "202"
    assert not any(key.startswith("attendant.resourceList.2.") for key in settings)


@pytest.mark.parametrize(
    ("model", "module_keys"), [("polycom-vvx-400", 84), ("polycom-spip-650", 14)]
)
def test_expansion_module_keys_continue_the_numbering(model: str, module_keys: int) -> None:
    """lineKey.N counts the phone's keys, then each module's: the first key of module 1 is
    line_keys + 1, the last of module 3 the model's capacity; one more is never written."""
    info = catalogue()[model]
    assert (info.expansion_modules, info.module_keys) == (3, module_keys)
    first, last = info.line_keys + 1, info.line_keys + 3 * module_keys
    keys = (
        PhoneKey(first, "blf", "202", "Anna"),
        PhoneKey(last, "park", "701", None),
        PhoneKey(last + 1, "blf", "203", "Beyond"),
    )
    settings = key_settings(model, keys)
    assert settings[f"lineKey.{first}.category"] == "BLF"
    assert settings[f"lineKey.{last}.category"] == "BLF"
    assert f"lineKey.{last + 1}.category" not in settings
    assert settings["attendant.resourceList.2.type"] == "automata"
    assert "attendant.resourceList.3.address" not in settings
    # Free keys are the phone's own only.
    assert settings["lineKey.1.category"] == "Unassigned"
    assert f"lineKey.{first + 1}.category" not in settings


def test_phonebook_is_the_contact_directory() -> None:
    """The phone asks for <MAC>-directory.xml itself: that name is the phone book (no URL
    key); the device file makes the directory read-only."""
    vendor = load("polycom")
    assert vendor.phonebook_path("0004f2aabbcc") == "0004f2aabbcc-directory.xml"
    for name in ("0004f2aabbcc-directory.xml", "0004F2AABBCC-directory.xml"):
        assert spec_for("polycom", name).kind is FileKind.PHONEBOOK
    context = phone_context("polycom", "device", model=MODEL, mac="0004f2aabbcc")
    assert context["phonebook"]["url"] == "http://192.0.2.10:8080/0004f2aabbcc-directory.xml"
    settings = attributes(xml_root(render_path("polycom", "0004f2aabbcc-user.cfg", context)))
    assert settings["dir.local.readonly"] == "1"


def test_phonebook_file_lists_every_entry() -> None:
    """<directory><item_list><item>: the whole name in <fn> and <lb>, one number per <ct>;
    a mobile is an item of its own, "<name> (mobile)". Names come back exactly."""
    context = phone_context("polycom", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = render_path("polycom", "0004f2aabbcc-directory.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "directory"
    items = [
        (item.findtext("fn"), item.findtext("lb"), item.findtext("ct"))
        for item in root.findall("./item_list/item")
    ]
    assert items == [
        ("Anna Bianchi & <Co>", "Anna Bianchi & <Co>", "202"),
        ("Anna Bianchi & <Co> (mobile)", "Anna Bianchi & <Co> (mobile)", "+393331234567"),
        ('Niccolò "Nico" D\'Àmbrosio', 'Niccolò "Nico" D\'Àmbrosio', "203"),
        ("Rossi & <Figli>", "Rossi & <Figli>", "201"),
    ]
    assert "sd" not in {child.tag for item in root.iter("item") for child in item}
    empty = render_path(
        "polycom", "0004f2aabbcc-directory.xml", phone_context("polycom", "phonebook")
    )
    assert xml_root(empty).findall("./item_list/item") == []
