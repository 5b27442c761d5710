"""A database that cannot be reached gives a clear message, not a traceback (issue 13 faults).

`serve` and the admin commands name the database (without its password) and what to do; the
admin API's answer during an outage is tested with a real PostgreSQL restart in
test_faults_postgres.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve_process import cli_env, free_port, run_cli_result, serve_exits

SECRET = "s3cret-db-pass"  # a test value that must never be printed


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str]:
    """An environment whose PostgreSQL URL points at a loopback port nobody listens on."""
    url = f"postgresql+asyncpg://provisiond:{SECRET}@127.0.0.1:{free_port()}/provisiond"
    return cli_env(tmp_path / "var", {"PROVISIOND_DATABASE_URL": url})


def test_serve_refuses_with_the_database_named(nowhere: dict[str, str], tmp_path: Path) -> None:
    code, output = serve_exits(
        tmp_path / "var", {k: v for k, v in nowhere.items() if k.startswith("PROVISIOND_")}
    )
    assert code == 1, output
    assert "is unavailable" in output
    assert "start it, or fix database_url / PROVISIOND_DATABASE_URL" in output
    assert "Traceback" not in output
    assert SECRET not in output


def test_an_admin_command_refuses_the_same_way(nowhere: dict[str, str]) -> None:
    done = run_cli_result(nowhere, "user", "list", timeout=60)
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith(
        "provisiond: error: the database postgresql+asyncpg://provisiond:***@"
    )
    assert "Traceback" not in done.stderr
    assert SECRET not in done.stderr + done.stdout
