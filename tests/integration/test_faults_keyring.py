"""Faults: the SIP-secret keyring missing, unreadable, damaged or holding the wrong key.

One installation (embedded SQLite, a device with a known SIP password) is made for the module;
each test copies it, breaks its keyring one way and starts the real `provisiond serve`. What
the administrator must see: the server refuses to start (exit 1, no listener ever answers, so
nothing is served with secrets it cannot decrypt) and says which keyring and what to do,
without a traceback; and with the right keyring put back it serves the phone its password.
"Unreadable" as root is a directory in the file's place (root reads any mode).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from provisiond.storage.secrets import init_keyring
from tests.serve_process import cli_env, phone_get, run_cli, serve, serve_exits

MAC = "001565000e01"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:0e:01"
PASSWORD = "Kr7-faults-Pw9q"
ENV = {"PROVISIOND_SIP_REGISTRAR": "pbx.example.test"}
HINT = "restore the keyring file from your copy"


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir whose database holds one device's encrypted SIP password (never started)."""
    data = tmp_path_factory.mktemp("installation") / "var"
    env = cli_env(data, ENV)
    run_cli(
        env,
        "device",
        "create",
        "--extension",
        "301",
        "--model",
        "yealink-t46s",
        "--mac",
        MAC,
        "--sip-password",
        PASSWORD,
    )
    assert PASSWORD.encode() not in (data / "provisiond.db").read_bytes()
    return data


def _missing(keyring: Path) -> None:
    keyring.unlink()


def _directory(keyring: Path) -> None:
    keyring.unlink()
    keyring.mkdir()


def _garbage(keyring: Path) -> None:
    keyring.write_bytes(b"\x8f\x00 not a keyring \xff" * 20)


def _truncated(keyring: Path) -> None:
    keyring.write_bytes(keyring.read_bytes()[:40])


def _wrong_key(keyring: Path) -> None:
    """Another installation's keyring: a different key under the same id (k1)."""
    keyring.unlink()
    init_keyring(keyring)


BREAKAGES: dict[str, tuple[Callable[[Path], None], str]] = {
    "missing": (_missing, "is missing (keys used in the database: k1)"),
    "directory": (_directory, "(Is a directory)"),
    "garbage": (_garbage, "is damaged (keyring file is not JSON)"),
    "truncated": (_truncated, "is damaged (keyring file is not JSON)"),
    "wrong-key": (_wrong_key, "does not decrypt the stored secrets"),
}


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_bad_keyring_stops_the_start(installation: Path, tmp_path: Path, breakage: str) -> None:
    data = tmp_path / "var"
    shutil.copytree(installation, data)
    keyring = data / "keys" / "secrets.json"
    damage, problem = BREAKAGES[breakage]
    damage(keyring)
    before = keyring.read_bytes() if keyring.is_file() else None

    code, output = serve_exits(data, ENV)

    assert code == 1, output
    assert "Traceback" not in output, output
    assert f"provisiond: error: keyring {keyring}" in output, output
    assert problem in output, output
    assert HINT in output, output
    # Nothing was "repaired" behind the administrator's back: no new key, no rewrite.
    assert (keyring.read_bytes() if keyring.is_file() else None) == before
    if breakage == "missing":
        assert not keyring.exists()


def test_the_right_keyring_put_back_serves(installation: Path, tmp_path: Path) -> None:
    data = tmp_path / "var"
    shutil.copytree(installation, data)
    keyring = data / "keys" / "secrets.json"
    copy = tmp_path / "keyring-copy.json"  # the administrator's copy, kept apart
    shutil.copy(keyring, copy)
    _directory(keyring)
    assert serve_exits(data, ENV)[0] == 1

    keyring.rmdir()
    shutil.copy(copy, keyring)  # what the message says to do
    with serve(data, ENV) as server:
        status, body = phone_get(server, f"{MAC}.cfg", UA)
    assert status == 200, body
    assert f"account.1.password = {PASSWORD}\n".encode() in body
