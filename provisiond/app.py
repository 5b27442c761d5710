"""The composition root: builds every component from the settings.

Nothing else in the package constructs services, engines or the phone pipeline: the server,
the CLI (`provisiond render`), bench/ and the tests all call `build_services` and
`build_phone_side`; provisiond.server runs the listeners with what they build.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from provisiond.domain.errors import DomainError
from provisiond.domain.identify import VendorSpec
from provisiond.frontends.tls import TlsConfigError, server_ssl_context
from provisiond.provisioning.activity import ActivityRecorder, ActivitySink
from provisiond.provisioning.bans import EnumerationGuard, GuardConfig
from provisiond.provisioning.catalogue import CatalogueError, load_catalogue
from provisiond.provisioning.changes import Change, ChangeFeed
from provisiond.provisioning.context import Endpoints
from provisiond.provisioning.digest import DigestAuth
from provisiond.provisioning.firmware import FirmwareStore
from provisiond.provisioning.gate import Gate
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.provisioning.notify import ChangeListener, notify_changes
from provisiond.provisioning.render import Renderer
from provisiond.provisioning.resolver import Resolver
from provisiond.provisioning.uploads import UploadStore
from provisiond.provisioning.vendors import VendorError, load_vendors
from provisiond.services import ServiceContext, Services
from provisiond.services.catalogue_sync import CatalogueSync, sync_catalogue
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
    db = Database(url)
    try:
        await sync_models(settings, db)
    except BaseException:
        await db.dispose()
        raise
    return db


class TemplatesProblem(DomainError):
    """A vendor description or a model catalogue file cannot be used."""

    code = "templates"


async def sync_models(settings: Settings, db: Database) -> CatalogueSync:
    """Write the templates' model catalogue (models.toml) to the database."""
    try:
        vendors = load_vendors(settings.templates_dir)
        models = load_catalogue(settings.templates_dir, vendors)
    except (VendorError, CatalogueError, FileNotFoundError) as exc:
        raise TemplatesProblem(str(exc)) from exc
    result = await sync_catalogue(db, models)
    if result.changed:
        log.info(
            "model catalogue: %d added, %d updated, %d removed, %d kept for their devices",
            len(result.added),
            len(result.updated),
            len(result.removed),
            len(result.retired),
        )
    return result


async def open_secrets(settings: Settings, db: Database) -> SecretBox:
    """The SIP-secret keyring: created on first start of the embedded default only.

    On PostgreSQL every instance must share one keyring (`provisiond keys init` on one host,
    then copy the file), so an instance never invents its own key.
    """
    try:
        return await open_secret_box(db, settings.keyring_path, create=settings.is_embedded)
    except SecretError as exc:
        raise KeyringProblem(f"{exc}; see `provisiond keys --help`") from exc


def build_services(
    settings: Settings,
    db: Database,
    secrets: SecretBox,
    vendors: Sequence[VendorSpec] | None = None,
) -> Services:
    """The service layer over `db` (`vendors`: the phone side's, else read from the templates)."""
    specs = load_vendors(settings.templates_dir) if vendors is None else vendors
    return Services(
        ServiceContext(db=db, settings=settings, secrets=secrets, vendors={v.id: v for v in specs})
    )


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


@dataclass
class PhoneSide:
    """One process's phone pipeline: the resolver over the in-memory directory, the change
    feed that keeps it current, and where phone activity goes."""

    resolver: Resolver
    directory: MemoryDirectory
    feed: ChangeFeed
    activity: ActivitySink
    listener: ChangeListener | None = None  # PostgreSQL: other instances' commits wake the feed
    _hooks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    _db: Database | None = None

    async def stop(self) -> None:
        """Stop following changes and write pending phone activity."""
        if self._db is not None:
            for hook in self._hooks:
                self._db.after_write.remove(hook)
        if self.listener is not None:
            await self.listener.stop()
        await self.feed.stop()
        if isinstance(self.activity, ActivityRecorder):
            await self.activity.stop()


async def build_phone_side(
    settings: Settings,
    db: Database,
    secrets: SecretBox,
    *,
    guard: EnumerationGuard | None = None,
    activity: ActivitySink | None = None,
    vendors: Sequence[VendorSpec] | None = None,
    follow: bool = True,
    also: Callable[[list[Change]], None] | None = None,
) -> PhoneSide:
    """The phone pipeline, its directory loaded from `db`.

    `follow`: keep the directory current: the change feed polls in the background, right after
    every write through `db` in this process, and (PostgreSQL) when another instance NOTIFYs;
    this process's own writes NOTIFY the others. Without it (`provisiond render`) the
    directory is loaded once. `activity`: where sightings and first-boot locks go (default: a
    started ActivityRecorder, written in batches). `also` is told of every batch of changes
    after the directory applied it (resync on change).
    """
    directory = MemoryDirectory(db, settings.platform)

    async def apply(changes: list[Change]) -> None:
        await directory.apply(changes)
        if also is not None:
            also(changes)

    feed = ChangeFeed(db, apply)
    await feed.mark()  # before loading: no change can fall in between
    await directory.load()
    if activity is None:
        recorder = ActivityRecorder(db)
        recorder.start()
        activity = recorder
    side = PhoneSide(
        resolver=_resolver(settings, secrets, activity, guard, directory, vendors),
        directory=directory,
        feed=feed,
        activity=activity,
        _db=db,
    )
    if follow:
        feed.start()

        async def follow_own_writes() -> None:
            await feed.poll()

        side._hooks.append(follow_own_writes)
        if not db.is_sqlite:
            side.listener = ChangeListener(db.url, feed.poll)
            side.listener.start()

            async def wake_others() -> None:
                await notify_changes(db)

            side._hooks.append(wake_others)
        db.after_write.extend(side._hooks)
    return side


def _resolver(
    settings: Settings,
    secrets: SecretBox,
    activity: ActivitySink,
    guard: EnumerationGuard | None,
    directory: MemoryDirectory,
    vendors: Sequence[VendorSpec] | None,
) -> Resolver:
    digest = DigestAuth(
        realm=settings.security.digest_realm,
        secret=secrets.derive(b"digest-nonce"),
        algorithms=settings.security.digest_algorithms,
    )
    gate = Gate(guard or build_guard(settings), digest, secrets, settings.security.model_check)
    return Resolver(
        gate=gate,
        secrets=secrets,
        vendors=tuple(load_vendors(settings.templates_dir) if vendors is None else vendors),
        renderer=Renderer(settings.templates_dir),
        directory=directory,
        activity=activity,
        uploads=UploadStore(
            settings.data_dir / "uploads",
            max_bytes=settings.max_upload_bytes,
            quota=settings.phone_limits.upload_quota_bytes,
        ),
        # Verified here, once: every listed image is hashed before the first request.
        firmware=FirmwareStore.open(settings.firmware_dir),
        endpoints=endpoints(settings),
    )
