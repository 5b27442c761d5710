"""The composition root: builds every component from the settings and runs the listeners.

Nothing else in the package constructs services, engines or servers; the CLI calls `run()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from dataclasses import dataclass, field

from aiohttp import web

from provisiond.domain.errors import DomainError
from provisiond.frontends.admin_api import create_admin_app
from provisiond.services import ServiceContext, Services
from provisiond.services.commands import TokenCreate
from provisiond.settings import Settings, parse_listen
from provisiond.storage import migrate
from provisiond.storage.database import Database

log = logging.getLogger("provisiond")


class NotMigrated(DomainError):
    """The database schema is older than this release."""

    code = "not_migrated"


async def prepare_database(settings: Settings) -> Database:
    """Open the database; migrate it on the embedded default, else require it migrated."""
    url = settings.effective_database_url
    if settings.is_embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        await migrate.upgrade(url)
    elif await migrate.current_revision(url) != migrate.head_revision():
        raise NotMigrated("the database schema is not current; run `provisiond db upgrade`")
    return Database(url)


def build_services(settings: Settings, db: Database) -> Services:
    """The service layer over `db`."""
    return Services(ServiceContext(db=db, settings=settings))


@dataclass
class Server:
    """Every listener of one provisiond process."""

    settings: Settings
    services: Services
    runners: list[web.AppRunner] = field(default_factory=list)

    async def _serve_http(self, app: web.Application, listen: str) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        host, port = parse_listen(listen)
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self.runners.append(runner)

    async def start(self) -> None:
        """Start the admin API."""
        admin = create_admin_app(self.services, max_body_bytes=self.settings.max_body_bytes)
        await self._serve_http(admin, self.settings.admin_http)
        log.info("admin API on http://%s/api/v1/", self.settings.admin_http)

    async def stop(self) -> None:
        """Stop every listener."""
        for runner in reversed(self.runners):
            await runner.cleanup()
        self.runners.clear()


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


async def run(settings: Settings) -> None:
    """`provisiond serve`: run until SIGINT/SIGTERM."""
    db = await prepare_database(settings)
    services = build_services(settings, db)
    server = Server(settings, services)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await server.start()
        await first_start_token(services, settings)
        print(f"provisiond: serving (admin API on {settings.admin_http})", file=sys.stderr)
        await stop.wait()
    finally:
        await server.stop()
        await db.dispose()
