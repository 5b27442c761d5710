"""Each vendor's documented boot, replayed over real TFTP against the phone stack.

tftpy fetches the whole GET sequence; tftp-hpa (/usr/bin/tftp) and atftp fetch the device
file. TFTP carries no User-Agent, so the vendor of a shared name such as ``<mac>.cfg`` comes
from the known device's model. The server shares the test's event loop, so the blocking
clients run in a worker thread or as subprocesses. Missing Debian tools fail the test with
the package to install.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import tftpy

from tests.integration.boot_sequences import (
    BOOT_CASES,
    PASSWORD,
    BootCase,
    Role,
    mac_forms,
    provision,
)
from tests.integration.phone_stack import PhoneStack
from tests.tftp_helpers import require_tool

CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES]
UPLOAD_CASES = [pytest.param(case, id=case.id) for case in BOOT_CASES if case.uploads]


def other_mac(case: BootCase) -> str:
    """A MAC of the same vendor (same OUI) that is not the case's device."""
    return case.mac[:6] + "c0ffee"


async def tftpy_get(
    stack: PhoneStack, name: str, out: Path, options: dict[str, int] | None = None
) -> bytes | None:
    """Download `name` with tftpy (RFC 2347 `options` if given): its bytes, or None for
    TFTP "file not found"."""

    def download() -> bytes | None:
        client = tftpy.TftpClient(stack.tftp_host, stack.tftp_port, options=options or {})
        try:
            client.download(name, str(out), timeout=5)
        except tftpy.TftpShared.TftpFileNotFoundError:
            return None
        except tftpy.TftpShared.TftpException as exc:  # after an OACK tftpy raises it plainly
            if "errorcode = 1" in str(exc):
                return None
            raise
        return out.read_bytes()

    return await asyncio.to_thread(download)


async def tftpy_put(stack: PhoneStack, name: str, source: Path) -> None:
    """Upload `source` as `name` with tftpy (a WRQ); raises what tftpy raises."""

    def upload() -> None:
        tftpy.TftpClient(stack.tftp_host, stack.tftp_port).upload(name, str(source), timeout=5)

    await asyncio.to_thread(upload)


async def debian_get(stack: PhoneStack, tool: str, name: str, out: Path) -> bytes | None:
    """Download with tftp-hpa or atftp: the bytes, or None when the server refused the read.

    tftp-hpa exits 0 even on errors and leaves an empty file: its output tells, with the
    error code (which must be 1, file not found). atftp exits non-zero and prints only the
    server's message, not the code (tftpy's TftpFileNotFoundError checks the code).
    """
    if tool == "tftp":
        path = require_tool("tftp", "tftp-hpa")
        args = ["-m", "binary", stack.tftp_host, str(stack.tftp_port), "-c", "get", name, str(out)]
    else:
        path = require_tool("atftp", "atftp")
        args = ["-g", "-r", name, "-l", str(out), stack.tftp_host, str(stack.tftp_port)]
    process = await asyncio.create_subprocess_exec(
        path, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    output = (stdout + stderr).decode()
    if tool == "tftp" and "Error code" in output:
        assert "Error code 1:" in output, output
        return None
    if tool == "atftp" and "error received from server" in output:
        assert process.returncode != 0, output
        return None
    assert process.returncode == 0, output
    assert "rror" not in output, output
    return out.read_bytes()


def check_device_file(case: BootCase, name: str, body: bytes | None) -> None:
    """The device file was served and holds the expected values."""
    assert body is not None, f"{name}: file not found"
    problems = case.values.mismatches(body)
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.parametrize("case", CASES)
async def test_boot_sequence_over_tftp(
    phone_stack: PhoneStack, case: BootCase, tmp_path: Path
) -> None:
    """Every boot read in order with tftpy; 404s become "file not found"; then seen."""
    device_id = await provision(phone_stack.services, case)
    for index, step in enumerate(case.gets):
        name = case.path(step.path)
        body = await tftpy_get(phone_stack, name, tmp_path / f"{index}.out")
        if step.status == 404:
            assert body is None, f"{name}: expected file not found"
        elif step.role is Role.DEVICE:
            check_device_file(case, name, body)
        else:
            assert body is not None, f"{name}: file not found"
            assert PASSWORD.encode() not in body, f"{name} leaks the SIP password"
    # Some phones (Cisco SPA's "/spa$PSN.cfg") ask with a leading slash.
    name = "/" + case.path(case.device_path)
    check_device_file(case, name, await tftpy_get(phone_stack, name, tmp_path / "slash.out"))

    await phone_stack.activity.flush()
    seen = (await phone_stack.services.devices.get(device_id))["last_seen"]
    assert seen is not None
    assert (seen["ip"], seen["user_agent"], seen["firmware"]) == ("127.0.0.1", None, None)


@pytest.mark.parametrize("tool", ["tftp", "atftp"])
@pytest.mark.parametrize("case", CASES)
async def test_device_file_with_debian_client(
    phone_stack: PhoneStack, case: BootCase, tool: str, tmp_path: Path
) -> None:
    """tftp-hpa and atftp get the device file; an unknown MAC's file is "not found"."""
    await provision(phone_stack.services, case)
    name = case.path(case.device_path)
    check_device_file(case, name, await debian_get(phone_stack, tool, name, tmp_path / "dev"))
    unknown = case.path(case.device_path, other_mac(case))
    assert await debian_get(phone_stack, tool, unknown, tmp_path / "unknown") is None


@pytest.mark.parametrize("case", CASES)
async def test_unknown_mac_over_tftp(
    phone_stack: PhoneStack, case: BootCase, tmp_path: Path
) -> None:
    """An unknown MAC gets "file not found"; it is listed (the vendor only from a unique name)
    once the source has proven its address by answering our OACK, never on one bare RRQ,
    which any forged UDP packet can be."""
    await provision(phone_stack.services, case)
    stranger = other_mac(case)
    name = case.path(case.device_path, stranger)
    assert await tftpy_get(phone_stack, name, tmp_path / "out") is None  # no options: no proof
    await phone_stack.activity.flush()
    assert (await phone_stack.services.catalogue.unprovisioned())["items"] == []
    assert await tftpy_get(phone_stack, name, tmp_path / "out", {"blksize": 1024}) is None
    await phone_stack.activity.flush()
    listed = (await phone_stack.services.catalogue.unprovisioned())["items"]
    vendor = None if case.shares_name_with else case.vendor
    assert [(row["mac"], row["vendor"], row["model_guess"]) for row in listed] == [
        (mac_forms(stranger)["mac_colon"], vendor, None)
    ]


@pytest.mark.parametrize("case", UPLOAD_CASES)
async def test_uploads_over_tftp(phone_stack: PhoneStack, case: BootCase, tmp_path: Path) -> None:
    """The vendor's upload names accept a WRQ and the stored file is read back."""
    await provision(phone_stack.services, case)
    for index, step in enumerate(case.uploads):
        name = case.path(step.path)
        source = tmp_path / f"{index}.up"
        source.write_bytes(f"{name} over TFTP\n".encode() * 40)  # a few blocks
        await tftpy_put(phone_stack, name, source)
        assert await tftpy_get(phone_stack, name, tmp_path / f"{index}.down") == (
            source.read_bytes()
        ), name
