"""The TFTP frontend against real clients: tftpy, tftp-hpa (/usr/bin/tftp) and atftp.

The server runs on 127.0.0.1 (and ::1) with an ephemeral port, on its own loop in a thread
(tests/tftp_helpers.py), serving a dict of files through a small handler. Debian tools that
are missing make the test fail with the package to install; nothing is skipped.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import tftpy

from provisiond.domain.phone import Outcome
from provisiond.frontends.phone_tftp import TftpConfig
from tests.tftp_helpers import (
    FilesHandler,
    RawClient,
    ServerThread,
    require_tool,
    running_server,
    wait_until,
)

TEXT = b"line one\nline two\r\nbare\rcr\n\n"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, bytes | Path | Outcome]:
    """Bodies of various sizes, a firmware file on disk, and a refused path."""
    firmware = tmp_path / "fw.bin"
    firmware.write_bytes(os.urandom(300_000))
    return {
        "small.cfg": b"account.1.user = 201\n",
        "multi.cfg": os.urandom(5000),
        "exact.cfg": os.urandom(2048),  # a multiple of 512 and 1024: ends with an empty block
        "empty.cfg": b"",
        "text.cfg": TEXT,
        "fw.bin": firmware,
        "secret.cfg": Outcome.FORBIDDEN,
    }


@pytest.fixture
def handler(files: dict[str, bytes | Path | Outcome]) -> FilesHandler:
    """The in-test handler with a 4 KiB upload cap."""
    return FilesHandler(files, upload_cap=4096)


@pytest.fixture
def server(handler: FilesHandler) -> Iterator[ServerThread]:
    """A running server on 127.0.0.1."""
    with running_server(handler) as thread:
        yield thread


def content(files: dict[str, bytes | Path | Outcome], name: str) -> bytes:
    """The bytes a download of `name` must produce."""
    value = files[name]
    return value.read_bytes() if isinstance(value, Path) else value  # type: ignore[return-value]


def run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run a client with a bound on time."""
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# -- tftpy ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["small.cfg", "multi.cfg", "exact.cfg", "empty.cfg", "fw.bin"])
@pytest.mark.parametrize(
    "options", [{}, {"blksize": 1468}, {"blksize": 1024, "tsize": 0}, {"tsize": 0}]
)
def test_tftpy_download(server: ServerThread, files, name, options, tmp_path: Path) -> None:
    out = tmp_path / "out"
    tftpy.TftpClient(server.host, server.port, options=dict(options)).download(name, str(out))
    assert out.read_bytes() == content(files, name)
    assert server.handler.requests[-1].path == name
    assert server.handler.requests[-1].protocol == "tftp"
    assert server.handler.requests[-1].client_ip == "127.0.0.1"


def test_tftpy_not_found(server: ServerThread, tmp_path: Path) -> None:
    with pytest.raises(tftpy.TftpShared.TftpFileNotFoundError):
        tftpy.TftpClient(server.host, server.port).download("nope.cfg", str(tmp_path / "out"))


def test_tftpy_upload_accepted(server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "up"
    source.write_bytes(os.urandom(3000))
    tftpy.TftpClient(server.host, server.port).upload("0015651234-local.cfg", str(source))
    assert server.handler.uploads == {"0015651234-local.cfg": source.read_bytes()}


def test_tftpy_upload_refused_is_access_violation(server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "up"
    source.write_bytes(b"x" * 100)
    with pytest.raises(tftpy.TftpException, match="errorcode = 2"):
        tftpy.TftpClient(server.host, server.port).upload("phone.cfg", str(source))
    assert server.handler.uploads == {}
    assert [r.method for r in server.handler.requests] == []  # refused before handle()


def test_tftpy_upload_over_cap_is_refused(server: ServerThread, tmp_path: Path) -> None:
    source = tmp_path / "up"
    source.write_bytes(b"x" * 5000)  # cap is 4096
    with pytest.raises(tftpy.TftpException, match="errorcode = 3"):
        tftpy.TftpClient(server.host, server.port).upload("a-local.cfg", str(source))
    assert server.handler.uploads == {}


# -- tftp-hpa ---------------------------------------------------------------------------


def hpa(server: ServerThread, cwd: Path, mode: str, *command: str) -> str:
    """Run tftp-hpa with one command; returns its output (it exits 0 even on errors)."""
    tftp = require_tool("tftp", "tftp-hpa")
    result = run([tftp, "-m", mode, server.host, str(server.port), "-c", *command], cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.mark.parametrize("name", ["small.cfg", "multi.cfg", "exact.cfg", "empty.cfg", "fw.bin"])
def test_hpa_download_binary(server: ServerThread, files, name, tmp_path: Path) -> None:
    output = hpa(server, tmp_path, "binary", "get", name, "out")
    assert "Error" not in output
    assert (tmp_path / "out").read_bytes() == content(files, name)


def test_hpa_download_netascii_round_trips(server: ServerThread, tmp_path: Path) -> None:
    hpa(server, tmp_path, "ascii", "get", "text.cfg", "out")
    assert (tmp_path / "out").read_bytes() == TEXT


def test_hpa_not_found(server: ServerThread, tmp_path: Path) -> None:
    assert "Error code 1: File not found" in hpa(server, tmp_path, "binary", "get", "x.cfg", "o")


def test_hpa_forbidden_hides_the_detail(server: ServerThread, tmp_path: Path) -> None:
    """The handler's reason stays in the log: on the wire it would be an oracle for walkers."""
    output = hpa(server, tmp_path, "binary", "get", "secret.cfg", "out")
    assert "Error code 2: Access violation" in output
    assert "refused by policy" not in output


def test_hpa_upload(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(os.urandom(2500))
    output = hpa(server, tmp_path, "binary", "put", "up", "a-local.cfg")
    assert "Error" not in output
    assert server.handler.uploads["a-local.cfg"] == (tmp_path / "up").read_bytes()


def test_hpa_upload_netascii_is_converted_back(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(TEXT)
    hpa(server, tmp_path, "ascii", "put", "up", "t-local.cfg")
    assert server.handler.uploads["t-local.cfg"] == TEXT


def test_hpa_upload_refused(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(b"data")
    output = hpa(server, tmp_path, "binary", "put", "up", "phone.cfg")
    assert "Error code 2: Access violation" in output
    assert server.handler.uploads == {}


def test_hpa_over_ipv6(handler: FilesHandler, files, tmp_path: Path) -> None:
    tftp = require_tool("tftp", "tftp-hpa")
    with running_server(handler, TftpConfig(host="::1", port=0)) as server:
        assert server.host == "::1"
        result = run(
            [tftp, "-6", "-m", "binary", "::1", str(server.port), "-c", "get", "multi.cfg", "out"],
            tmp_path,
        )
        assert (tmp_path / "out").read_bytes() == content(files, "multi.cfg"), result.stdout
        with RawClient("::1", server.port) as client:
            download = client.download("fw.bin", blksize="1428", windowsize="8")
        assert download.data == content(files, "fw.bin")
        assert handler.requests[-1].client_ip == "::1"


# -- atftp ------------------------------------------------------------------------------


def atftp(server: ServerThread, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run atftp in batch mode against the server."""
    path = require_tool("atftp", "atftp")
    return run([path, *args, server.host, str(server.port)], cwd)


@pytest.mark.parametrize(
    "options",
    [
        ["blksize 1468", "windowsize 16"],
        ["blksize 8"],
        ["tsize enable", "timeout 2"],
        ["blksize 65464", "windowsize 64"],
        ["windowsize 4"],
    ],
)
@pytest.mark.parametrize("name", ["multi.cfg", "exact.cfg", "fw.bin"])
def test_atftp_download_with_options(
    server: ServerThread, files, name, options: list[str], tmp_path: Path
) -> None:
    args = [a for option in options for a in ("--option", option)]
    result = atftp(server, tmp_path, *args, "-g", "-r", name, "-l", "out")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "out").read_bytes() == content(files, name)


def test_atftp_not_found(server: ServerThread, tmp_path: Path) -> None:
    result = atftp(server, tmp_path, "-g", "-r", "missing.cfg", "-l", "out")
    assert result.returncode != 0
    assert "File not found" in result.stdout + result.stderr


def test_atftp_upload_with_tsize_over_cap(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(b"z" * 10_000)
    result = atftp(
        server, tmp_path, "--option", "tsize enable", "-p", "-r", "a-local.cfg", "-l", "up"
    )
    assert result.returncode != 0
    assert "upload exceeds the size limit" in result.stdout + result.stderr
    assert server.handler.uploads == {}


def test_atftp_upload_windowed(server: ServerThread, tmp_path: Path) -> None:
    (tmp_path / "up").write_bytes(os.urandom(4000))
    result = atftp(
        server,
        tmp_path,
        "--option",
        "blksize 512",
        "--option",
        "windowsize 4",
        "-p",
        "-r",
        "w-local.cfg",
        "-l",
        "up",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert server.handler.uploads["w-local.cfg"] == (tmp_path / "up").read_bytes()


def test_50mb_firmware_windowed(tmp_path: Path) -> None:
    image = tmp_path / "firmware.rom"
    with image.open("wb") as f:
        for _ in range(50):
            f.write(os.urandom(1 << 20))
    handler = FilesHandler({"firmware.rom": image})
    with running_server(handler) as server:
        result = atftp(
            server,
            tmp_path,
            "--option",
            "blksize 1468",
            "--option",
            "windowsize 16",
            "-g",
            "-r",
            "firmware.rom",
            "-l",
            "out",
        )
        stats = server.server.stats
        assert result.returncode == 0, result.stdout + result.stderr
        assert wait_until(lambda: stats.transfers_completed == 1)
        assert stats.bytes_sent >= 50 << 20
    digest = hashlib.sha256
    assert digest((tmp_path / "out").read_bytes()).digest() == digest(image.read_bytes()).digest()
