"""Faults: a full disk under a phone upload and under a backup, on real processes.

A small tmpfs mounted by the test is the data directory (uploads) or the backup target; the
test fills it to the last byte, then asks for the write. What the administrator must see: a
clear error (the phone gets a 5xx, the log says the disk is full; `provisiond backup` prints
`provisiond: error: ... the disk is full ...` and exits 1), no file left behind that looks
complete (no temporary file, the previous upload intact, no backup file), phones still served
meanwhile, and everything working again once space is freed, without a restart.
Mounting needs root; elsewhere these tests are skipped with that reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import tftpy

from provisiond.storage.backup_file import verify
from tests.serve_process import (
    ServeProcess,
    api_call,
    cli_env,
    phone_get,
    run_cli,
    run_cli_result,
    serve,
)

MAC = "001565000d01"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:00:0d:01"
ENV = {
    "PROVISIOND_BAN_UNKNOWN_PER_SOURCE": "1000000",
    "PROVISIOND_BAN_UNKNOWN_PER_PREFIX": "1000000",
    "PROVISIOND_SIP_REGISTRAR": "pbx.example.test",
}

Mount = Callable[[str], Path]


@pytest.fixture
def tmpfs() -> Iterator[Mount]:
    """`mount(size)`: a new tmpfs of `size` (e.g. "16m"); every one is unmounted at the end."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (the disk-full tests run in CI as root)")
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = Path(tempfile.mkdtemp(prefix="provisiond-full-"))
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)],
            check=True,
            timeout=10,
        )
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        done = subprocess.run(["umount", str(point)], check=False, timeout=10)
        if done.returncode != 0:  # still busy (a process that outlived its test): detach it
            subprocess.run(["umount", "-l", str(point)], check=False, timeout=10)
        point.rmdir()


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system of `directory` to the last byte, then give back `leave` bytes."""
    filler = directory / "filler"
    chunk = b"\0" * (64 << 10)
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        failure: OSError | None = None
        while failure is None:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                failure = exc
        assert failure.errno == errno.ENOSPC, failure
        if leave:
            os.ftruncate(fd, max(0, os.fstat(fd).st_size - leave))
    finally:
        os.close(fd)
    return filler


def _token(env: dict[str, str]) -> str:
    return run_cli(env, "token", "create", "faults")


def _device(server: ServeProcess, token: str) -> None:
    status, body = api_call(
        server, token, "POST", "/devices", {"extension": "301", "model": "yealink-t46s", "mac": MAC}
    )
    assert status == 201, body


def _config_served(server: ServeProcess) -> None:
    status, body = phone_get(server, f"{MAC}.cfg", UA)
    assert status == 200, body
    assert b"account.1.user_name = 301" in body


def test_upload_on_a_full_disk(tmpfs: Mount) -> None:
    data = tmpfs("32m")  # the whole data directory: SQLite file, keyring, uploads
    env = cli_env(data, ENV)
    token = _token(env)
    with serve(data, ENV) as server:
        _device(server, token)
        _config_served(server)
        upload = f"{MAC}-local.cfg"
        first = b"# local settings v1\n" * 50
        assert phone_get(server, upload, UA, method="PUT", body=first)[0] == 201

        filler = fill(data)
        status, _ = phone_get(server, upload, UA, method="PUT", body=b"x" * (100 << 10))
        assert status == 507, f"a full disk answered {status}"
        source = data.parent / f"{data.name}-tftp-upload"  # outside the full tmpfs
        source.write_bytes(b"y" * (100 << 10))
        try:  # the same write over TFTP: error 3, "Disk full or allocation exceeded"
            with pytest.raises(tftpy.TftpException, match="errorcode = 3"):
                tftpy.TftpClient("127.0.0.1", server.tftp_port).upload(upload, str(source))
        finally:
            source.unlink()
        folder = data / "uploads" / MAC
        assert sorted(p.name for p in folder.iterdir()) == [upload], "a partial file remains"
        assert phone_get(server, upload, UA) == (200, first), "the stored upload changed"
        _config_served(server)  # phones keep booting from memory
        assert phone_get(server, "001565ffffff.cfg", UA)[0] == 404
        assert server.process.poll() is None
        log = server.log_path.read_text(encoding="utf-8")
        assert f"upload not stored in {folder}: the disk is full" in log
        assert "Traceback" not in log

        filler.unlink()  # what the administrator does: free space; no restart needed
        second = b"# local settings v2\n" * 50
        assert phone_get(server, upload, UA, method="PUT", body=second)[0] == 201
        assert phone_get(server, upload, UA) == (200, second)


def test_backup_to_a_full_disk(tmp_path: Path, tmpfs: Mount) -> None:
    data = tmp_path / "var"
    env = cli_env(data, ENV)
    token = _token(env)
    target = tmpfs("1m")
    with serve(data, ENV) as server:
        _device(server, token)
        rows = "\n".join(f"00156501{i:04x},yealink-t46s,{4000 + i},,," for i in range(300))
        imported = run_cli_result(
            env, "import", "-", stdin="mac,model,extension,username,display_name,primary\n" + rows
        )
        assert imported.returncode == 0, imported.stderr
        filler = fill(target, leave=8 << 10)  # room for the start of the file, not for all

        backup = target / "provisiond-backup.jsonl.gz"
        done = run_cli_result(env, "backup", str(backup))
        assert done.returncode == 1, done.stdout
        assert "Traceback" not in done.stderr
        assert done.stderr.startswith(f"provisiond: error: cannot write {backup}: the disk is full")
        assert "no backup was written" in done.stderr
        assert sorted(p.name for p in target.iterdir()) == ["filler"]  # no temp, no half file
        _config_served(server)

        filler.unlink()
        done = run_cli_result(env, "backup", str(backup))
        assert done.returncode == 0, done.stderr
        assert verify(backup).rows["devices"] == 301
        _config_served(server)
