"""A private PostgreSQL server for tests that stop and start it (fault tests).

The shared test server (PROVISIOND_TEST_DATABASE_URL) must never be restarted: other tests use
it. `private_pg` runs `initdb` into a new directory under /tmp, starts the server with
`pg_ctl` on a free loopback port (no Unix socket outside that directory, fsync off: the data
is throw-away) and always stops it and removes the directory at the end of the module. As
root, the server runs as the `postgres` user (PostgreSQL refuses to run as root). Without an
`initdb` on the machine the tests that use it are skipped, saying so.

Use it in a test module with ``private_pg = pg_private.private_pg``.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.serve_process import free_port

PG_CTL_TIMEOUT_S = 30


def find_initdb() -> Path | None:
    """`initdb` on the PATH, else the newest Debian-packaged one; None when there is none."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve()
    packaged = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(packaged[-1]) if packaged else None


@dataclass
class PrivatePostgres:
    """One throw-away PostgreSQL server on 127.0.0.1:`port`, data in `root`/data."""

    bin_dir: Path
    root: Path
    port: int
    as_user: tuple[str, ...]  # the `runuser` prefix when we are root, else ()

    @property
    def data(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of `database` on this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        """The asyncpg DSN of `database` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            [*self.as_user, *argv],
            capture_output=True,
            text=True,
            timeout=PG_CTL_TIMEOUT_S + 10,
            check=False,
        )
        if done.returncode != 0:
            log = self.root / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {done.stdout}{done.stderr}\n{tail}")

    def initdb(self) -> None:
        """Create the cluster: trust authentication on loopback, superuser `postgres`."""
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "server.log"),
            "-w",
            "-t",
            str(PG_CTL_TIMEOUT_S),
            "start",
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`: sessions are disconnected, as in a restart)."""
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-m",
            mode,
            "-w",
            "-t",
            str(PG_CTL_TIMEOUT_S),
            "stop",
        )

    def running(self) -> bool:
        """Whether the server's postmaster is up."""
        done = subprocess.run(
            [*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=PG_CTL_TIMEOUT_S,
            check=False,
        )
        return done.returncode == 0

    def create_database(self, name: str) -> str:
        """Create an empty database; its SQLAlchemy URL."""

        async def create() -> None:
            conn = await asyncpg.connect(self.dsn())
            try:
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        asyncio.run(create())
        return self.url(name)

    def fetchval(self, database: str, query: str) -> object:
        """One value of `query` in `database`."""

        async def fetch() -> object:
            conn = await asyncpg.connect(self.dsn(database))
            try:
                return await conn.fetchval(query)
            finally:
                await conn.close()

        return asyncio.run(fetch())


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL server for the module, stopped and removed afterwards."""
    initdb = find_initdb()
    if initdb is None:
        pytest.skip("no initdb on this machine: install postgresql to run the restart tests")
    as_user: tuple[str, ...] = ()
    root = Path(tempfile.mkdtemp(prefix="provisiond-pg-"))
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_user = ("runuser", "-u", "postgres", "--")
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    server = PrivatePostgres(initdb.parent, root, free_port(), as_user)
    try:
        server.initdb()
        server.start()
        yield server
    finally:
        if server.running():
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
