"""The composition root: builds every component from the settings.

Nothing else in the package constructs services, engines or the phone pipeline;
provisiond.server runs the listeners with what these functions build.
"""

from __future__ import annotations

import logging
import ssl

from provisiond.domain.errors import DomainError
from provisiond.frontends.tls import TlsConfigError, server_ssl_context
from provisiond.provisioning.activity import ActivitySink
from provisiond.provisioning.bans import EnumerationGuard, GuardConfig
from provisiond.provisioning.digest import DigestAuth
from provisiond.provisioning.directory import DatabaseDirectory, PhoneDirectory
from provisiond.provisioning.gate import Gate
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.resolver import Endpoints, Resolver
from provisiond.provisioning.uploads import UploadStore
from provisiond.provisioning.vendors import load_vendors
from provisiond.services import ServiceContext, Services
from provisiond.settings import Settings, parse_listen
from provisiond.storage import migrate
from provisiond.storage.database import Database
from provisiond.storage.secrets import SecretBox, SecretError, open_secret_box

log = logging.getLogger("provisiond")


class NotMigrated(DomainError):
    """The database schema is older than this release."""

    code = "not_migrated"


class TlsProblem(DomainError):
    """The HTTPS listener's certificate, key or CA bundle cannot be used."""

    code = "tls"


class KeyringProblem(DomainError):
    """The keyring is missing or does not hold the keys the database uses."""

    code = "keyring"


async def prepare_database(settings: Settings) -> Database:
    """Open the database; migrate it on the embedded default, else require it migrated."""
    url = settings.effective_database_url
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate.upgrade(url)
    elif await migrate.current_revision(url) != migrate.head_revision():
        raise NotMigrated("the database schema is not current; run `provisiond db upgrade`")
    return Database(url)


async def open_secrets(settings: Settings, db: Database) -> SecretBox:
    """The SIP-secret keyring: created on first start of the embedded default only.

    On PostgreSQL every instance must share one keyring (`provisiond keys init` on one host,
    then copy the file), so an instance never invents its own key.
    """
    try:
        return await open_secret_box(db, settings.keyring_path, create=settings.is_embedded)
    except SecretError as exc:
        raise KeyringProblem(f"{exc}; see `provisiond keys --help`") from exc


def build_services(settings: Settings, db: Database, secrets: SecretBox) -> Services:
    """The service layer over `db`."""
    return Services(ServiceContext(db=db, settings=settings, secrets=secrets))


def endpoints(settings: Settings) -> Endpoints:
    """How phones reach us: the configured public URL, else the listen addresses."""
    http_host, http_port = parse_listen(settings.phone_http)
    tftp_host, tftp_port = parse_listen(settings.tftp)
    if settings.public_url:
        url = settings.public_url.rstrip("/") + "/"
        host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
        return Endpoints(url, host, tftp_port)
    wildcard = ("0.0.0.0", "::")  # noqa: S104 (comparing, not binding)
    host = "127.0.0.1" if http_host in wildcard else http_host
    prefix = f"{settings.phone_http_prefix}/" if settings.phone_http_prefix else ""
    shown = f"[{host}]" if ":" in host else host
    tftp_shown = host if tftp_host in wildcard else tftp_host
    return Endpoints(f"http://{shown}:{http_port}/{prefix}", tftp_shown, tftp_port)


def tls_context(settings: Settings) -> ssl.SSLContext:
    """The HTTPS phone listener's context (modern unless `tls.legacy`)."""
    tls = settings.tls
    if tls.cert is None or tls.key is None:
        raise TlsProblem("tls.listen is set: tls.cert and tls.key are required")
    try:
        return server_ssl_context(tls.cert, tls.key, client_ca=tls.client_ca, legacy=tls.legacy)
    except TlsConfigError as exc:
        raise TlsProblem(str(exc)) from exc


def build_guard(settings: Settings) -> EnumerationGuard:
    """The enumeration guard, shared by the phone pipeline and the admin API (/bans)."""
    sec = settings.security
    return EnumerationGuard(
        GuardConfig(
            window_s=sec.ban_window_s,
            unknown_per_source=sec.ban_unknown_per_source,
            unknown_per_prefix=sec.ban_unknown_per_prefix,
            auth_failures_per_source=sec.ban_auth_failures,
            ban_s=sec.ban_s,
        )
    )


def build_resolver(
    settings: Settings,
    db: Database,
    secrets: SecretBox,
    activity: ActivitySink,
    guard: EnumerationGuard | None = None,
    directory: PhoneDirectory | None = None,
) -> Resolver:
    """The phone pipeline; over the database unless a (memory) directory is given."""
    digest = DigestAuth(
        realm=settings.security.digest_realm,
        secret=secrets.derive(b"digest-nonce"),
        algorithms=settings.security.digest_algorithms,
    )
    gate = Gate(guard or build_guard(settings), digest, secrets, settings.security.model_check)
    return Resolver(
        gate=gate,
        secrets=secrets,
        vendors=load_vendors(settings.templates_dir),
        renderer=Renderer(settings.templates_dir),
        directory=directory or DatabaseDirectory(db, settings.platform),
        activity=activity,
        uploads=UploadStore(
            settings.data_dir / "uploads",
            max_bytes=settings.max_upload_bytes,
            quota=settings.phone_limits.upload_quota_bytes,
        ),
        firmware_dir=settings.firmware_dir,
        endpoints=endpoints(settings),
    )
