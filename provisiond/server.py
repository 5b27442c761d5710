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
import signal
import ssl
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from provisiond import sdnotify
from provisiond.app import (
    build_guard,
    build_resolver,
    build_services,
    open_secrets,
    prepare_database,
    tls_context,
)
from provisiond.frontends.admin_api import create_admin_app
from provisiond.frontends.metrics import Sources, add_metrics_routes
from provisiond.frontends.phone_http import create_phone_app
from provisiond.frontends.phone_tftp import TftpConfig, TftpServer
from provisiond.provisioning.activity import ActivityRecorder
from provisiond.provisioning.auto_resync import AutoResync
from provisiond.provisioning.bans import EnumerationGuard
from provisiond.provisioning.changes import Change, ChangeFeed
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.provisioning.notify import ChangeListener, notify_changes
from provisiond.provisioning.resolver import Resolver
from provisiond.services import Services
from provisiond.services.commands import TokenCreate
from provisiond.settings import Settings, parse_listen
from provisiond.storage.database import Database
from provisiond.storage.secrets import SecretBox

log = logging.getLogger("provisiond")


@dataclass
class PhoneSide:
    """One process's phone pipeline: memory directory, change feed, activity, resolver."""

    directory: MemoryDirectory
    feed: ChangeFeed
    activity: ActivityRecorder
    resolver: Resolver
    listener: ChangeListener | None = None  # PostgreSQL: other instances' commits wake the feed

    @classmethod
    async def start(
        cls,
        settings: Settings,
        db: Database,
        secrets: SecretBox,
        guard: EnumerationGuard,
        also: Callable[[list[Change]], None] | None = None,
    ) -> PhoneSide:
        """Load the directory (marking the feed first, so no change falls in between).

        `also` is told of every batch of changes after the directory applied it.
        """
        directory = MemoryDirectory(db, settings.platform)

        async def apply(changes: list[Change]) -> None:
            await directory.apply(changes)
            if also is not None:
                also(changes)

        feed = ChangeFeed(db, apply)
        await feed.mark()
        await directory.load()
        feed.start()
        listener = None
        if not db.is_sqlite:
            listener = ChangeListener(db.url, feed.poll)
            listener.start()
        activity = ActivityRecorder(db)
        activity.start()
        resolver = build_resolver(settings, db, secrets, activity, guard, directory)
        return cls(directory, feed, activity, resolver, listener)

    async def stop(self) -> None:
        """Stop following changes and write pending phone activity."""
        if self.listener is not None:
            await self.listener.stop()
        await self.feed.stop()
        await self.activity.stop()


@dataclass
class Server:
    """The listeners of one provisiond process."""

    settings: Settings
    db: Database
    secrets: SecretBox
    services: Services | None = None  # the first process only: the admin API
    reuse_port: bool = False
    runners: list[web.AppRunner] = field(default_factory=list)
    tftp: TftpServer | None = None
    phone: PhoneSide | None = None
    metrics: Sources | None = None
    auto_resync: AutoResync | None = None

    async def _serve_http(
        self, app: web.Application, listen: str, tls: ssl.SSLContext | None = None
    ) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self.runners.append(runner)
        host, port = parse_listen(listen)
        site = web.TCPSite(
            runner, host, port, ssl_context=tls, reuse_address=True, reuse_port=self.reuse_port
        )
        await site.start()

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
            await self._serve_http(admin, settings.admin_http)
        if self.services is not None and settings.resync.on_change:
            self.auto_resync = AutoResync(self.services.resync)
        also = self.auto_resync.notice if self.auto_resync is not None else None
        self.phone = await PhoneSide.start(settings, self.db, self.secrets, guard, also)
        self.metrics.phone = self.phone.resolver.stats
        self.metrics.directory = self.phone.directory
        # An admin change made here reaches this process's phone side before the API answers;
        # on PostgreSQL a NOTIFY wakes every other process and instance at once; the 0.5 s
        # poll of the audit log stays as the safety net (and is all SQLite needs).
        if not self.db.is_sqlite:
            self.db.after_write.append(self._notify_others)
        self.db.after_write.append(self._follow)
        for listen, tls in self._phone_listeners():
            app = create_phone_app(
                self.phone.resolver,
                prefix=settings.phone_http_prefix,
                max_body=settings.max_upload_bytes,
            )
            await self._serve_http(app, listen, tls)
        if self.services is not None:
            host, port = parse_listen(settings.tftp)
            self.tftp = TftpServer(self.phone.resolver, TftpConfig(host=host, port=port))
            await self.tftp.start()
            self.metrics.tftp = self.tftp

    async def _notify_others(self) -> None:
        await notify_changes(self.db)

    async def _follow(self) -> None:
        if self.phone is not None:
            await self.phone.feed.poll()

    def _phone_listeners(self) -> list[tuple[str, ssl.SSLContext | None]]:
        listeners: list[tuple[str, ssl.SSLContext | None]] = [(self.settings.phone_http, None)]
        if self.settings.tls.listen:
            listeners.append((self.settings.tls.listen, tls_context(self.settings)))
        return listeners

    async def stop(self) -> None:
        """Stop every listener, then write pending phone activity."""
        if self.tftp is not None:
            await self.tftp.stop()
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()
        if self.phone is not None:
            await self.phone.stop()
        if self.auto_resync is not None:
            await self.auto_resync.drain()


async def first_start_token(services: Services, settings: Settings) -> None:
    """On an empty database, create an admin token and print it once with a curl example."""
    if await services.tokens.count():
        return
    token = await services.tokens.create(TokenCreate(name="initial-admin"), "provisiond serve")
    host, port = parse_listen(settings.admin_http)
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a wildcard, not a bind)
    print(f"provisiond: created the first admin API token (shown once): {token}", flush=True)
    print(
        f'  try: curl -H "Authorization: Bearer {token}" http://{host}:{port}/api/v1/users',
        flush=True,
    )


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
    services = build_services(settings, db, secrets)
    server = Server(settings, db, secrets, services, reuse_port=workers > 1)
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
