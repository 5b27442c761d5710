"""Settings: built-in defaults < TOML file < PROVISIOND_* environment (DESIGN.md section 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from provisiond.settings import ENVIRONMENT, Settings, SettingsError, load_settings, parse_listen

TOML = """
database_url = "postgresql+asyncpg://provisiond@db/provisiond"
data_dir = "/srv/provisiond"
phone_http = "0.0.0.0:80"
tftp = "0.0.0.0:69"
admin_http = "127.0.0.1:9000"

[platform]
ntp_server = "ntp.file.test"
timezone = "Europe/Rome"
mcs_interconnected = true

[platform.sip]
registrar = "pbx.file.test"
port = 5080
transport = "tcp"

[platform.team_app]
fallback_timeout_s = 20
callback_enabled = false
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "provisiond.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _get(settings: Settings, path: tuple[str, ...]) -> Any:
    value: Any = settings
    for key in path:
        value = getattr(value, key)
    return value


def test_defaults_without_file_or_environment() -> None:
    settings = load_settings(environ={})
    assert settings.data_dir == Path("var")
    assert settings.database_url is None
    assert settings.phone_http == "0.0.0.0:8080"
    assert settings.tftp == "0.0.0.0:6969"
    assert settings.admin_http == "127.0.0.1:8081"
    assert settings.platform.team_app.fallback_timeout_s == 10
    assert settings.platform.mcs_interconnected is False


def test_default_database_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(environ={"PROVISIOND_DATA_DIR": str(tmp_path / "data")})
    expected = (tmp_path / "data" / "provisiond.db").resolve()
    assert settings.effective_database_url == f"sqlite+aiosqlite:///{expected}"
    assert settings.is_embedded


def test_configured_database_url_wins_over_the_default() -> None:
    url = "postgresql+asyncpg://p@db/p"
    settings = load_settings(environ={"PROVISIOND_DATABASE_URL": url})
    assert settings.effective_database_url == url
    assert not settings.is_embedded


def test_file_values_are_read(tmp_path: Path) -> None:
    settings = load_settings(_write(tmp_path, TOML), environ={})
    assert settings.database_url == "postgresql+asyncpg://provisiond@db/provisiond"
    assert settings.data_dir == Path("/srv/provisiond")
    assert settings.phone_http == "0.0.0.0:80"
    assert settings.admin_http == "127.0.0.1:9000"
    assert settings.platform.mcs_interconnected is True
    assert settings.platform.sip.registrar == "pbx.file.test"
    assert settings.platform.sip.port == 5080
    assert settings.platform.sip.transport == "tcp"
    assert settings.platform.team_app.fallback_timeout_s == 20
    assert settings.platform.team_app.callback_enabled is False


def test_environment_wins_over_the_file_and_leaves_the_rest(tmp_path: Path) -> None:
    settings = load_settings(
        _write(tmp_path, TOML),
        environ={
            "PROVISIOND_SIP_REGISTRAR": "pbx.env.test",
            "PROVISIOND_TEAM_APP_FALLBACK_TIMEOUT_S": "30",
            "PROVISIOND_ADMIN_HTTP": "127.0.0.1:9100",
        },
    )
    assert settings.platform.sip.registrar == "pbx.env.test"
    assert settings.platform.team_app.fallback_timeout_s == 30
    assert settings.admin_http == "127.0.0.1:9100"
    # Siblings of overridden keys keep the file's values.
    assert settings.platform.sip.port == 5080
    assert settings.platform.team_app.callback_enabled is False
    assert settings.phone_http == "0.0.0.0:80"


def test_config_file_named_by_the_environment(tmp_path: Path) -> None:
    path = _write(tmp_path, TOML)
    settings = load_settings(environ={"PROVISIOND_CONFIG": str(path)})
    assert settings.platform.sip.registrar == "pbx.file.test"


# Every variable of settings.ENVIRONMENT: (value in the environment, path, expected value).
ENV_TABLE: list[tuple[str, str, tuple[str, ...], Any]] = [
    ("PROVISIOND_DATA_DIR", "/data", ("data_dir",), Path("/data")),
    ("PROVISIOND_DATABASE_URL", "postgresql+asyncpg://x@h/d", ("database_url",), None),
    ("PROVISIOND_PHONE_HTTP", "10.0.0.1:80", ("phone_http",), None),
    ("PROVISIOND_PHONE_HTTP_PREFIX", "/prov/", ("phone_http_prefix",), "prov"),
    ("PROVISIOND_TFTP", "[::]:69", ("tftp",), None),
    ("PROVISIOND_ADMIN_HTTP", "127.0.0.1:9999", ("admin_http",), None),
    ("PROVISIOND_PUBLIC_URL", "http://prov.test:8080/", ("public_url",), None),
    ("PROVISIOND_TEMPLATES_DIR", "/t", ("templates_dir",), Path("/t")),
    ("PROVISIOND_FIRMWARE_DIR", "/f", ("firmware_dir",), Path("/f")),
    ("PROVISIOND_MAX_BODY_BYTES", "4096", ("max_body_bytes",), 4096),
    ("PROVISIOND_MAX_UPLOAD_BYTES", "2048", ("max_upload_bytes",), 2048),
    (
        "PROVISIOND_CORS_ORIGINS",
        "https://a.test, https://b.test",
        ("cors_origins",),
        ("https://a.test", "https://b.test"),
    ),
    ("PROVISIOND_KEYRING", "/k/secrets.json", ("keyring",), Path("/k/secrets.json")),
    ("PROVISIOND_LOG_FORMAT", "json", ("log_format",), "json"),
    ("PROVISIOND_RESYNC_PORT", "5070", ("resync", "port"), 5070),
    ("PROVISIOND_RESYNC_TIMEOUT_S", "4.5", ("resync", "timeout_s"), 4.5),
    ("PROVISIOND_RESYNC_ON_CHANGE", "true", ("resync", "on_change"), True),
    ("PROVISIOND_MODEL_CHECK", "strict", ("security", "model_check"), None),
    ("PROVISIOND_BAN_WINDOW_S", "60", ("security", "ban_window_s"), 60),
    ("PROVISIOND_BAN_UNKNOWN_PER_SOURCE", "5", ("security", "ban_unknown_per_source"), 5),
    ("PROVISIOND_BAN_UNKNOWN_PER_PREFIX", "50", ("security", "ban_unknown_per_prefix"), 50),
    ("PROVISIOND_BAN_AUTH_FAILURES", "3", ("security", "ban_auth_failures"), 3),
    ("PROVISIOND_BAN_S", "120", ("security", "ban_s"), 120),
    ("PROVISIOND_PHONE_HTTPS", "0.0.0.0:8443", ("tls", "listen"), None),
    ("PROVISIOND_TLS_CERT", "/tls/cert.pem", ("tls", "cert"), Path("/tls/cert.pem")),
    ("PROVISIOND_TLS_KEY", "/tls/key.pem", ("tls", "key"), Path("/tls/key.pem")),
    ("PROVISIOND_TLS_CLIENT_CA", "/tls/ca.pem", ("tls", "client_ca"), Path("/tls/ca.pem")),
    ("PROVISIOND_TLS_LEGACY", "true", ("tls", "legacy"), True),
    ("PROVISIOND_MCS_INTERCONNECTED", "true", ("platform", "mcs_interconnected"), True),
    ("PROVISIOND_NTP_SERVER", "ntp.env.test", ("platform", "ntp_server"), None),
    ("PROVISIOND_TIMEZONE", "America/New_York", ("platform", "timezone"), None),
    ("PROVISIOND_LANGUAGE", "it", ("platform", "language"), None),
    ("PROVISIOND_SIP_REGISTRAR", "pbx.env.test", ("platform", "sip", "registrar"), None),
    ("PROVISIOND_SIP_PORT", "5070", ("platform", "sip", "port"), 5070),
    ("PROVISIOND_SIP_TRANSPORT", "tls", ("platform", "sip", "transport"), None),
    ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test", ("platform", "sip", "outbound_proxy"), None),
    (
        "PROVISIOND_TEAM_APP_FALLBACK_TIMEOUT_S",
        "45",
        ("platform", "team_app", "fallback_timeout_s"),
        45,
    ),
    (
        "PROVISIOND_TEAM_APP_CALLBACK_ENABLED",
        "false",
        ("platform", "team_app", "callback_enabled"),
        False,
    ),
    ("PROVISIOND_TFTP_MAX_TRANSFERS", "100", ("tftp_limits", "max_transfers"), 100),
    ("PROVISIOND_TFTP_MAX_PER_SOURCE", "8", ("tftp_limits", "max_per_source"), 8),
    ("PROVISIOND_TFTP_FD_HEADROOM", "512", ("tftp_limits", "fd_headroom"), 512),
    ("PROVISIOND_TFTP_MAX_TIMEOUT_S", "5", ("tftp_limits", "max_timeout_s"), 5.0),
    ("PROVISIOND_TFTP_FIRST_PACKET_TIMEOUT_S", "3", ("tftp_limits", "first_packet_timeout_s"), 3.0),
    ("PROVISIOND_TFTP_UNPROVEN_GRACE_S", "1", ("tftp_limits", "unproven_grace_s"), 1.0),
    ("PROVISIOND_ADMIN_HEADER_TIMEOUT_S", "5", ("admin_limits", "header_timeout_s"), 5.0),
    ("PROVISIOND_ADMIN_IDLE_TIMEOUT_S", "30", ("admin_limits", "idle_timeout_s"), 30.0),
    ("PROVISIOND_ADMIN_BODY_TIMEOUT_S", "30", ("admin_limits", "body_timeout_s"), 30.0),
    (
        "PROVISIOND_ADMIN_MAX_CONNECTIONS_PER_SOURCE",
        "16",
        ("admin_limits", "max_connections_per_source"),
        16,
    ),
    ("PROVISIOND_TFTP_UPLOAD_IDLE_TIMEOUT_S", "4", ("tftp_limits", "upload_idle_timeout_s"), 4.0),
    (
        "PROVISIOND_TFTP_UPLOAD_BYTES_PER_SOURCE",
        "65536",
        ("tftp_limits", "upload_bytes_per_source"),
        65536,
    ),
    (
        "PROVISIOND_TFTP_UPLOAD_BYTES_TOTAL",
        "1048576",
        ("tftp_limits", "upload_bytes_total"),
        1048576,
    ),
    ("PROVISIOND_HTTP_HEADER_TIMEOUT_S", "5", ("phone_limits", "header_timeout_s"), 5.0),
    ("PROVISIOND_HTTP_IDLE_TIMEOUT_S", "7", ("phone_limits", "idle_timeout_s"), 7.0),
    ("PROVISIOND_HTTP_BODY_TIMEOUT_S", "9", ("phone_limits", "body_timeout_s"), 9.0),
    (
        "PROVISIOND_HTTP_MAX_CONNECTIONS_PER_SOURCE",
        "64",
        ("phone_limits", "max_connections_per_source"),
        64,
    ),
    ("PROVISIOND_HTTP_MAX_CONNECTIONS", "5000", ("phone_limits", "max_connections"), 5000),
    ("PROVISIOND_HTTP_FD_RESERVE", "2048", ("phone_limits", "fd_reserve"), 2048),
    (
        "PROVISIOND_HTTP_ALLOWED_HOSTS",
        "a.test, b.test",
        ("phone_limits", "allowed_hosts"),
        ("a.test", "b.test"),
    ),
    ("PROVISIOND_UPLOAD_QUOTA_BYTES", "8192", ("phone_limits", "upload_quota_bytes"), 8192),
]


def test_the_table_covers_every_environment_variable() -> None:
    assert {name for name, *_ in ENV_TABLE} == set(ENVIRONMENT)


@pytest.mark.parametrize(("name", "value", "path", "expected"), ENV_TABLE)
def test_each_environment_variable_maps_to_its_setting(
    name: str, value: str, path: tuple[str, ...], expected: Any
) -> None:
    default = _get(load_settings(environ={}), path)
    settings = load_settings(environ={name: value})
    wanted = value if expected is None else expected
    assert wanted != default  # otherwise the row could not tell a dropped mapping
    assert _get(settings, path) == wanted
    assert ENVIRONMENT[name] == path


@pytest.mark.parametrize(
    ("name", "value", "key"),
    [
        ("PROVISIOND_SIP_PORT", "0", "platform.sip.port"),
        ("PROVISIOND_SIP_PORT", "sixty", "platform.sip.port"),
        ("PROVISIOND_SIP_TRANSPORT", "sctp", "platform.sip.transport"),
        ("PROVISIOND_TIMEZONE", "Mars/Olympus", "platform.timezone"),
        ("PROVISIOND_MCS_INTERCONNECTED", "perhaps", "platform.mcs_interconnected"),
        ("PROVISIOND_TEAM_APP_FALLBACK_TIMEOUT_S", "121", "platform.team_app.fallback_timeout_s"),
        ("PROVISIOND_TEAM_APP_FALLBACK_TIMEOUT_S", "0", "platform.team_app.fallback_timeout_s"),
        ("PROVISIOND_TEAM_APP_CALLBACK_ENABLED", "sometimes", "platform.team_app.callback_enabled"),
        ("PROVISIOND_PHONE_HTTP", "no-port", "phone_http"),
        ("PROVISIOND_TFTP", "0.0.0.0:70000", "tftp"),
        ("PROVISIOND_ADMIN_HTTP", ":8081", "admin_http"),
        ("PROVISIOND_MAX_BODY_BYTES", "100", "max_body_bytes"),
        ("PROVISIOND_MAX_UPLOAD_BYTES", "-1", "max_upload_bytes"),
        ("PROVISIOND_MODEL_CHECK", "lax", "security.model_check"),
        ("PROVISIOND_BAN_S", "0", "security.ban_s"),
        ("PROVISIOND_BAN_WINDOW_S", "ten", "security.ban_window_s"),
        ("PROVISIOND_TLS_LEGACY", "maybe", "tls.legacy"),
        ("PROVISIOND_PHONE_HTTPS", "no-port", "tls.listen"),
    ],
)
def test_invalid_environment_values_name_the_key(name: str, value: str, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={name: value})
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tftp = 69\n", "tftp"),
        ("unknown_key = 1\n", "unknown_key"),
        ("[platform]\nvoicemail = true\n", "platform.voicemail"),
        ("[platform.sip]\nport = 99999\n", "platform.sip.port"),
        ("[platform.team_app]\nfallback_timeout_s = 500\n", "platform.team_app.fallback_timeout_s"),
    ],
)
def test_invalid_file_values_name_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_write(tmp_path, text), environ={})
    assert key in str(info.value)


def test_malformed_toml_names_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "phone_http = \n")
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(SettingsError) as info:
        load_settings(path, environ={})
    assert str(path) in str(info.value)


def test_environment_wins_even_when_invalid(tmp_path: Path) -> None:
    # The environment wins even when it is wrong: the file's valid value does not mask it.
    with pytest.raises(SettingsError, match=r"platform\.sip\.port"):
        load_settings(_write(tmp_path, TOML), environ={"PROVISIOND_SIP_PORT": "0"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.0.0.0:8080", ("0.0.0.0", 8080)),
        ("127.0.0.1:0", ("127.0.0.1", 0)),
        ("[::1]:69", ("::1", 69)),
        ("prov.example.com:65535", ("prov.example.com", 65535)),
    ],
)
def test_parse_listen(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("8080", "host:port"),
        ("host:", "host:port"),
        ("host:http", "host:port"),
        ("host:65536", "out of range"),
        (":8080", "no host"),
        ("[]:80", "no host"),
    ],
)
def test_parse_listen_refuses(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_listen(text)


# -- the platform's host names and language: one check for the file, the environment and the API


@pytest.mark.parametrize(
    ("name", "value", "key", "words"),
    [
        ("PROVISIOND_SIP_REGISTRAR", "", "platform.sip.registrar", "must not be empty"),
        ("PROVISIOND_SIP_REGISTRAR", "pbx.test\nx = 1", "platform.sip.registrar", "control"),
        ("PROVISIOND_SIP_REGISTRAR", "pbx test", "platform.sip.registrar", "spaces"),
        ("PROVISIOND_SIP_REGISTRAR", "pbx_1.test", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "-pbx.test", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "pbx.test.", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "10.0.0.300", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "pbx.test:5060", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "2001:db8::1", "platform.sip.registrar", "IPv6"),
        ("PROVISIOND_SIP_REGISTRAR", "a" * 64 + ".test", "platform.sip.registrar", "not a host"),
        ("PROVISIOND_SIP_REGISTRAR", "a." * 127 + "test", "platform.sip.registrar", "at most 253"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test:", "platform.sip.outbound_proxy", "port"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test:0", "platform.sip.outbound_proxy", "port"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test:65536", "platform.sip.outbound_proxy", "port"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test:sip", "platform.sip.outbound_proxy", "port"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "2001:db8::1", "platform.sip.outbound_proxy", "IPv6"),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc\t.test", "platform.sip.outbound_proxy", "control"),
        ("PROVISIOND_NTP_SERVER", "a b", "platform.ntp_server", "spaces"),
        ("PROVISIOND_NTP_SERVER", "pool.ntp.org\nx", "platform.ntp_server", "control"),
        ("PROVISIOND_NTP_SERVER", "fe80::1%eth0", "platform.ntp_server", "not a host"),
        ("PROVISIOND_LANGUAGE", "en\n", "platform.language", "ISO 639-1"),
        ("PROVISIOND_LANGUAGE", "", "platform.language", "ISO 639-1"),
        ("PROVISIOND_LANGUAGE", "EN", "platform.language", "ISO 639-1"),
        ("PROVISIOND_LANGUAGE", "en-GB", "platform.language", "ISO 639-1"),
        ("PROVISIOND_LANGUAGE", "english", "platform.language", "ISO 639-1"),
    ],
)
def test_platform_hosts_and_language_are_checked_at_start(
    name: str, value: str, key: str, words: str
) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(environ={name: value})
    assert key in str(info.value)
    assert words in str(info.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[platform.sip]\nregistrar = ""\n', "platform.sip.registrar"),
        ('[platform.sip]\nregistrar = "pbx.test\\r\\nx"\n', "platform.sip.registrar"),
        ('[platform.sip]\noutbound_proxy = "sbc.test:99999"\n', "platform.sip.outbound_proxy"),
        ('[platform]\nntp_server = "ntp\\u0000.test"\n', "platform.ntp_server"),
        ('[platform]\nlanguage = "xx-"\n', "platform.language"),
    ],
)
def test_platform_hosts_and_language_in_the_file(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(_write(tmp_path, text), environ={})
    assert key in str(info.value)


@pytest.mark.parametrize(
    ("name", "value", "path"),
    [
        ("PROVISIOND_SIP_REGISTRAR", "192.0.2.10", ("platform", "sip", "registrar")),
        ("PROVISIOND_SIP_REGISTRAR", "pbx", ("platform", "sip", "registrar")),
        ("PROVISIOND_SIP_REGISTRAR", "xn--bcher-kva.test", ("platform", "sip", "registrar")),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "sbc.test:5070", ("platform", "sip", "outbound_proxy")),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "192.0.2.20:1", ("platform", "sip", "outbound_proxy")),
        ("PROVISIOND_SIP_OUTBOUND_PROXY", "", ("platform", "sip", "outbound_proxy")),
        ("PROVISIOND_NTP_SERVER", "2001:db8::123", ("platform", "ntp_server")),
        ("PROVISIOND_NTP_SERVER", "", ("platform", "ntp_server")),
        ("PROVISIOND_LANGUAGE", "de", ("platform", "language")),
    ],
)
def test_platform_hosts_and_language_accepted(name: str, value: str, path: tuple[str, ...]) -> None:
    assert _get(load_settings(environ={name: value}), path) == value
