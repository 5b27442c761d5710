"""Admin input limits (security findings F5 and F6), over the real admin API and the CLI.

- F5: a JSON body (or an import file) holding an integer of thousands of digits, NaN/Infinity
  or a number that overflows to infinity is malformed JSON: 422 naming the body, no 500, no
  traceback in the log, nothing changed.
- F6: the platform settings that reach every phone's file (registrar, outbound proxy, NTP
  server, language) take host names / IP literals and a two-letter language code only: a
  newline, a space, an empty registrar or a bad port is a 422 naming the field and changes
  nothing. A value stored before these checks existed is ignored (the file's value applies)
  instead of breaking every read.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

import pytest

from provisiond.cli import main
from provisiond.frontends.admin_http import MAX_JSON_DIGITS
from provisiond.storage.database import Database
from provisiond.storage.models import Setting
from tests.dbdump import unchanged
from tests.integration.api_fixtures import Api, mac_for

BIG = "9" * 5000  # past CPython's 4,300-digit limit for int("...")
# Numbers no JSON parse may let through: (text, words of the refusal).
BAD_NUMBERS = [
    (BIG, f"more than {MAX_JSON_DIGITS} digits"),
    ("-" + BIG, f"more than {MAX_JSON_DIGITS} digits"),
    ("1" + "0" * MAX_JSON_DIGITS, f"more than {MAX_JSON_DIGITS} digits"),
    ("NaN", "NaN is not a JSON value"),
    ("Infinity", "Infinity is not a JSON value"),
    ("-Infinity", "-Infinity is not a JSON value"),
    ("1e999", "out of range"),
]
# Every admin route that reads a JSON body, with a body shape around the number.
ROUTES = [
    ("PUT", "/api/v1/settings", '{"sip": {"port": %s}}'),
    ("POST", "/api/v1/devices", '{"extension": %s, "model": "yealink-t46s"}'),
    ("PATCH", "/api/v1/devices/{device}", '{"extension": %s}'),
    ("POST", "/api/v1/users", '{"username": "u", "main_extension": %s}'),
    ("PATCH", "/api/v1/users/{user}", '{"team_app": {"fallback_timeout_s": %s}}'),
    ("PUT", "/api/v1/users/{user}/primary-device", '{"device_id": %s}'),
    ("POST", "/api/v1/sites", '{"name": %s}'),
    ("PATCH", "/api/v1/sites/{site}", '{"name": "x", "policy": [%s]}'),
    ("POST", "/api/v1/import", '[{"mac": "001565000001", "extension": %s}]'),
    ("POST", "/api/v1/import", '{"rows": [[[%s]]]}'),
    ("PUT", "/api/v1/licences", '{"APP_USERS": %s}'),
    ("POST", "/api/v1/resync", '{"user_id": %s}'),
    ("POST", "/api/v1/devices/{device}/resync", '{"reboot": %s}'),
]


def _errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("method", "template", "body"), ROUTES)
async def test_numbers_json_cannot_hold_are_refused_everywhere(
    api: Api,
    db: Database,
    caplog: pytest.LogCaptureFixture,
    method: str,
    template: str,
    body: str,
) -> None:
    user = await api.user("alice", "201")
    device = await api.device("301", mac_for(1))
    site = await api.ok(
        "POST", "/api/v1/sites", {"name": "hq", "networks": ["192.0.2.0/24"]}, status=201
    )
    path = template.format(user=user["id"], device=device["id"], site=site["id"])
    async with unchanged(db):
        for number, words in BAD_NUMBERS:
            reply = await api.call(method, path, raw=body % number)
            assert reply.status == 422, (number[:10], reply.status, reply.text)
            answer = reply.json
            assert (answer["error"], answer["field"]) == ("invalid", "body"), answer
            assert answer["detail"].startswith("malformed JSON: ")
            assert words in answer["detail"]
            assert BIG[:50] not in reply.text  # the number is not echoed back
    assert _errors(caplog) == []


async def test_long_numbers_up_to_the_limit_reach_validation(api: Api, db: Database) -> None:
    """A number of MAX_JSON_DIGITS digits parses: the field's own check refuses it."""
    async with unchanged(db):
        reply = await api.call("PUT", "/api/v1/licences", raw='{"APP_USERS": %s}' % ("9" * 100))
        assert (reply.status, reply.json["field"]) == (422, "APP_USERS"), reply.text
        reply = await api.call("PUT", "/api/v1/settings", raw='{"sip": {"port": %s}}' % ("9" * 100))
        assert (reply.status, reply.json["field"]) == (422, "sip.port"), reply.text
    assert (await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 12}))["APP_USERS"]["count"] == 12


async def test_malformed_json_still_says_where(api: Api) -> None:
    reply = await api.call("PUT", "/api/v1/settings", raw='{\n  "ntp_server": }')
    assert reply.status == 422
    assert reply.json["detail"] == "malformed JSON: Expecting value at line 2, column 17"
    deep = "[" * 100_000 + "]" * 100_000
    reply = await api.call("POST", "/api/v1/import", raw=deep)
    assert (reply.status, reply.json["detail"]) == (422, "malformed JSON: nested too deeply")


# -- the command line's JSON import -----------------------------------------------------------


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An embedded (SQLite) installation in tmp_path, nothing from the caller's environment."""
    for name in list(os.environ):
        if name.startswith("PROVISIOND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROVISIOND_DATA_DIR", str(tmp_path / "var"))
    return tmp_path


@pytest.mark.parametrize(("number", "words"), BAD_NUMBERS[::3])
def test_cli_import_refuses_numbers_json_cannot_hold(
    env: Path, capsys: pytest.CaptureFixture[str], number: str, words: str
) -> None:
    rows = env / "rows.json"
    rows.write_text(f'[{{"mac": "001565000001", "model": "yealink-t46s", "extension": {number}}}]')
    assert main(["import", str(rows)]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("provisiond: error: malformed JSON: "), err
    assert words in err
    assert "(field: file)" in err
    assert "Traceback" not in err
    assert out == ""
    assert main(["export", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_import_still_reads_good_json(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = env / "rows.json"
    rows.write_text('[{"mac": "001565000001", "model": "yealink-t46s", "extension": "201"}]')
    assert main(["import", str(rows)]) == 0
    assert json.loads(capsys.readouterr().out)["devices_created"] == 1


# -- the platform settings that reach every phone ---------------------------------------------

BAD_SETTINGS: list[tuple[dict[str, Any], str]] = [
    (
        {"sip": {"registrar": "pbx.example.test\nstatic.auto_provision.server.url = http://x/"}},
        "sip.registrar",
    ),
    ({"sip": {"registrar": ""}}, "sip.registrar"),
    ({"sip": {"registrar": "pbx example.test"}}, "sip.registrar"),
    ({"sip": {"registrar": "pbx.example.test:5060"}}, "sip.registrar"),
    ({"sip": {"registrar": "2001:db8::1"}}, "sip.registrar"),
    ({"sip": {"registrar": "x" * 300}}, "sip.registrar"),
    ({"sip": {"registrar": "pbx\x00.test"}}, "sip.registrar"),
    ({"sip": {"outbound_proxy": "sbc.example.test\r\n"}}, "sip.outbound_proxy"),
    ({"sip": {"outbound_proxy": "sbc.example.test:"}}, "sip.outbound_proxy"),
    ({"sip": {"outbound_proxy": "sbc.example.test:0"}}, "sip.outbound_proxy"),
    ({"sip": {"outbound_proxy": "sbc.example.test:70000"}}, "sip.outbound_proxy"),
    ({"sip": {"outbound_proxy": "[2001:db8::1]:5060"}}, "sip.outbound_proxy"),
    ({"ntp_server": "pool.ntp.org\nx"}, "ntp_server"),
    ({"ntp_server": "a b"}, "ntp_server"),
    ({"ntp_server": "ntp.example.test\u2028"}, "ntp_server"),
    ({"language": "en\n"}, "language"),
    ({"language": ""}, "language"),
    ({"language": "en-GB"}, "language"),
    ({"language": "IT"}, "language"),
    ({"ntp_server": "ntp.ok.test", "language": "italiano"}, "language"),  # all or nothing
]


@pytest.mark.parametrize(("body", "field"), BAD_SETTINGS)
async def test_bad_platform_settings_are_refused_naming_the_field(
    api: Api, db: Database, body: dict[str, Any], field: str
) -> None:
    before = await api.ok("GET", "/api/v1/settings")
    async with unchanged(db):
        reply = await api.call("PUT", "/api/v1/settings", body)
    assert reply.status == 422, reply.text
    assert (reply.json["error"], reply.json["field"]) == ("invalid", field), reply.json
    assert reply.json["detail"].startswith(f"{field}: ")
    assert await api.ok("GET", "/api/v1/settings") == before


async def test_good_platform_settings_are_stored(api: Api) -> None:
    body = {
        "sip": {"registrar": "192.0.2.10", "outbound_proxy": "sbc.example.test:5070"},
        "ntp_server": "2001:db8::123",
        "language": "de",
    }
    after = await api.ok("PUT", "/api/v1/settings", body)
    assert await api.ok("GET", "/api/v1/settings") == after
    assert after["sip"]["registrar"] == "192.0.2.10"
    assert after["sip"]["outbound_proxy"] == "sbc.example.test:5070"
    assert (after["ntp_server"], after["language"]) == ("2001:db8::123", "de")
    # "" means none: no outbound proxy, and NTP left to the phones.
    after = await api.ok(
        "PUT", "/api/v1/settings", {"sip": {"outbound_proxy": ""}, "ntp_server": ""}
    )
    assert (after["sip"]["outbound_proxy"], after["ntp_server"]) == ("", "")


async def test_a_stored_value_the_rules_now_refuse_is_ignored(
    api: Api, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Rows written by a version that checked less: the file's value applies, with a warning,
    and the other stored values of the same section stay in effect."""
    # Values of this run only: each one is reported once per process.
    registrar, language = f"pbx.test\nx = {secrets.token_hex(4)}", f"en-{secrets.token_hex(2)}"
    async with db.write() as session:
        session.add(Setting(key="sip", value={"registrar": registrar, "port": 5070}))
        session.add(Setting(key="language", value=language))
    with caplog.at_level(logging.WARNING, logger="provisiond.services.platform"):
        current = await api.ok("GET", "/api/v1/settings")
    assert current["sip"]["registrar"] == "pbx.example.test"  # the test settings' file value
    assert (current["sip"]["port"], current["language"]) == (5070, "en")
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert f"sip.registrar={registrar!r}" in warned
    assert f"language={language!r}" in warned
    fixed = await api.ok("PUT", "/api/v1/settings", {"sip": {"registrar": "pbx.fixed.test"}})
    assert (fixed["sip"]["registrar"], fixed["sip"]["port"]) == ("pbx.fixed.test", 5070)
    assert await api.ok("GET", "/api/v1/settings") == fixed
