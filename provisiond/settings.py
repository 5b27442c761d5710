"""One typed settings object, loaded from a TOML file and PROVISIOND_* environment variables.

Precedence, lowest first: built-in defaults, the TOML file, the environment. The *platform*
part (SIP registrar, NTP, timezone, MCS interconnection, Team App defaults) can also be changed
at run time through ``PUT /api/v1/settings``; values stored that way override this file (the
file seeds them), see provisiond.services.platform.

Example TOML::

    database_url = "postgresql+asyncpg://provisiond@db/provisiond"
    data_dir = "/var/lib/provisiond"
    phone_http = "0.0.0.0:80"
    tftp = "0.0.0.0:69"
    admin_http = "127.0.0.1:8081"

    [platform]
    ntp_server = "ntp.example.com"
    timezone = "Europe/Rome"
    mcs_interconnected = true

    [platform.sip]
    registrar = "pbx.example.com"
    port = 5060
    transport = "udp"

    [platform.team_app]
    fallback_timeout_s = 10
    callback_enabled = true
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from provisiond.domain.rules import has_control

REPO_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(Exception):
    """The configuration file or environment holds an invalid value."""


def parse_listen(value: str) -> tuple[str, int]:
    """Split ``host:port`` / ``[v6]:port`` into (host, port); raises ValueError when malformed."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"listen address {value!r} must be host:port")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    host = host.strip("[]")
    if not host:
        raise ValueError(f"listen address {value!r} has no host")
    return host, port


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# One DNS label: letters, digits and inner hyphens, 1-63 characters (RFC 1123).
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_PORT = re.compile(r"[0-9]{1,5}")
MAX_HOST_LENGTH = 253  # a DNS name's longest text form
# The UI language: a two-letter ISO 639-1 code, the form every phone template keys on.
_LANGUAGE = re.compile(r"[a-z]{2}")


def check_host(value: str, *, ipv6: bool) -> str:
    """`value` when it is a DNS host name or an IPv4 literal (an IPv6 literal too with `ipv6`);
    raises ValueError saying why not. International names are given in their xn-- form.

    The SIP hosts pass ``ipv6=False``: the phone files write them as ``host:port``, which an
    unbracketed IPv6 literal would make ambiguous.
    """
    if not value:
        raise ValueError("must not be empty")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError(f"{value!r} must not contain spaces or control characters")
    if len(value) > MAX_HOST_LENGTH:
        raise ValueError(f"a host name has at most {MAX_HOST_LENGTH} characters")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        address = None
    if address is not None and "%" not in value:
        if address.version == 6 and not ipv6:
            raise ValueError(f"{value!r}: IPv6 literals are not supported here; use a host name")
        return value
    labels = value.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise ValueError(f"{value!r} is not a host name or IP address")
    return value


class SipSettings(_Strict):
    """Where phones register: the registrar host (its port and transport apart) and an optional
    outbound proxy, ``host`` or ``host:port`` ("" for none; without a port, `port` applies)."""

    registrar: str = "pbx.invalid"
    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    transport: Literal["udp", "tcp", "tls"] = "udp"
    outbound_proxy: str = ""

    @field_validator("registrar")
    @classmethod
    def _registrar(cls, value: str) -> str:
        return check_host(value, ipv6=False)

    @field_validator("outbound_proxy")
    @classmethod
    def _outbound_proxy(cls, value: str) -> str:
        if not value:
            return value
        # Split as provisiond.provisioning.context does: host, then the port after a colon.
        host, sep, port = value.partition(":")
        if ":" in port:
            raise ValueError(f"{value!r}: IPv6 literals are not supported here; use a host name")
        check_host(host, ipv6=False)
        if sep and not (_PORT.fullmatch(port) and 1 <= int(port) <= 65535):
            raise ValueError(f"{value!r}: the port after ':' must be 1-65535")
        return value


class TeamAppDefaults(_Strict):
    """Settings > Advanced > Team App: defaults a user may override."""

    fallback_timeout_s: Annotated[int, Field(ge=1, le=120)] = 10
    callback_enabled: bool = True


class PhonebookSettings(_Strict):
    """The company phone book phones fetch (docs/phones.md): its title, how often a phone
    re-reads it, and whether a user's Team App GSM number is listed as their mobile (only for
    users whose Team App is on in GSM mode)."""

    title: Annotated[str, Field(min_length=1, max_length=64)] = "Directory"
    refresh_s: Annotated[int, Field(ge=300, le=604800)] = 3600
    mobile: bool = True

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        # Every device file carries it (one title for the whole installation): a U+FFFF in it
        # made every Cisco, Fanvil and Gigaset device file unreadable XML.
        if has_control(value) or value != value.strip():
            raise ValueError(
                "the title must be plain text: no control, invisible or non-characters, no "
                "surrounding spaces"
            )
        return value


class PlatformSettings(_Strict):
    """Platform-wide settings that the admin API may also change at run time.

    `ntp_server` is a host name or IP literal, or "" to leave NTP to the phones; `language` a
    two-letter ISO 639-1 code (templates map the codes they know and fall back for others).
    """

    mcs_interconnected: bool = False
    team_app: TeamAppDefaults = TeamAppDefaults()
    sip: SipSettings = SipSettings()
    ntp_server: str = "pool.ntp.org"
    timezone: str = "UTC"
    language: str = "en"
    phonebook: PhonebookSettings = PhonebookSettings()

    @field_validator("ntp_server")
    @classmethod
    def _ntp_server(cls, value: str) -> str:
        # "" leaves NTP out of the phone files: phones keep their own server.
        return value if value == "" else check_host(value, ipv6=True)

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not _LANGUAGE.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a two-letter lowercase ISO 639-1 code (en, it, de, ...)"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class SecuritySettings(_Strict):
    """Phone-side defences (docs/security.md explains each)."""

    model_check: Literal["warn", "strict"] = "warn"  # User-Agent model vs the device's model
    ban_window_s: Annotated[int, Field(ge=1)] = 600
    ban_unknown_per_source: Annotated[int, Field(ge=1)] = 20
    ban_unknown_per_prefix: Annotated[int, Field(ge=1)] = 100
    ban_auth_failures: Annotated[int, Field(ge=1)] = 10
    ban_s: Annotated[int, Field(ge=1)] = 3600
    digest_realm: str = "provisiond"
    digest_algorithms: tuple[Literal["SHA-256", "MD5"], ...] = ("SHA-256", "MD5")


class ResyncSettings(_Strict):
    """The resync NOTIFY sent to phones."""

    port: Annotated[int, Field(ge=1, le=65535)] = 5060
    t1: Annotated[float, Field(gt=0, le=5)] = 0.5  # RFC 3261 T1: first retransmission
    timeout_s: Annotated[float, Field(gt=0, le=64)] = 8.0  # timer F: give up after
    concurrency: Annotated[int, Field(ge=1, le=1000)] = 50  # NOTIFYs in flight in a bulk resync
    on_change: bool = False  # resync devices whose rendered file an admin change altered


class TlsSettings(_Strict):
    """The HTTPS phone listener (off unless `listen` is set)."""

    listen: str = ""  # e.g. 0.0.0.0:8443 (443 in production)
    cert: Path | None = None
    key: Path | None = None
    client_ca: Path | None = None  # vendor CA bundle: enables the `certificate` policy
    legacy: bool = False  # TLS 1.0/1.1 and CBC/RSA suites for old phones; see docs/security.md

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        if value:
            parse_listen(value)
        return value


class PhoneLimits(_Strict):
    """Limits of the phone HTTP(S) listeners and of phone uploads (issue 12, findings 7-9).

    Every limit is per process (each `--workers` process counts its own connections).
    """

    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0  # first request's head
    idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 15.0  # keep-alive, and next head
    body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 30.0  # a whole upload body
    max_connections_per_source: Annotated[int, Field(ge=1)] = 256  # per IPv4 address / IPv6 /64
    # All phone HTTP(S) connections of the process; 0: the descriptor limit (RLIMIT_NOFILE)
    # minus `fd_reserve`, which stays for TFTP, the database and firmware files.
    max_connections: Annotated[int, Field(ge=0)] = 0
    fd_reserve: Annotated[int, Field(ge=64)] = 1024
    allowed_hosts: tuple[str, ...] = ()  # Host names besides the derived ones; "*": any
    upload_quota_bytes: Annotated[int, Field(ge=1024)] = 4 << 20  # all uploads of one device

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _hosts(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma-separated
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


class AdminLimits(_Strict):
    """Limits of the admin listener: API, web console and metrics (finding F9; see
    docs/security.md). A browser opens some 6-10 connections and keeps them alive.

    Per process (the admin listener runs in the first process only).
    """

    header_timeout_s: Annotated[float, Field(gt=0, le=300)] = 10.0  # first request's head
    idle_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0  # keep-alive, and next head
    body_timeout_s: Annotated[float, Field(gt=0, le=3600)] = 60.0  # a whole request body
    max_connections_per_source: Annotated[int, Field(ge=1)] = 64  # per IPv4 address / IPv6 /64


class TftpLimits(_Strict):
    """TFTP resource limits (issue 12, findings 4-5; docs/security.md, "TFTP limits").

    Per process (TFTP runs in the first process only).
    """

    max_transfers: Annotated[int, Field(ge=1)] = 4096  # at once, all sources together
    max_per_source: Annotated[int, Field(ge=1)] = 64  # at once per address (a NAT of phones)
    fd_headroom: Annotated[int, Field(ge=0)] = 256  # descriptors TFTP leaves to HTTP and admin
    # A transfer whose peer has sent nothing may be evicted for a new request (full table or
    # source) once this old: longer than a slow phone's round trip, short against a flood.
    unproven_grace_s: Annotated[float, Field(ge=0.05, le=5)] = 0.2
    max_timeout_s: Annotated[float, Field(ge=1, le=255)] = 10.0  # cap on the timeout option
    first_packet_timeout_s: Annotated[float, Field(gt=0, le=60)] = 8.0  # until the first ACK
    upload_idle_timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0  # between upload DATA
    upload_bytes_per_source: Annotated[int, Field(ge=1024)] = 4 << 20  # buffered at once
    upload_bytes_total: Annotated[int, Field(ge=1024)] = 64 << 20  # buffered at once, all


class Settings(_Strict):
    """Everything provisiond reads at start-up."""

    data_dir: Path = Path("var")
    database_url: str | None = None
    phone_http: str = "0.0.0.0:8080"
    phone_http_prefix: str = ""
    tftp: str = "0.0.0.0:6969"
    admin_http: str = "127.0.0.1:8081"
    public_url: str = ""  # how phones reach us, e.g. http://prov.example.com:8080/ (else derived)
    templates_dir: Path = REPO_ROOT / "phone_templates"
    firmware_dir: Path = REPO_ROOT / "firmware"
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1 << 20
    max_upload_bytes: Annotated[int, Field(ge=1024)] = 256 << 10
    cors_origins: tuple[str, ...] = ()  # browser origins allowed to call the admin API
    keyring: Path | None = None  # SIP secrets key file; default <data_dir>/keys/secrets.json
    log_format: Literal["text", "json"] = "text"
    platform: PlatformSettings = PlatformSettings()
    security: SecuritySettings = SecuritySettings()
    tls: TlsSettings = TlsSettings()
    resync: ResyncSettings = ResyncSettings()
    phone_limits: PhoneLimits = PhoneLimits()  # HTTP timeouts, caps, hosts, quota
    tftp_limits: TftpLimits = TftpLimits()  # TFTP transfer, fd, timer and upload caps
    admin_limits: AdminLimits = AdminLimits()  # admin HTTP timeouts and per-source cap

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma-separated
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("phone_http", "tftp", "admin_http")
    @classmethod
    def _listen(cls, value: str) -> str:
        parse_listen(value)
        return value

    @field_validator("phone_http_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @property
    def effective_database_url(self) -> str:
        """The configured URL, or a SQLite file in the data directory."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'provisiond.db').resolve()}"

    @property
    def keyring_path(self) -> Path:
        """Where the key that encrypts SIP secrets lives (never inside the database)."""
        return self.keyring or self.data_dir / "keys" / "secrets.json"

    @property
    def is_embedded(self) -> bool:
        """True on the embedded default (SQLite)."""
        return self.effective_database_url.startswith("sqlite")


# Environment variable -> path in the settings tree.
ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "PROVISIOND_DATA_DIR": ("data_dir",),
    "PROVISIOND_DATABASE_URL": ("database_url",),
    "PROVISIOND_PHONE_HTTP": ("phone_http",),
    "PROVISIOND_PHONE_HTTP_PREFIX": ("phone_http_prefix",),
    "PROVISIOND_TFTP": ("tftp",),
    "PROVISIOND_ADMIN_HTTP": ("admin_http",),
    "PROVISIOND_PUBLIC_URL": ("public_url",),
    "PROVISIOND_TEMPLATES_DIR": ("templates_dir",),
    "PROVISIOND_FIRMWARE_DIR": ("firmware_dir",),
    "PROVISIOND_MAX_BODY_BYTES": ("max_body_bytes",),
    "PROVISIOND_MAX_UPLOAD_BYTES": ("max_upload_bytes",),
    "PROVISIOND_CORS_ORIGINS": ("cors_origins",),
    "PROVISIOND_KEYRING": ("keyring",),
    "PROVISIOND_LOG_FORMAT": ("log_format",),
    "PROVISIOND_MODEL_CHECK": ("security", "model_check"),
    "PROVISIOND_BAN_WINDOW_S": ("security", "ban_window_s"),
    "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": ("security", "ban_unknown_per_source"),
    "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": ("security", "ban_unknown_per_prefix"),
    "PROVISIOND_BAN_AUTH_FAILURES": ("security", "ban_auth_failures"),
    "PROVISIOND_BAN_S": ("security", "ban_s"),
    "PROVISIOND_RESYNC_PORT": ("resync", "port"),
    "PROVISIOND_RESYNC_TIMEOUT_S": ("resync", "timeout_s"),
    "PROVISIOND_RESYNC_ON_CHANGE": ("resync", "on_change"),
    "PROVISIOND_PHONE_HTTPS": ("tls", "listen"),
    "PROVISIOND_TLS_CERT": ("tls", "cert"),
    "PROVISIOND_TLS_KEY": ("tls", "key"),
    "PROVISIOND_TLS_CLIENT_CA": ("tls", "client_ca"),
    "PROVISIOND_TLS_LEGACY": ("tls", "legacy"),
    "PROVISIOND_TFTP_MAX_TRANSFERS": ("tftp_limits", "max_transfers"),
    "PROVISIOND_TFTP_MAX_PER_SOURCE": ("tftp_limits", "max_per_source"),
    "PROVISIOND_TFTP_FD_HEADROOM": ("tftp_limits", "fd_headroom"),
    "PROVISIOND_TFTP_UNPROVEN_GRACE_S": ("tftp_limits", "unproven_grace_s"),
    "PROVISIOND_TFTP_MAX_TIMEOUT_S": ("tftp_limits", "max_timeout_s"),
    "PROVISIOND_TFTP_FIRST_PACKET_TIMEOUT_S": ("tftp_limits", "first_packet_timeout_s"),
    "PROVISIOND_TFTP_UPLOAD_IDLE_TIMEOUT_S": ("tftp_limits", "upload_idle_timeout_s"),
    "PROVISIOND_TFTP_UPLOAD_BYTES_PER_SOURCE": ("tftp_limits", "upload_bytes_per_source"),
    "PROVISIOND_TFTP_UPLOAD_BYTES_TOTAL": ("tftp_limits", "upload_bytes_total"),
    "PROVISIOND_HTTP_HEADER_TIMEOUT_S": ("phone_limits", "header_timeout_s"),
    "PROVISIOND_HTTP_IDLE_TIMEOUT_S": ("phone_limits", "idle_timeout_s"),
    "PROVISIOND_HTTP_BODY_TIMEOUT_S": ("phone_limits", "body_timeout_s"),
    "PROVISIOND_HTTP_MAX_CONNECTIONS_PER_SOURCE": ("phone_limits", "max_connections_per_source"),
    "PROVISIOND_HTTP_MAX_CONNECTIONS": ("phone_limits", "max_connections"),
    "PROVISIOND_HTTP_FD_RESERVE": ("phone_limits", "fd_reserve"),
    "PROVISIOND_HTTP_ALLOWED_HOSTS": ("phone_limits", "allowed_hosts"),
    "PROVISIOND_UPLOAD_QUOTA_BYTES": ("phone_limits", "upload_quota_bytes"),
    "PROVISIOND_ADMIN_HEADER_TIMEOUT_S": ("admin_limits", "header_timeout_s"),
    "PROVISIOND_ADMIN_IDLE_TIMEOUT_S": ("admin_limits", "idle_timeout_s"),
    "PROVISIOND_ADMIN_BODY_TIMEOUT_S": ("admin_limits", "body_timeout_s"),
    "PROVISIOND_ADMIN_MAX_CONNECTIONS_PER_SOURCE": ("admin_limits", "max_connections_per_source"),
    "PROVISIOND_MCS_INTERCONNECTED": ("platform", "mcs_interconnected"),
    "PROVISIOND_NTP_SERVER": ("platform", "ntp_server"),
    "PROVISIOND_TIMEZONE": ("platform", "timezone"),
    "PROVISIOND_LANGUAGE": ("platform", "language"),
    "PROVISIOND_SIP_REGISTRAR": ("platform", "sip", "registrar"),
    "PROVISIOND_SIP_PORT": ("platform", "sip", "port"),
    "PROVISIOND_SIP_TRANSPORT": ("platform", "sip", "transport"),
    "PROVISIOND_SIP_OUTBOUND_PROXY": ("platform", "sip", "outbound_proxy"),
    "PROVISIOND_TEAM_APP_FALLBACK_TIMEOUT_S": ("platform", "team_app", "fallback_timeout_s"),
    "PROVISIOND_TEAM_APP_CALLBACK_ENABLED": ("platform", "team_app", "callback_enabled"),
}


def _put(tree: dict[str, Any], path: tuple[str, ...], value: str) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load_settings(
    config_file: Path | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build the settings from an optional TOML file and the environment (which wins)."""
    env = os.environ if environ is None else environ
    tree: dict[str, Any] = {}
    path = config_file or (Path(env["PROVISIOND_CONFIG"]) if env.get("PROVISIOND_CONFIG") else None)
    if path is not None:
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: {exc}") from exc
    for name, key_path in ENVIRONMENT.items():
        if name in env:
            _put(tree, key_path, env[name])
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise SettingsError(f"invalid settings: {problems}") from exc
