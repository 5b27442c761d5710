"""Scale-out: two real `provisiond serve` instances on one PostgreSQL database.

A change made through either instance's admin API reaches the other instance's phone side
within one second, and an instance whose PostgreSQL connections were all killed catches up by
itself. Runs only with PROVISIOND_TEST_DATABASE_URL (a PostgreSQL server to create a database
in); the measured latencies are printed (pytest -s) for the record.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from tests.databases import PG_URL, pg_database, pg_dsn
from tests.serve_process import ServeProcess, run_cli, serve

MAC = "001565000a01"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:0a:01"
BOUND_S = 1.0  # the promise: within one second
RECOVERY_BOUND_S = 5.0  # after losing every connection: "within a few seconds"


@pytest.fixture
def empty_database() -> Iterator[str]:
    """A new, empty PostgreSQL database (the test migrates it with `provisiond db upgrade`)."""
    if not PG_URL:
        pytest.skip("the scale-out test needs PROVISIOND_TEST_DATABASE_URL (.ci/run sets it)")
    with pg_database("provisiond_s") as url:
        yield url


def _api(server: ServeProcess, token: str) -> Callable[..., Any]:
    def call(method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{server.api}{path}", data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=20) as response:
            return json.loads(response.read() or b"null")

    return call


def _phone_file(server: ServeProcess) -> str | None:
    """What a phone gets for its file from `server`, or None while it is not served."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.phone_port}/{MAC}.cfg", headers={"User-Agent": UA}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        if exc.code != 404:  # not yet known is 404; anything else is a failure
            raise
        return None


def _latency(server: ServeProcess, extension: str, since: float, bound: float) -> float:
    """Seconds from `since` until `server` serves the file with `extension` (bounded wait)."""
    wanted = f"account.1.user_name = {extension}\n"
    deadline = since + bound + 5.0  # wait longer than the bound, to report how late it was
    while time.monotonic() < deadline:
        body = _phone_file(server)
        if body is not None and wanted in body:
            return time.monotonic() - since
        time.sleep(0.005)
    raise AssertionError(f"{server.phone_port} never served extension {extension}")


def _client_ports(pid: int) -> set[int]:
    """Local TCP ports of the sockets process `pid` holds (Linux /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text(encoding="ascii").splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _kill_connections(url: str, server: ServeProcess) -> int:
    """pg_terminate_backend for every connection `server` has to its database; how many."""
    ports = sorted(_client_ports(server.process.pid))

    async def kill() -> int:
        conn = await asyncpg.connect(pg_dsn(url))
        try:
            killed = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND client_port = ANY($1::int[])",
                ports,
            )
        finally:
            await conn.close()
        return sum(1 for row in killed if row[0])

    return asyncio.run(kill())


def _prepare(url: str, tmp_path: Path) -> tuple[dict[str, str], str]:
    """Migrate, create the shared keyring and an admin token; the instances' environment."""
    env = {
        **os.environ,
        "PROVISIOND_DATA_DIR": str(tmp_path / "a"),
        "PROVISIOND_DATABASE_URL": url,
        "PROVISIOND_KEYRING": str(tmp_path / "a" / "keys" / "secrets.json"),
        # The test polls one MAC that is unknown at first, fast: not an enumeration.
        "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": "1000000",
        "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": "1000000",
    }
    run_cli(env, "db", "upgrade")
    run_cli(env, "keys", "init")
    token = run_cli(env, "token", "create", "scale-out-test")
    shared = {k: env[k] for k in env if k.startswith("PROVISIOND_") and k != "PROVISIOND_DATA_DIR"}
    return shared, token


def _phone_ready(server: ServeProcess, timeout: float = 30.0) -> None:
    """Wait until the phone listener answers: the admin API, which serve() waits for, is up
    first, and the phone side follows once its directory is loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _phone_file(server)
            return
        except urllib.error.URLError:
            time.sleep(0.05)
    raise AssertionError(f"the phone listener of {server.phone_port} never answered")


def test_two_instances_follow_each_other(empty_database: str, tmp_path: Path) -> None:
    env, token = _prepare(empty_database, tmp_path)
    with serve(tmp_path / "a", env) as a, serve(tmp_path / "b", env) as b:
        api_a, api_b = _api(a, token), _api(b, token)
        _phone_ready(a)
        _phone_ready(b)
        assert _phone_file(b) is None
        # Each latency counts from before the API request (conservative: includes its handling).
        start = time.monotonic()
        device = api_a(
            "POST", "/devices", {"extension": "301", "model": "yealink-t46s", "mac": MAC}
        )
        created = _latency(b, "301", start, BOUND_S)
        start = time.monotonic()
        api_b("PATCH", f"/devices/{device['id']}", {"extension": "302"})
        changed = _latency(a, "302", start, BOUND_S)

        killed = _kill_connections(empty_database, b)
        assert killed >= 1, "instance B held no connection to kill"
        start = time.monotonic()
        api_a("PATCH", f"/devices/{device['id']}", {"extension": "303"})
        recovered = _latency(b, "303", start, RECOVERY_BOUND_S)
        assert _phone_file(a) is not None
        log_b = b.log_path.read_text(encoding="utf-8")
    print(
        f"\nscale-out latencies: A->B create {created * 1000:.0f} ms, "
        f"B->A change {changed * 1000:.0f} ms, "
        f"A->B after killing B's {killed} connection(s) {recovered * 1000:.0f} ms"
    )
    assert created < BOUND_S, f"A->B took {created:.3f} s"
    assert changed < BOUND_S, f"B->A took {changed:.3f} s"
    assert recovered < RECOVERY_BOUND_S, f"B caught up after {recovered:.3f} s\n{log_b}"
