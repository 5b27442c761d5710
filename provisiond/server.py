"""`provisiond serve`: the listeners of one or more processes.

The first process runs everything: the admin API, the phone HTTP(S) listeners, TFTP, and the
migrations and keyring checks before them. With `--workers N`, N-1 more processes each run a
phone HTTP(S) listener on the same port (SO_REUSEPORT: the kernel spreads connections), with
their own in-memory directory kept current by the change feed; TFTP and the admin API stay in
the first process (TFTP's per-transfer sockets and the admin's token throttle want one home).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import socket
import ssl
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from provisiond import sdnotify
from provisiond.app import (
    PhoneSide,
    build_guard,
    build_phone_side,
    build_services,
    endpoints,
    open_secrets,
    prepare_database,
    tls_context,
)
from provisiond.domain.identify import VendorSpec
from provisiond.frontends.admin_api import create_admin_app
from provisiond.frontends.admin_http import error_response
from provisiond.frontends.http_common import (
    SourceCounter,
    body_deadline,
    start_guarded_listener,
)
from provisiond.frontends.metrics import Sources, add_metrics_routes
from provisiond.frontends.phone_http import (
    HttpLimits,
    PhoneListener,
    start_phone_listener,
)
from provisiond.frontends.phone_tftp import TftpConfig, TftpServer
from provisiond.provisioning.auto_resync import AutoResync
from provisiond.provisioning.vendors import load_vendors
from provisiond.services import Services
from provisiond.services.commands import TokenCreate
from provisiond.settings import Settings, parse_listen
from provisiond.storage.database import Database
from provisiond.storage.secrets import SecretBox

log = logging.getLogger("provisiond")


@dataclass
class Server:
    """The listeners of one provisiond process."""

    settings: Settings
    db: Database
    secrets: SecretBox
    services: Services | None = None  # the first process only: the admin API
    vendors: tuple[VendorSpec, ...] | None = None  # shared with the services when given
    reuse_port: bool = False
    runners: list[web.AppRunner] = field(default_factory=list)
    phone_listeners: list[PhoneListener] = field(default_factory=list)
    tftp: TftpServer | None = None
    phone: PhoneSide | None = None
    metrics: Sources | None = None
    auto_resync: AutoResync | None = None
    phone_connections: SourceCounter | None = None  # open phone connections per source
    admin_connections: SourceCounter | None = None  # open admin connections per source

    async def _serve_admin(self, app: web.Application) -> None:
        """The admin listener behind the phone listeners' guard (settings.admin_limits):
        per-source cap, head, idle and body timeouts."""
        limits = self.settings.admin_limits
        # Innermost, after authentication: the body of a refused request is never waited for.
        app.middlewares.append(body_deadline(limits.body_timeout_s, _admin_refusal))
        self.admin_connections = SourceCounter(limits.max_connections_per_source, "admin HTTP")
        host, port = parse_listen(self.settings.admin_http)
        runner, _ = await start_guarded_listener(
            app,
            host,
            port,
            counter=self.admin_connections,
            header_timeout=limits.header_timeout_s,
            idle_timeout=limits.idle_timeout_s,
            body_timeout=limits.body_timeout_s,
            name="admin HTTP",
            reuse_port=self.reuse_port,
        )
        self.runners.append(runner)

    async def start(self) -> None:
        """Start this process's listeners."""
        settings = self.settings
        guard = build_guard(settings)
        self.metrics = Sources(self.db, guard=guard)
        if self.services is not None:
            admin = create_admin_app(
                self.services,
                max_body_bytes=settings.max_body_bytes,
                cors_origins=settings.cors_origins,
                guard=guard,
            )
            add_metrics_routes(admin, self.metrics)
            await self._serve_admin(admin)
        if self.services is not None and settings.resync.on_change:
            self.auto_resync = AutoResync(self.services.resync)
        also = self.auto_resync.notice if self.auto_resync is not None else None
        # An admin change made here reaches this process's phone side before the API answers;
        # on PostgreSQL a NOTIFY wakes every other process and instance at once; the 0.5 s
        # poll of the audit log stays as the safety net (and is all SQLite needs).
        self.phone = await build_phone_side(
            settings, self.db, self.secrets, guard=guard, vendors=self.vendors, also=also
        )
        self.metrics.phone = self.phone.resolver.stats
        self.metrics.directory = self.phone.directory
        # Phone listeners: per-source connection cap shared by HTTP and HTTPS of this process,
        # head/idle/body timeouts and the accepted Host names (settings.phone_limits).
        limits = phone_http_limits(settings)
        self.phone_connections = SourceCounter(
            limits.max_connections_per_source, total_cap=phone_connection_cap(settings)
        )
        for listen, tls in self._phone_listeners():
            host, port = parse_listen(listen)
            listener = await start_phone_listener(
                self.phone.resolver,
                host,
                port,
                counter=self.phone_connections,
                limits=limits,
                prefix=settings.phone_http_prefix,
                tls=tls,
                reuse_port=self.reuse_port,
            )
            self.phone_listeners.append(listener)
        if self.services is not None:
            host, port = parse_listen(settings.tftp)
            self.tftp = TftpServer(self.phone.resolver, tftp_config(settings, host, port))
            await self.tftp.start()
            self.metrics.tftp = self.tftp

    def _phone_listeners(self) -> list[tuple[str, ssl.SSLContext | None]]:
        listeners: list[tuple[str, ssl.SSLContext | None]] = [(self.settings.phone_http, None)]
        if self.settings.tls.listen:
            listeners.append((self.settings.tls.listen, tls_context(self.settings)))
        return listeners

    async def stop(self) -> None:
        """Stop every listener, then write pending phone activity."""
        if self.tftp is not None:
            await self.tftp.stop()
        for listener in self.phone_listeners:
            await listener.close()
        self.phone_listeners.clear()
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()
        if self.phone is not None:
            await self.phone.stop()
        if self.auto_resync is not None:
            await self.auto_resync.drain()


def _admin_refusal(status: int, detail: str) -> web.Response:
    """The admin API's JSON error for a request body that came too slowly or malformed."""
    return error_response(status, "timeout" if status == 408 else "bad_request", detail, "body")


FIRST_TOKEN_FILE = "first-admin-token"  # noqa: S105 (a file name, not a secret)


def allowed_hosts(settings: Settings) -> frozenset[str] | None:
    """The Host names the phone listeners answer (besides IP literals, always accepted):
    `phone_limits.allowed_hosts`, the public URL's host, the listen hosts, this machine's
    name and localhost. None when "*" is listed (any Host)."""
    names = {name.strip().lower().rstrip(".") for name in settings.phone_limits.allowed_hosts}
    if "*" in names:
        return None
    if settings.public_url:
        names.add(endpoints(settings).tftp_host.lower())  # the URL's host
    for listen in (settings.phone_http, settings.tls.listen):
        if listen:
            names.add(parse_listen(listen)[0].lower())
    hostname = socket.gethostname().lower()
    names.update({"localhost", hostname, hostname.split(".", 1)[0]})
    return frozenset(name for name in names if name)


def phone_http_limits(settings: Settings) -> HttpLimits:
    """The phone listeners' limits from settings.phone_limits."""
    limits = settings.phone_limits
    return HttpLimits(
        header_timeout=limits.header_timeout_s,
        idle_timeout=limits.idle_timeout_s,
        body_timeout=limits.body_timeout_s,
        max_connections_per_source=limits.max_connections_per_source,
        max_body=settings.max_upload_bytes,
        allowed_hosts=allowed_hosts(settings),
    )


def phone_connection_cap(settings: Settings) -> int:
    """How many phone HTTP(S) connections the process holds at most (settings.phone_limits):
    the configured number, else what the descriptor limit leaves after the reserve."""
    limits = settings.phone_limits
    if limits.max_connections:
        return limits.max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1_000_000
    return max(64, soft - limits.fd_reserve)


def tftp_config(settings: Settings, host: str, port: int) -> TftpConfig:
    """The TFTP frontend's configuration: the listen address and `settings.tftp_limits`."""
    limits = settings.tftp_limits
    return TftpConfig(
        host=host,
        port=port,
        max_transfers=limits.max_transfers,
        max_per_source=limits.max_per_source,
        fd_headroom=limits.fd_headroom,
        max_timeout=limits.max_timeout_s,
        first_packet_timeout=limits.first_packet_timeout_s,
        upload_idle_timeout=limits.upload_idle_timeout_s,
        upload_bytes_per_source=limits.upload_bytes_per_source,
        upload_bytes_total=limits.upload_bytes_total,
        unproven_grace=limits.unproven_grace_s,
    )


async def first_start_token(services: Services, settings: Settings) -> None:
    """On an empty database, create an admin token and write it to a private file.

    The token goes to ``<data_dir>/first-admin-token`` (mode 0600, in the data directory,
    which is made 0700); stdout says where, since under systemd stdout is the journal, which
    others may read and which keeps it. The token itself is printed only when stdout is an
    interactive terminal (`make run`), with a curl example.
    """
    _private_dir(settings.data_dir)
    if await services.tokens.count():
        return
    token = await services.tokens.create(TokenCreate(name="initial-admin"), "provisiond serve")
    path = settings.data_dir.resolve() / FIRST_TOKEN_FILE  # not the file: it may be a link
    _write_private(path, token + "\n")
    host, port = parse_listen(settings.admin_http)
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a wildcard, not a bind)
    url = f"http://{host}:{port}/api/v1/users"
    if sys.stdout.isatty():
        print(f"provisiond: created the first admin API token (shown once): {token}", flush=True)
        print(f"  (also in {path}, mode 0600: delete it once stored)", flush=True)
        print(f'  try: curl -H "Authorization: Bearer {token}" {url}', flush=True)
        return
    print(
        f"provisiond: created the first admin API token in {path} (mode 0600, readable by "
        "this user only); store it elsewhere, then delete the file",
        flush=True,
    )
    print(f'  try: curl -H "Authorization: Bearer $(cat {path})" {url}', flush=True)


def _private_dir(directory: Path) -> None:
    """The data directory: created 0700, an existing one narrowed to 0700 (if ours)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if directory.stat().st_mode & 0o077:
            directory.chmod(0o700)
    except OSError as exc:
        log.warning("cannot make the data directory %s private (0700): %s", directory, exc)


def _write_private(path: Path, text: str) -> None:
    """Write `text` to `path` atomically, mode 0600 from the start (whatever the umask)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _stop_event() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def _primary(settings: Settings, workers: int) -> None:
    db = await prepare_database(settings)
    secrets = await open_secrets(settings, db)
    vendors = load_vendors(settings.templates_dir)
    services = build_services(settings, db, secrets, vendors)
    server = Server(settings, db, secrets, services, vendors, reuse_port=workers > 1)
    stop = _stop_event()
    children: list[multiprocessing.process.BaseProcess] = []
    watchdog: asyncio.Task[None] | None = None
    try:
        await server.start()
        await first_start_token(services, settings)
        # Workers start after migrations and the keyring exist.
        context = multiprocessing.get_context("spawn")
        for number in range(1, workers):
            process = context.Process(target=worker_main, args=(settings,), name=f"worker-{number}")
            process.start()
            children.append(process)
        size = server.phone.directory.size if server.phone else 0
        print(
            f"provisiond: serving {size} devices to phones on http://{settings.phone_http}/ "
            f"and tftp://{settings.tftp}/ ({workers} process{'es' if workers > 1 else ''}), "
            f"admin API on http://{settings.admin_http}/api/v1/",
            file=sys.stderr,
            flush=True,
        )
        # systemd (Type=notify): sockets and database are up; keep the watchdog fed.
        sdnotify.notify(f"READY=1\nSTATUS=serving {size} devices")
        watchdog = asyncio.create_task(sdnotify.watchdog(stop))
        await stop.wait()
    finally:
        sdnotify.notify("STOPPING=1")
        if watchdog is not None:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
        for child in children:
            child.terminate()
        for child in children:
            await asyncio.to_thread(child.join, 10)
        await server.stop()
        await db.dispose()


async def _worker(settings: Settings) -> None:
    db = Database(settings.effective_database_url)
    server = Server(settings, db, SecretBox(settings.keyring_path), reuse_port=True)
    stop = _stop_event()
    try:
        await server.start()
        await stop.wait()
    finally:
        await server.stop()
        await db.dispose()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop when it is installed (a faster event loop), else on asyncio's own."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """INFO to stderr, as text or JSON lines (`log_format`)."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # no per-request log


def worker_main(settings: Settings) -> None:
    """Entry point of a `--workers` child process."""
    configure_logging(settings)
    run_loop(_worker(settings))


def serve(settings: Settings, workers: int = 1) -> None:
    """`provisiond serve [--workers N]`: run until SIGINT/SIGTERM."""
    configure_logging(settings)
    run_loop(_primary(settings, max(1, workers)))
