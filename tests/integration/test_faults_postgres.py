"""Faults: PostgreSQL restarted under a serving `provisiond serve` while phones boot.

A private PostgreSQL server (tests/pg_private.py; never the shared test server) is migrated
with `provisiond db upgrade`, and a real server process is started on it. While phones keep
asking for their files, PostgreSQL is stopped and started again. What the administrator must
see: phones served throughout (from the in-memory directory), admin API calls during the
outage refused with a JSON 5xx and no hang, the server still running afterwards, and the
change feed resuming by itself: changes made after the restart through this server's API and
through another process (the CLI) both reach the phone's file, none lost.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

from provisiond.storage.secrets import init_keyring
from tests import pg_private
from tests.pg_private import PrivatePostgres
from tests.serve_process import (
    ServeProcess,
    api_call,
    cli_env,
    first_admin_token,
    phone_get,
    run_cli,
    serve,
)

private_pg = pg_private.private_pg

MAC = "001565000f01"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:0f:01"
UNKNOWN = "001565ffff01"
UNKNOWN_UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:ff:ff:01"
OUTAGE_S = 2.0
CATCH_UP_S = 10.0  # the feed polls every 0.5 s; the pool reconnects on first use


class BootingPhones(threading.Thread):
    """Asks for the phone's file (and an unknown MAC's) over and over, counting the answers."""

    def __init__(self, server: ServeProcess) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.answers: Counter[tuple[str, int]] = Counter()
        self.failures: list[str] = []
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            for name, agent in ((f"{MAC}.cfg", UA), (f"{UNKNOWN}.cfg", UNKNOWN_UA)):
                try:
                    status, _ = phone_get(self.server, name, agent, timeout=5)
                    self.answers[name, status] += 1
                except OSError as exc:  # refused, reset, timed out: never acceptable
                    self.failures.append(f"{name}: {exc!r}")
            time.sleep(0.02)


def _served(server: ServeProcess, text: str, within: float) -> float:
    """Seconds until the phone's file contains `text` (fails after `within` seconds)."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        status, body = phone_get(server, f"{MAC}.cfg", UA)
        if status == 200 and text in body.decode():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"the phone file never showed {text!r}:\n{body.decode()}")


def test_postgres_restart_while_phones_boot(private_pg: PrivatePostgres, tmp_path: Path) -> None:
    url = private_pg.create_database("restart")
    data = tmp_path / "var"
    extra = {
        "PROVISIOND_DATABASE_URL": url,
        "PROVISIOND_KEYRING": str(data / "keys" / "secrets.json"),
        "PROVISIOND_SIP_REGISTRAR": "pbx.example.test",
        # The phones below ask for one unknown MAC over and over: not an enumeration.
        "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": "1000000",
        "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": "1000000",
    }
    env = cli_env(data, extra)
    run_cli(env, "db", "upgrade")
    init_keyring(data / "keys" / "secrets.json")  # what `provisiond keys init` does

    with serve(data, extra) as server:
        token = first_admin_token(server)
        status, device = api_call(
            server,
            token,
            "POST",
            "/devices",
            {"extension": "301", "model": "yealink-t46s", "mac": MAC, "label": "before"},
        )
        assert status == 201, device
        _served(server, "account.1.user_name = 301", CATCH_UP_S)
        phones = BootingPhones(server)
        phones.start()
        try:
            private_pg.stop()
            outage_start = sum(phones.answers.values())
            time.sleep(OUTAGE_S)
            started = time.monotonic()
            status, body = api_call(server, token, "GET", "/users")
            assert time.monotonic() - started < 10, "the admin API hung on the outage"
            assert status == 503, (status, body)
            assert body["error"] == "database_unavailable", body
            during = sum(phones.answers.values()) - outage_start
            private_pg.start()

            status, body = api_call(
                server, token, "PATCH", f"/devices/{device['id']}", {"extension": "302"}
            )
            assert status == 200, body
            _served(server, "account.1.user_name = 302", CATCH_UP_S)
            # Another process's change reaches this server only through the change feed.
            run_cli(env, "device", "update", str(device["id"]), "--extension", "303")
            _served(server, "account.1.user_name = 303", CATCH_UP_S)
        finally:
            phones.halt.set()
            phones.join(timeout=10)
        assert server.process.poll() is None

    assert not phones.failures, phones.failures[:5]
    assert during >= 10, f"only {during} phone requests during the outage"
    statuses = {status for (name, status) in phones.answers if name == f"{MAC}.cfg"}
    assert statuses == {200}, phones.answers
    unknown = {status for (name, status) in phones.answers if name != f"{MAC}.cfg"}
    assert unknown == {404}, phones.answers
    assert private_pg.fetchval("restart", "SELECT extension FROM devices") == "303"
