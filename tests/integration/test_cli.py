"""The `provisiond` command line: the same rules as the API, messages and exit codes.

Runs `provisiond.cli.main` in-process against a fresh SQLite data directory (the embedded
default, migrated on first use, like a newcomer's machine), plus a few real subprocesses.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from provisiond.cli import TABLE, main
from provisiond.cli_table import commands
from tests.serve_process import REPO
from tests.unit.test_cli_table import minimal_argv


class Cli:
    """Run commands, keep stdout/stderr, parse JSON answers."""

    def __init__(self, capsys: pytest.CaptureFixture[str], data_dir: Path) -> None:
        self.capsys = capsys
        self.data_dir = data_dir

    def run(self, *argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = self.capsys.readouterr()
        return code, out, err

    def ok(self, *argv: str) -> Any:
        code, out, err = self.run(*argv)
        assert code == 0, err
        return json.loads(out) if out.strip().startswith(("{", "[")) else out.strip()

    def fails(self, *argv: str) -> str:
        """A refused command: exit 1, a one-line message naming the problem, nothing changed."""
        before = self.dump()
        code, out, err = self.run(*argv)
        assert code == 1, (out, err)
        assert err.startswith("provisiond: error: "), err
        assert "Traceback" not in err
        assert self.dump() == before
        return err

    def dump(self) -> dict[str, list[tuple[object, ...]]]:
        """Every table's rows but the audit log (which only successful commands write)."""
        with sqlite3.connect(self.data_dir / "provisiond.db") as conn:
            tables = [
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            return {
                t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall()
                for t in tables
                if t != "audit_log"
            }


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Cli:
    for name in list(os.environ):
        if name.startswith("PROVISIOND_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROVISIOND_DATA_DIR", str(tmp_path / "var"))
    return Cli(capsys, tmp_path / "var")


def test_product_page_flow(cli: Cli) -> None:
    cli.ok("licence", "set", "APP_USERS=1", "USER_CLIENT=2")
    user = cli.ok(
        "user",
        "create",
        "--username",
        "mrossi",
        "--display-name",
        "Mario Rossi",
        "--main-extension",
        "200",
        "--set",
        "team_app.enabled=true",
    )
    assert user["team_app"]["enabled"] is True
    d1 = cli.ok(
        "device",
        "create",
        "--extension",
        "200",
        "--model",
        "yealink-t46s",
        "--mac",
        "001565AABBCC",
        "--user",
        str(user["id"]),
    )
    assert d1["mac"] == "00:15:65:aa:bb:cc"
    d2 = cli.ok(
        "device", "create", "--extension", "202", "--model", "snom-d785", "--mac", "0004.1392.2d24"
    )
    found = cli.ok("device", "list", "--prefix", "20")
    assert [d["extension"] for d in found["items"]] == ["200", "202"]
    after = cli.ok("assign", str(user["id"]), str(d2["id"]))
    assert after["primary_device_id"] == d1["id"]  # the first device stays primary
    changed = cli.ok("primary", str(user["id"]), str(d2["id"]))
    assert changed["main_extension_changed"] == {"old": "200", "new": "202"}
    err = cli.fails("unassign", str(user["id"]), str(d2["id"]))
    assert "new_primary" in err
    cli.ok("unassign", str(user["id"]), str(d2["id"]), "--new-primary", str(d1["id"]))
    assert cli.ok("user", "show", str(user["id"]))["main_extension"] == "200"
    directory = cli.ok("directory", "200")
    assert directory["presented_cli"] == "200"


def test_rules_refused_on_the_command_line(cli: Cli) -> None:
    cli.ok("licence", "set", "APP_USERS=1")
    a = cli.ok(
        "user",
        "create",
        "--username",
        "a",
        "--display-name",
        "A",
        "--main-extension",
        "200",
        "--set",
        "team_app.enabled=true",
    )
    b = cli.ok(
        "user", "create", "--username", "b", "--display-name", "B", "--main-extension", "300"
    )
    dev = cli.ok(
        "device",
        "create",
        "--extension",
        "201",
        "--model",
        "yealink-t46s",
        "--mac",
        "00:15:65:00:00:01",
        "--user",
        str(a["id"]),
    )
    assert "APP_USERS" in cli.fails(
        "user", "update", str(b["id"]), "--set", "team_app.enabled=true"
    )
    assert "MCS" in cli.fails(
        "user", "update", str(a["id"]), "--set", "team_app.smart_working=true"
    )
    assert "GSM number" in cli.fails(
        "user", "update", str(a["id"]), "--set", "team_app.gsm_mode=true"
    )
    assert "web phone" in cli.fails(
        "user",
        "update",
        str(b["id"]),
        "--set",
        "client.enabled=true",
        "--set",
        "client.video_calls=true",
    )
    assert "move=true" in cli.fails("assign", str(b["id"]), str(dev["id"]))
    assert "main extension" in cli.fails("user", "update", str(b["id"]), "--main-extension", "200")
    assert "is not a MAC address" in cli.fails(
        "device", "create", "--extension", "9", "--model", "yealink-t46s", "--mac", "0:15:65:a:b:c"
    )
    assert "00:15:65:aa:bb:cc" in cli.fails(
        "device", "create", "--extension", "9", "--model", "yealink-t46s", "--mac", "not-a-mac"
    )
    assert "already" in cli.fails(
        "device",
        "create",
        "--extension",
        "201",
        "--model",
        "yealink-t46s",
        "--mac",
        "00:15:65:00:00:02",
    )
    assert "unknown model" in cli.fails(
        "device", "create", "--extension", "9", "--model", "acme-1", "--mac", "00:15:65:00:00:03"
    )
    assert "does not exist" in cli.fails("user", "show", "999")
    assert "below" in cli.fails("licence", "set", "APP_USERS=0")


def test_tokens_and_render(cli: Cli) -> None:
    code, out, _ = cli.run("token", "create", "ops")
    assert code == 0
    assert out.strip().startswith("pvd_")
    assert len(out.strip().splitlines()) == 1  # the token alone, for scripts
    assert "exists" in cli.fails("token", "create", "ops")
    cli.run("token", "create", "viewer", "--read-only")
    scopes = {t["name"]: t["scope"] for t in cli.ok("token", "list")}
    assert scopes == {"ops": "admin", "viewer": "read"}
    cli.ok(
        "device",
        "create",
        "--extension",
        "201",
        "--model",
        "yealink-t46s",
        "--mac",
        "00:15:65:aa:bb:cc",
        "--sip-password",
        "Render-Me-42",
    )
    code, out, _ = cli.run("render", "--mac", "00:15:65:aa:bb:cc", "--path", "001565aabbcc.cfg")
    assert code == 0
    assert "account.1.password = Render-Me-42" in out
    code, _, err = cli.run("render", "--mac", "00:15:65:aa:bb:cd", "--path", "001565aabbcd.cfg")
    assert code == 1
    assert "not_found" in err


def test_keys_and_secrets_at_rest(cli: Cli) -> None:
    cli.ok(
        "device",
        "create",
        "--extension",
        "201",
        "--model",
        "yealink-t46s",
        "--mac",
        "00:15:65:aa:bb:cc",
        "--sip-password",
        "Sealed-Secret-77",
    )
    status = cli.ok("keys", "status")
    assert status["plaintext"] == 0
    assert set(status["by_key"]) == {"k1"}
    rotated = cli.ok("keys", "rotate")
    assert rotated["new_key"] == "k2"
    assert rotated["retired"] == ["k1"]
    assert set(cli.ok("keys", "status")["by_key"]) == {"k2"}
    revealed = cli.ok("device", "reveal-password", "1")
    assert revealed["sip_password"] == "Sealed-Secret-77"
    raw = b"".join(p.read_bytes() for p in cli.data_dir.glob("provisiond.db*"))
    assert b"Sealed-Secret-77" not in raw
    assert "exists" in cli.fails("keys", "init")


def test_sites(cli: Cli) -> None:
    site = cli.ok(
        "site",
        "create",
        "--name",
        "hq",
        "--network",
        "10.1.0.0/16",
        "--network",
        "2001:db8::/48",
        "--policy",
        "digest",
        "--lock-on-first-boot",
    )
    assert site["networks"] == ["10.1.0.0/16", "2001:db8::/48"]
    assert "10.1.0.0/16" in cli.fails("site", "create", "--name", "x", "--network", "10.1.0.300/16")
    assert cli.ok("site", "update", str(site["id"]), "--policy", "open")["policy"] == "open"
    assert [s["name"] for s in cli.ok("site", "list")] == ["hq"]


def test_real_process_usage_errors(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PROVISIOND_DATA_DIR"] = str(tmp_path / "var")
    bad = subprocess.run(
        [sys.executable, "-m", "provisiond.cli", "assign", "x"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert "usage:" in bad.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "provisiond.cli", "user", "show", "7"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode == 1
    assert refused.stderr.strip() == "provisiond: error: user 7 does not exist (field: user_id)"


def test_every_table_command_runs_its_own_function(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each command with its required arguments only reaches its function, which reads only
    what the parser gave it: it answers (exit 0) or refuses cleanly (exit 1), never a traceback.
    """
    monkeypatch.chdir(tmp_path)  # FILE arguments are relative: keep them here
    (tmp_path / "firmware").mkdir()
    monkeypatch.setenv("PROVISIOND_FIRMWARE_DIR", str(tmp_path / "firmware"))
    ran: set[str] = set()
    for command in commands(TABLE):
        if command.name == "serve":
            continue
        code, out, err = cli.run(*minimal_argv(command))
        assert code in (0, 1), (command.name, out, err)
        assert code == 0 or err.splitlines()[-1].startswith("provisiond: error: "), err
        ran.add(command.name)
    assert {"render", "keys rotate", "firmware verify", "user list", "restore"} <= ran
