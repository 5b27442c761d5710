"""The resync NOTIFY against sipp (Debian package sip-tester) acting as the phone.

Each test starts ``sipp`` as a UAS on 127.0.0.1 with one scenario from tests/sipp/ and
``-m 1`` (one call, then exit); `send_notify` talks to it over real UDP. sipp's exit code is
the verdict on the request: 0 means every header check of the scenario passed
(``check_it``), the digest answer verified (``verifyauth``) and the call ended as scripted.
Retransmissions are counted in sipp's own message log (``-trace_msg``).

A missing sipp fails these tests (install sip-tester); they never skip.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from provisiond.sip import send_notify

SCENARIOS = Path(__file__).resolve().parent.parent / "sipp"
HOST = "127.0.0.1"
USER = "201"
PASSWORD = "s3cret-Pass"  # tests/sipp/notify_401_digest.xml verifies with this
START_WAIT_S = 10.0


@dataclass
class SippRun:
    """One sipp UAS: its SIP port, and after it exited its exit code and logs."""

    port: int
    returncode: int | None = None
    messages: str = ""
    errors: str = ""
    screen: str = ""

    def received_notifies(self) -> list[str]:
        """The NOTIFY requests sipp logged as received, retransmissions included."""
        # The log is a series of "----- <time>" lines, each followed by a "UDP message
        # received|sent ..." line, a blank line and the message.
        messages = []
        for block in re.split(r"^-{10,}[^\n]*\n", self.messages, flags=re.MULTILINE):
            title, _, message = block.partition("\n\n")
            if title.startswith("UDP message received") and message.startswith("NOTIFY "):
                messages.append(message)
        return messages


def _sipp() -> str:
    binary = shutil.which("sipp")
    if binary is None:
        pytest.fail("sipp is not installed: apt-get install -y sip-tester (Debian package)")
    return binary


def _free_ports(count: int) -> list[int]:
    """Distinct ports free on UDP, each with port+2 free too (sipp's -mp binds both)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("0.0.0.0", 0))
            port = probe.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as other:
                    other.bind(("0.0.0.0", port + 2))
            except OSError:
                continue
        if port not in ports and port + 2 < 65536:
            ports.append(port)
    return ports


def _udp_bound(port: int) -> bool:
    """Whether some socket is bound to UDP `port` (read from /proc: probing would race)."""
    suffix = f":{port:04X}"
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        if any(line.split()[1].endswith(suffix) for line in lines):
            return True
    return False


async def _wait_started(process: asyncio.subprocess.Process, port: int, screen: Path) -> None:
    for _ in range(int(START_WAIT_S / 0.02)):
        if _udp_bound(port):
            return
        if process.returncode is not None:
            break
        await asyncio.sleep(0.02)
    pytest.fail(f"sipp did not start: {screen.read_text(errors='replace')[-2000:]}")


@asynccontextmanager
async def sipp_uas(scenario: str, tmp_path: Path, *options: str) -> AsyncIterator[SippRun]:
    """Run sipp as a UAS with `scenario` for the duration of the block, then collect it."""
    sip_port, media_port, control_port = _free_ports(3)
    logs = {name: tmp_path / f"sipp-{name}.log" for name in ("messages", "errors", "screen")}
    command = [
        _sipp(),
        *("-sf", str(SCENARIOS / scenario), "-i", HOST, "-p", str(sip_port)),
        *("-mp", str(media_port), "-cp", str(control_port)),
        *("-m", "1", "-nostdin", "-timeout", "30s", "-timeout_error"),
        *("-trace_msg", "-message_file", str(logs["messages"])),
        *("-trace_err", "-error_file", str(logs["errors"])),
        *options,
    ]
    with logs["screen"].open("wb") as screen:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.DEVNULL, stdout=screen, stderr=subprocess.STDOUT
        )
    run = SippRun(sip_port)
    try:
        # The control socket is bound last: once it is, sipp listens on the SIP port.
        await _wait_started(process, control_port, logs["screen"])
        yield run
    finally:
        try:
            run.returncode = await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()
        text = {k: p.read_text(errors="replace") if p.exists() else "" for k, p in logs.items()}
        run.messages, run.errors, run.screen = text["messages"], text["errors"], text["screen"]


async def test_200_ok_and_every_header_checked_by_sipp(tmp_path: Path) -> None:
    async with sipp_uas("notify_200.xml", tmp_path) as sipp:
        result = await send_notify(
            HOST, sipp.port, event="check-sync;reboot=true", user=USER, reboot=True
        )
    assert (result.status, result.reason) == (200, "OK")
    assert (result.attempts, result.transmissions) == (1, 1)
    assert sipp.returncode == 0, sipp.errors
    assert len(sipp.received_notifies()) == 1


async def test_sipp_refuses_a_request_its_checks_reject(tmp_path: Path) -> None:
    """The checks are live: the same scenario fails on a NOTIFY without reboot=true."""
    async with sipp_uas("notify_200.xml", tmp_path) as sipp:
        await send_notify(HOST, sipp.port, event="check-sync", user=USER)
    assert sipp.returncode == 1
    assert "check-sync;reboot=true" in sipp.errors


async def test_digest_challenge_is_answered_once_and_verified_by_sipp(tmp_path: Path) -> None:
    async with sipp_uas("notify_401_digest.xml", tmp_path) as sipp:
        result = await send_notify(
            HOST, sipp.port, event="check-sync", user=USER, credentials=(USER, PASSWORD)
        )
    assert (result.status, result.attempts, result.transmissions) == (200, 2, 2)
    assert sipp.returncode == 0, sipp.errors
    first, second = sipp.received_notifies()
    assert "Authorization:" not in first
    assert re.search(r"^Authorization: Digest .*algorithm=MD5", second, re.MULTILINE)


async def test_a_wrong_password_is_refused_and_reported(tmp_path: Path) -> None:
    async with sipp_uas("notify_401_digest.xml", tmp_path) as sipp:
        result = await send_notify(
            HOST, sipp.port, event="check-sync", user=USER, credentials=(USER, "wrong")
        )
    assert (result.status, result.reason, result.attempts) == (403, "Forbidden", 2)
    assert sipp.returncode != 0  # the scenario's <error> after a failed verifyauth
    assert "digest answer did not verify" in sipp.errors


async def test_no_answer_retransmits_on_timer_e_until_timer_f(tmp_path: Path) -> None:
    # T1 0.2 s, T2 0.8 s, F 4.2 s: sends at 0, 0.2, 0.6, 1.4, 2.2, 3.0, 3.8 -> 7 datagrams.
    # sipp stays in the call 6 s (-d), past timer F, so it logs every one of them.
    async with sipp_uas("notify_silent.xml", tmp_path, "-d", "6000") as sipp:
        result = await send_notify(
            HOST, sipp.port, event="check-sync", user=USER, t1=0.2, t2=0.8, timeout=4.2
        )
    assert result.status is None
    assert result.reason.startswith("timeout")
    assert (result.attempts, result.transmissions) == (1, 7)
    assert result.elapsed_s >= 4.2
    notifies = sipp.received_notifies()
    assert len(notifies) == 7
    branches = {re.search(r"branch=(z9hG4bK\w+)", n).group(1) for n in notifies}  # type: ignore[union-attr]
    assert len(branches) == 1  # retransmissions, not new requests
    assert sipp.returncode == 0, sipp.errors


@pytest.mark.parametrize(
    ("event", "status", "reason"),
    [
        ("check-sync", 481, "Subscription does not exist"),
        ("resync", 489, "Bad Event"),
    ],
)
async def test_refusals_are_reported(tmp_path: Path, event: str, status: int, reason: str) -> None:
    async with sipp_uas("notify_error.xml", tmp_path) as sipp:
        result = await send_notify(HOST, sipp.port, event=event, mac="00:15:65:aa:bb:cc")
    assert (result.status, result.reason, result.attempts) == (status, reason, 1)
    assert not result.ok
    assert sipp.returncode == 0, sipp.errors
    (notify,) = sipp.received_notifies()
    assert notify.startswith(f"NOTIFY sip:001565aabbcc@{HOST}:{sipp.port} SIP/2.0")
