"""provisiond.sdnotify against real AF_UNIX datagram sockets, as systemd's notify socket is."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisiond import sdnotify

RECV_BOUND_S = 5.0  # a hang guard only: datagrams arrive at once or the test has failed


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound to a file, and the NOTIFY_SOCKET value naming it."""
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(RECV_BOUND_S)
        yield sock, str(path)


@pytest.fixture
def abstract_socket() -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket in the abstract namespace, and its ``@name`` NOTIFY_SOCKET value."""
    name = f"provisiond-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(RECV_BOUND_S)
        yield sock, "@" + name


@pytest.mark.parametrize("kind", ["path_socket", "abstract_socket"])
def test_notify_sends_the_state_as_one_datagram(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    sock, address = request.getfixturevalue(kind)
    monkeypatch.setenv("NOTIFY_SOCKET", address)
    assert sdnotify.notify("READY=1\nSTATUS=serving 12 devices")
    assert sock.recv(4096) == b"READY=1\nSTATUS=serving 12 devices"


def test_notify_reads_an_explicit_environment(path_socket: tuple[socket.socket, str]) -> None:
    sock, address = path_socket
    assert sdnotify.notify("STOPPING=1", {"NOTIFY_SOCKET": address})
    assert sock.recv(4096) == b"STOPPING=1"


@pytest.mark.parametrize("value", ["", "@", "relative/path", "vsock:2:1234"])
def test_notify_without_a_usable_socket_is_a_no_op(value: str) -> None:
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": value})


def test_notify_outside_systemd_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not sdnotify.notify("READY=1")


def test_notify_to_a_socket_nobody_listens_on_returns_false(tmp_path: Path) -> None:
    assert not sdnotify.notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}, 0.5),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "self"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "thirty"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(env: dict[str, str], expected: float | None) -> None:
    assert sdnotify.watchdog_interval(env) == expected


async def _recv(sock: socket.socket) -> bytes:
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    return await asyncio.wait_for(loop.sock_recv(sock, 4096), RECV_BOUND_S)


async def test_watchdog_pings_until_stopped(abstract_socket: tuple[socket.socket, str]) -> None:
    sock, address = abstract_socket
    # 20 ms: pings every 10 ms, so the test sees several without waiting long.
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000", "WATCHDOG_PID": str(os.getpid())}
    stop = asyncio.Event()
    task = asyncio.create_task(sdnotify.watchdog(stop, env))
    for _ in range(3):
        assert await _recv(sock) == b"WATCHDOG=1"
    stop.set()
    await asyncio.wait_for(task, RECV_BOUND_S)
    assert task.done()
    assert task.exception() is None


async def test_watchdog_returns_at_once_without_a_watchdog(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, address = path_socket
    stop = asyncio.Event()  # never set: the task must end by itself
    await asyncio.wait_for(sdnotify.watchdog(stop, {"NOTIFY_SOCKET": address}), RECV_BOUND_S)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)  # nothing was sent


async def test_watchdog_of_another_process_sends_nothing(
    path_socket: tuple[socket.socket, str],
) -> None:
    sock, address = path_socket
    env = {"NOTIFY_SOCKET": address, "WATCHDOG_USEC": "20000", "WATCHDOG_PID": "1"}
    await asyncio.wait_for(sdnotify.watchdog(asyncio.Event(), env), RECV_BOUND_S)
    sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        sock.recv(4096)
