"""Snom templates: snom<model>.htm, snom<model>-<MAC>.htm and the firmware settings file."""

from __future__ import annotations

import pytest

from provisiond.domain.identify import FileKind
from provisiond.domain.keys import PhoneKey
from tests.phone_context import (
    DEFAULTS,
    PROVISIONING_BASE_URL,
    SAMPLE_KEYS,
    SAMPLE_PHONEBOOK,
    account_values,
    phone_context,
)
from tests.template_checks import (
    TEMPLATES_ROOT,
    assert_no_leftovers,
    load,
    render_path,
    spec_for,
    xml_root,
)

MODEL = "snom-d785"
FIRMWARE = "http://192.0.2.10:8080/firmware/snomD785-10.1.33.33-SIP-r.bin"
DEVICE_FILE = "snomD785-000413922D24.htm"
# Rome (the sample zone) as rules: Snom's code, standard offset in seconds, summer time from
# the last Sunday of March 02:00 to the last Sunday of October 03:00, saving 3600 s.
ROME = {
    "timezone": "ITA+1",
    "utc_offset": "+3600",
    "dst": "3600 03.05.07 02:00:00 10.05.07 03:00:00",
}


def phone_settings(text: str) -> dict[str, str]:
    """<settings><phone-settings> as {name or name[idx]: text}, each once."""
    root = xml_root(text)
    assert root.tag == "settings"
    settings_element = root.find("phone-settings")
    assert settings_element is not None
    settings: dict[str, str] = {}
    for element in settings_element:
        assert element.attrib["perm"] == "R"
        name = element.tag + (f"[{element.attrib['idx']}]" if "idx" in element.attrib else "")
        assert name not in settings, name
        settings[name] = element.text or ""
    return settings


def expected_settings(firmware_url: str) -> dict[str, str]:
    """Settings shared by the model file and the per-MAC file (contexts built for "snom")."""
    settings = {
        "ntp_server": DEFAULTS["ntp_server"],
        **ROME,
        "language": "Italiano",
        "web_language": "Italiano",
    }
    if firmware_url:
        settings |= {
            "update_policy": "auto_update",
            "firmware_status": f"{PROVISIONING_BASE_URL}snomD785-firmware.xml",
        }
    return settings


@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
@pytest.mark.parametrize("proxy", ["", "sbc.example.net"])
@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_device_file(transport: str, proxy: str, firmware_url: str) -> None:
    context = phone_context(
        "snom",
        "device",
        model=MODEL,
        mac="000413922d24",
        transport=transport,
        outbound_proxy=proxy,
        firmware_url=firmware_url,
    )
    text = render_path("snom", DEVICE_FILE, context)
    assert_no_leftovers(text)
    port = "5061" if transport == "tls" else "5060"
    assert phone_settings(text) == {
        "user_active[1]": "on",
        "user_realname[1]": "Rossi & <Figli>",
        "user_name[1]": DEFAULTS["extension"],
        "user_pname[1]": DEFAULTS["auth_username"],
        "user_pass[1]": DEFAULTS["password"],
        "user_host[1]": f"{DEFAULTS['registrar']}:{port};transport={transport}",
        # Empty clears an outbound proxy configured earlier.
        "user_outbound[1]": f"{proxy}:{port};transport={transport}" if proxy else "",
        "user_idle_text[1]": DEFAULTS["cli"],
        "setting_server": f"{PROVISIONING_BASE_URL}snomD785-000413922D24.htm",
        # The Directory key opens the company phone book of this device.
        "dkey_directory": f"url {PROVISIONING_BASE_URL}phonebook/000413922d24.xml",
        **expected_settings(firmware_url),
    }


def test_label_and_disabled_identity() -> None:
    context = phone_context("snom", "device", model=MODEL, label="Lobby", enabled=False)
    settings = phone_settings(render_path("snom", "snomD785-001565AABBCC.htm", context))
    assert (settings["user_idle_text[1]"], settings["user_active[1]"]) == ("Lobby", "off")


@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_model_file(firmware_url: str) -> None:
    """The shared settings only."""
    context = phone_context("snom", "common", model=MODEL, firmware_url=firmware_url)
    text = render_path("snom", "snomD785.htm", context)
    assert_no_leftovers(text)
    assert phone_settings(text) == expected_settings(firmware_url)


def test_device_file_carries_provisioning_credentials() -> None:
    """The phone's own digest user name and password, XML-escaped, only in its own file."""
    context = phone_context(
        "snom", "device", model=MODEL, mac="000413922d24", prov_password="p&<ss"
    )
    settings = phone_settings(render_path("snom", DEVICE_FILE, context))
    assert (settings["http_client_user"], settings["http_client_pass"]) == (
        "000413922d24",
        "p&<ss",
    )


def test_no_provisioning_user_no_credential_keys() -> None:
    settings = phone_settings(
        render_path("snom", DEVICE_FILE, phone_context("snom", "device", model=MODEL))
    )
    assert not {"http_client_user", "http_client_pass"} & set(settings)


def _time(timezone: str, kind: str = "device") -> dict[str, str]:
    context = phone_context("snom", kind, model=MODEL, timezone=timezone)
    path = DEVICE_FILE if kind == "device" else "snomD785.htm"
    settings = phone_settings(render_path("snom", path, context))
    return {key: settings[key] for key in ("timezone", "utc_offset", "dst")}


@pytest.mark.parametrize("kind", ["device", "common"])
def test_rome_as_rules(kind: str) -> None:
    """Summer time as yearly rules, never "is it summer now" (the old snapshot bug)."""
    assert _time("Europe/Rome", kind) == ROME


def test_new_york_as_rules() -> None:
    """Second Sunday of March 02:00 to first Sunday of November 02:00."""
    assert _time("America/New_York") == {
        "timezone": "USA-5",
        "utc_offset": "-18000",
        "dst": "3600 03.02.07 02:00:00 11.01.07 02:00:00",
    }


def test_sydney_southern_hemisphere_falls_back_to_rules() -> None:
    """Not in timezones.toml: empty code, summer time from October to April."""
    assert _time("Australia/Sydney") == {
        "timezone": "",
        "utc_offset": "+36000",
        "dst": "3600 10.01.07 02:00:00 04.01.07 03:00:00",
    }


def test_kolkata_half_hour_offset_without_summer_time() -> None:
    """Not in timezones.toml: the offset in seconds, an empty dst clears old rules."""
    assert _time("Asia/Kolkata") == {"timezone": "", "utc_offset": "+19800", "dst": ""}


def test_zone_table_lives_in_timezones_toml() -> None:
    """The IANA -> Snom table is loaded from timezones.toml, not hard-coded in a template."""
    zones = load("snom").timezones
    assert zones["Europe/Rome"] == "ITA+1"
    assert zones["America/New_York"] == "USA-5"
    assert "zones = {" not in (TEMPLATES_ROOT / "snom" / "_settings.xml.j2").read_text()


@pytest.mark.parametrize("firmware_url", ["", FIRMWARE])
def test_firmware_file(firmware_url: str) -> None:
    context = phone_context("snom", "common", model=MODEL, firmware_url=firmware_url)
    root = xml_root(render_path("snom", "snomD785-firmware.xml", context))
    assert root.tag == "firmware-settings"
    assert [element.text for element in root.iter("firmware")] == (
        [firmware_url] if firmware_url else []
    )


def _identities(model: str, accounts: int, path: str) -> dict[str, str]:
    context = phone_context("snom", "device", model=model, mac="000413922d24", accounts=accounts)
    return phone_settings(render_path("snom", path, context))


@pytest.mark.parametrize("slot", [2, 12])
def test_further_identities_of_a_twelve_identity_phone(slot: int) -> None:
    """Identity `slot` of a D785 (12 identities): the same keys as identity 1, idx = slot."""
    settings = _identities(MODEL, 12, DEVICE_FILE)
    values = account_values(slot)
    assert {k: v for k, v in settings.items() if k.endswith(f"[{slot}]")} == {
        f"user_active[{slot}]": "on",
        f"user_realname[{slot}]": values["display_name"],
        f"user_name[{slot}]": values["extension"],
        f"user_pname[{slot}]": values["auth_username"],
        f"user_pass[{slot}]": values["password"],
        f"user_host[{slot}]": f"{DEFAULTS['registrar']}:5060;transport=udp",
        f"user_outbound[{slot}]": "",
        f"user_idle_text[{slot}]": values["cli"],
    }
    assert "user_name[13]" not in settings


def test_identity_one_unchanged_with_further_identities() -> None:
    settings = _identities(MODEL, 12, DEVICE_FILE)
    assert (settings["user_name[1]"], settings["user_pass[1]"]) == (
        DEFAULTS["extension"],
        DEFAULTS["password"],
    )


@pytest.mark.parametrize(("model", "path", "last"), [
    ("snom-300", "snom300-000413922D24.htm", 4),
    ("snom-d120", "snomD120-000413922D24.htm", 2),
    ("snom-pa1", "snomPA1-000413922D24.htm", 4),
])  # fmt: skip
def test_last_identity_of_smaller_models(model: str, path: str, last: int) -> None:
    settings = _identities(model, last, path)
    assert settings[f"user_name[{last}]"] == account_values(last)["extension"]
    assert settings[f"user_pass[{last}]"] == account_values(last)["password"]
    assert f"user_name[{last + 1}]" not in settings


@pytest.mark.parametrize("slot", [2, 30])
def test_m_series_base_gives_identity_n_to_handset_n(slot: int) -> None:
    """An M700 (30 handsets): identity `slot` with the handset index, no idle text."""
    settings = _identities("snom-m700", 30, "snomM700-000413922D24.htm")
    values = account_values(slot)
    assert settings[f"user_name[{slot}]"] == values["extension"]
    assert settings[f"user_pname[{slot}]"] == values["auth_username"]
    assert settings[f"user_pass[{slot}]"] == values["password"]
    assert settings[f"user_realname[{slot}]"] == values["display_name"]
    assert settings[f"subscr_sip_hs_idx[{slot}]"] == str(slot)
    assert not any(key.startswith("user_idle_text") for key in settings)
    assert settings["setting_server"] == f"{PROVISIONING_BASE_URL}snomM700-000413922D24.htm"


# --- Function keys and the company phone book (README.md, "Keys and phone book") ---


def function_keys(text: str) -> dict[int, tuple[str, str, str]]:
    """<settings><functionKeys><fkey> as {idx: (context, label, value)}, each idx once."""
    root = xml_root(text)
    keys: dict[int, tuple[str, str, str]] = {}
    for block in root.findall("functionKeys"):
        for fkey in block.findall("fkey"):
            assert fkey.attrib["perm"] == "R"
            idx = int(fkey.attrib["idx"])
            assert idx not in keys, idx
            keys[idx] = (fkey.attrib["context"], fkey.attrib["label"], fkey.text or "")
    return keys


def _keys_file(keys: tuple[PhoneKey, ...], model: str = MODEL, accounts: int = 1) -> str:
    context = phone_context(
        "snom", "device", model=model, mac="000413922d24", keys=keys, accounts=accounts
    )
    path = f"snom{context['model']['family']}-000413922D24.htm"
    text = render_path("snom", path, context)
    assert_no_leftovers(text)
    return text


def test_sample_keys_are_function_keys() -> None:
    """Each sample key under fkey idx = position - 1, in Snom's value syntax; the D785's other
    keys become "none" so a key the admin removed disappears."""
    text = _keys_file(SAMPLE_KEYS)
    registrar = DEFAULTS["registrar"]
    assert function_keys(text) == {
        0: ("1", DEFAULTS["extension"], "line"),
        1: ("1", "Anna & <Co>", f"blf sip:202@{registrar}"),
        2: ("1", "Reception", "speed +390612345678"),
        3: ("1", "Park", "orbit 701"),
        4: ("1", "DND", "keyevent F_DND"),
        5: ("1", "Intranet", "url https://intranet.example.net/a?b=1&c=2"),
        **dict.fromkeys(range(6, 12), ("active", "", "none")),
    }
    # The label and the URL are XML-escaped in the file itself.
    assert 'label="Anna &amp; &lt;Co&gt;"' in text
    assert "a?b=1&amp;c=2</fkey>" in text


def test_line_key_of_a_further_account_and_park_without_orbit() -> None:
    """A line key's context is its account slot; a park key without an orbit is bare."""
    keys = (PhoneKey(1, "line", "2", None), PhoneKey(2, "park", "", "Parcheggio"))
    found = function_keys(_keys_file(keys, accounts=2))
    assert found[0] == ("2", account_values(2)["extension"], "line")
    assert found[1] == ("1", "Parcheggio", "orbit")


def test_no_keys_no_function_keys() -> None:
    """Without keys the phone keeps its own: no <functionKeys> at all."""
    assert xml_root(_keys_file(())).find("functionKeys") is None


def test_key_beyond_the_model_never_appears() -> None:
    """The D785 has 12 keys (no module keys in the catalogue): position 13 is not written."""
    keys = (PhoneKey(1, "speed_dial", "100", "A"), PhoneKey(13, "blf", "202", "Anna"))
    found = function_keys(_keys_file(keys))
    assert set(found) == set(range(12))
    assert found[0] == ("1", "A", "speed 100")
    only_beyond = _keys_file((PhoneKey(13, "blf", "202", "Anna"),))
    assert xml_root(only_beyond).find("functionKeys") is None


def test_models_without_keys_get_none() -> None:
    """An M-series base has no function keys and no Directory key."""
    text = _keys_file(SAMPLE_KEYS, model="snom-m700")
    assert xml_root(text).find("functionKeys") is None
    assert "dkey_directory" not in phone_settings(text)


def test_directory_key_opens_this_devices_phone_book() -> None:
    """dkey_directory = "url <phone book URL>", a name the vendor serves as the phone book."""
    settings = phone_settings(_keys_file(()))
    url = f"{PROVISIONING_BASE_URL}phonebook/000413922d24.xml"
    assert settings["dkey_directory"] == f"url {url}"
    path = url.removeprefix(PROVISIONING_BASE_URL)
    assert spec_for("snom", path).kind is FileKind.PHONEBOOK
    assert load("snom").phonebook_path("000413922d24") == path


def test_phone_book_file() -> None:
    """SnomIPPhoneDirectory: the title, every user with the extension, a mobile as a second
    entry "<name> (mobile)"; names exactly as given (&, <, quotes, accents)."""
    context = phone_context("snom", "phonebook", phonebook=SAMPLE_PHONEBOOK)
    text = render_path("snom", "phonebook/000413922d24.xml", context)
    assert_no_leftovers(text)
    root = xml_root(text)
    assert root.tag == "SnomIPPhoneDirectory"
    assert root.findtext("Title") == "Directory"
    entries = [
        (e.findtext("Name"), e.findtext("Telephone")) for e in root.findall("DirectoryEntry")
    ]
    assert entries == [
        ("Anna Bianchi & <Co>", "202"),
        ("Anna Bianchi & <Co> (mobile)", "+393331234567"),
        ('Niccolò "Nico" D\'Àmbrosio', "203"),
        ("Rossi & <Figli>", "201"),
    ]
