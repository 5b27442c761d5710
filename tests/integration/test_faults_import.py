"""Faults: `kill -9` of a `provisiond import` of 10,000 lines in the middle of its transaction.

The import runs as a real process on a migrated database (embedded SQLite, and a private
PostgreSQL server from tests/pg_private.py). The test watches the database itself for the
import's write transaction (SQLite: another writer is locked out; PostgreSQL: the import's
session holds a transaction id, i.e. has written rows) and kills the process with SIGKILL
while it is open. What the administrator must see: none of the import in the database (no
device, no user, no audit row: it was one transaction), a server that starts and serves on
that database, and the same file imported whole when run again (here through the API).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import pytest

from provisiond.storage.secrets import init_keyring
from tests import pg_private
from tests.pg_private import PrivatePostgres
from tests.serve_process import REPO, cli_env, first_admin_token, phone_get, run_cli, serve

private_pg = pg_private.private_pg

LINES = 10_000
FIRST_MAC = 0x001565100000
UA = "Yealink SIP-T46S 66.86.0.15"
WAIT_S = 60.0  # for the import to open its transaction (a loaded machine starts slowly)
TABLES = ("devices", "users", "audit_log")


def write_csv(path: Path) -> None:
    """10,000 new devices; every pair of lines one new user (the first line primary)."""
    lines = ["mac,model,extension,username,display_name,primary"]
    for i in range(LINES):
        user = i // 2
        primary = "1" if i % 2 == 0 else ""
        lines.append(
            f"{FIRST_MAC + i:012x},yealink-t46s,{500000 + i},u{user:05d},User {user},{primary}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _sqlite_writing(db: Path) -> Callable[[], bool]:
    """Whether a write transaction is open on the SQLite file (ours would be refused)."""

    def probe() -> bool:
        conn = sqlite3.connect(db, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        finally:
            conn.close()

    return probe


def _pg_query(server: PrivatePostgres, database: str, query: str) -> object:
    return server.fetchval(database, query)


def _pg_writing(server: PrivatePostgres, database: str) -> Callable[[], bool]:
    """Whether another session on `database` holds a transaction id (has written)."""
    query = (
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
    )
    return lambda: bool(_pg_query(server, database, query))


def _kill_inside_transaction(env: dict[str, str], csv: Path, writing: Callable[[], bool]) -> None:
    """Start `provisiond import CSV`, SIGKILL it while `writing()` says its transaction is open."""
    process = subprocess.Popen(
        [sys.executable, "-m", "provisiond.cli", "import", str(csv)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + WAIT_S
        while not writing():
            assert process.poll() is None, f"the import ended first: {process.communicate()[1]}"
            assert time.monotonic() < deadline, "the import never opened its transaction"
            time.sleep(0.01)
        time.sleep(0.2)  # well inside: rows are being written
        assert writing(), "the transaction closed before the kill"
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert process.returncode == -signal.SIGKILL


def _sqlite_counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def _pg_counts(server: PrivatePostgres, database: str) -> dict[str, int]:
    async def count() -> dict[str, int]:
        conn = await asyncpg.connect(server.dsn(database))
        try:
            # The killed client's backend rolls back once it notices; wait for it to be gone.
            deadline = time.monotonic() + 20
            while await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ):
                assert time.monotonic() < deadline, "the killed import's session lingers"
                await asyncio.sleep(0.05)
            return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}
        finally:
            await conn.close()

    return asyncio.run(count())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_killed_import_leaves_nothing(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "var"
    extra = {"PROVISIOND_SIP_REGISTRAR": "pbx.example.test"}
    if backend == "postgresql":
        pg: PrivatePostgres = request.getfixturevalue("private_pg")
        database = "import_kill"
        extra["PROVISIOND_DATABASE_URL"] = pg.create_database(database)
        extra["PROVISIOND_KEYRING"] = str(data / "keys" / "secrets.json")
        init_keyring(data / "keys" / "secrets.json")
    env = cli_env(data, extra)
    run_cli(env, "db", "upgrade")
    csv = tmp_path / "devices.csv"
    write_csv(csv)

    if backend == "sqlite":
        db = data / "provisiond.db"
        before = _sqlite_counts(db)
        _kill_inside_transaction(env, csv, _sqlite_writing(db))
        after = _sqlite_counts(db)
    else:
        before = _pg_counts(pg, database)
        _kill_inside_transaction(env, csv, _pg_writing(pg, database))
        after = _pg_counts(pg, database)
    assert after == before, f"a killed import left rows behind: {before} -> {after}"

    first = f"{FIRST_MAC:012x}"
    agent = f"{UA} {':'.join(first[i : i + 2] for i in range(0, 12, 2))}"
    with serve(data, extra) as server:
        assert phone_get(server, f"{first}.cfg", agent)[0] == 404
        token = first_admin_token(server)
        answer = _post_csv(server.api + "/import", token, csv.read_bytes())
        assert answer["lines"] == LINES, answer
        deadline = time.monotonic() + 10
        while (status := phone_get(server, f"{first}.cfg", agent)[0]) != 200:
            assert time.monotonic() < deadline, f"the imported phone still gets {status}"
            time.sleep(0.05)


def _post_csv(url: str, token: str, body: bytes) -> dict[str, object]:
    """POST a CSV import to the admin API; its JSON answer (fails on an error status)."""
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "text/csv")
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer
