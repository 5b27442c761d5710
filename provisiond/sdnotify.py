"""A tiny sd_notify client: tell systemd we are ready, and keep its watchdog fed.

systemd passes ``NOTIFY_SOCKET`` to a ``Type=notify`` service: the path of an AF_UNIX datagram
socket, or an abstract-namespace name written with a leading ``@``. Each datagram is one or
more ``KEY=VALUE`` lines (``READY=1``, ``WATCHDOG=1``, ``STOPPING=1``, ``STATUS=...``); see
sd_notify(3). With ``WatchdogSec=`` set, systemd also passes ``WATCHDOG_USEC`` (the interval)
and ``WATCHDOG_PID`` (the process that must ping) and restarts the service when no
``WATCHDOG=1`` arrives within the interval.

No dependency: a datagram socket is all the protocol needs. Outside systemd (no
``NOTIFY_SOCKET``) every call is a no-op, so the server runs the same under a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping

__all__ = ["notify", "watchdog", "watchdog_interval"]

SEND_TIMEOUT_S = 1.0  # systemd reads its notify socket at once; never hang the event loop long


def _address(value: str) -> str | None:
    """The socket address for a NOTIFY_SOCKET value, or None when we cannot use it."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]  # abstract namespace: Linux names it with a leading NUL
    if value.startswith("/"):
        return value
    return None  # e.g. "vsock:..." (VMs): not something a provisioning server meets


def notify(state: str, environ: Mapping[str, str] | None = None) -> bool:
    """Send `state` (e.g. ``"READY=1"``) to systemd; True when the datagram was sent.

    False when not started by systemd (no ``NOTIFY_SOCKET``), when the address is of an unknown
    kind, or when sending failed: notification is best effort and never raises.
    """
    env = os.environ if environ is None else environ
    address = _address(env.get("NOTIFY_SOCKET", ""))
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.settimeout(SEND_TIMEOUT_S)
            sock.connect(address)
            sock.sendall(state.encode("utf-8"))
    except OSError:
        return False
    return True


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """The watchdog interval in seconds when systemd expects pings from this process, else None.

    None without ``WATCHDOG_USEC`` (no ``WatchdogSec=``), with a malformed or zero value, or when
    ``WATCHDOG_PID`` names another process (a `--workers` child inherits the environment but
    is not the one systemd watches).
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC", "")
    if not usec_text.isdigit() or int(usec_text) == 0:
        return None
    pid_text = env.get("WATCHDOG_PID", "")
    if pid_text and (not pid_text.isdigit() or int(pid_text) != os.getpid()):
        return None
    return int(usec_text) / 1_000_000


async def watchdog(stop_event: asyncio.Event, environ: Mapping[str, str] | None = None) -> None:
    """Send ``WATCHDOG=1`` every half interval until `stop_event` is set.

    Returns at once when systemd set no watchdog for this process. A ping that cannot be sent
    is retried at the next tick: systemd allows a whole interval, two ticks.
    """
    interval = watchdog_interval(environ)
    if interval is None:
        return
    while not stop_event.is_set():
        notify("WATCHDOG=1", environ)
        # The loop runs while the event loop runs: a blocked loop misses pings, and systemd
        # restarts a server that no longer answers anything.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop_event.wait(), interval / 2)
