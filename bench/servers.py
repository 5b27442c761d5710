"""The servers under test and the reference servers, and /proc measurements of them.

- `Provisiond`: ``provisiond serve`` as a subprocess with a fleet's PROVISIOND_* environment on
  free loopback ports (``--workers`` only when the installed CLI offers it);
- `nginx` and `tftpd_hpa`: the reference servers, run by us as foreground processes on
  127.0.0.1 high ports with their configuration in a temporary directory, never their system
  services (bash bench/setup.sh installs the packages);
- `tree_usage`: RSS/PSS and CPU seconds of a process tree; `cpu_busy`: busy time of CPUs.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from common import PROVISIOND, Fleet, free_port, parse_cpus, pin, serve_supports_workers

READY_TIMEOUT_S = 180.0


class Provisiond:
    """``provisiond serve`` as a subprocess with the fleet's environment; log in the fleet dir."""

    def __init__(self, fleet: Fleet, workers: int = 1, cpus: str | None = None) -> None:
        self.fleet = fleet
        args = [str(PROVISIOND), "serve"]
        if workers > 1 and serve_supports_workers():
            args += ["--workers", str(workers)]
        self.workers = workers if serve_supports_workers() else 1
        self.log_path = fleet.root / "provisiond.log"
        env = {**os.environ, **fleet.env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*pin(cpus), *args], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        """The first (or only) provisiond process."""
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, then wait (kill after 30 s); then any worker the first process left."""
        workers = [pid for pid in tree_pids(self.proc.pid) if pid != self.proc.pid]
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        for pid in workers:  # only processes this object started (its descendants)
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def log_tail(self, lines: int = 20) -> str:
        """The end of the server's output, for error messages."""
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        """Raise with the log's tail when the server has exited."""
        if self.proc.poll() is not None:
            raise RuntimeError(f"provisiond exited ({self.proc.returncode}):\n{self.log_tail()}")


@contextmanager
def provisiond(fleet: Fleet, workers: int = 1, cpus: str | None = None) -> Iterator[Provisiond]:
    """A running provisiond (not waited for: see `wait_tcp`), stopped at exit."""
    server = Provisiond(fleet, workers, cpus)
    try:
        yield server
    finally:
        server.stop()


def wait_tcp(
    port: int, alive: Callable[[], None] | None = None, timeout: float = READY_TIMEOUT_S
) -> float:
    """Poll until 127.0.0.1:`port` accepts; returns the perf_counter time it did."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with socket.socket() as sock:
            try:
                sock.connect(("127.0.0.1", port))
                return time.perf_counter()
            except OSError:
                pass
        if alive is not None:
            alive()
        time.sleep(0.005)
    raise TimeoutError(f"nothing accepted on 127.0.0.1:{port} within {timeout:.0f} s")


def _unprivileged() -> list[str]:
    """Run as nobody when we are root (nginx needs no privilege on a high port)."""
    if os.geteuid() == 0 and shutil.which("setpriv"):
        return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    return []


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 1000000;
    open_file_cache max=20000 inactive=60s;
    open_file_cache_valid 60s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    types {{ text/plain cfg; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ }}
    }}
}}
"""


@contextmanager
def nginx(root: Path, workers: int = 1, cpus: str | None = None) -> Iterator[tuple[int, int]]:
    """nginx serving `root` statically on a free loopback port; yields (port, master pid).

    Configured as a tuned static server would be (sendfile, open_file_cache, no access log,
    no keep-alive request cap), so the reference is not handicapped.
    """
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    tmp = root.parent / "nginx"
    tmp.mkdir(mode=0o755, exist_ok=True)
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(workers=workers, tmp=tmp, port=port, root=root))
    if os.geteuid() == 0:
        shutil.chown(tmp, "nobody", "nogroup")
    cmd = [*pin(cpus), *_unprivileged(), exe, "-e", str(tmp / "error.log"), "-c", str(conf)]
    cmd += ["-p", str(tmp)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_tcp(port, alive=lambda: _alive(proc, "nginx"), timeout=30)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@contextmanager
def tftpd_hpa(root: Path, cpus: str | None = None) -> Iterator[tuple[int, int]]:
    """in.tftpd -L -s ROOT -a 127.0.0.1:PORT (foreground; it chroots, then runs as nobody)."""
    exe = shutil.which("in.tftpd") or "/usr/sbin/in.tftpd"
    if os.geteuid() != 0:
        raise RuntimeError("tftpd-hpa's --secure (chroot) needs root")
    port = free_port(socket.SOCK_DGRAM)
    cmd = [*pin(cpus), exe, "-L", "-s", "-u", "nobody", "-a", f"127.0.0.1:{port}", str(root)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)  # no readiness signal; callers probe with a real transfer
        _alive(proc, "in.tftpd")
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _alive(proc: subprocess.Popen[bytes], name: str) -> None:
    if proc.poll() is not None:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{name} exited ({proc.returncode}): {err.strip()}")


# -- /proc ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Memory and CPU of a process tree at one moment."""

    processes: int
    rss_mb: float  # sum of VmRSS (shared pages counted once per process)
    pss_mb: float  # sum of Pss: shared pages split between the processes
    cpu_s: float  # user + system, including reaped children (tftpd-hpa forks per transfer)


def tree_pids(root: int) -> list[int]:
    """`root` and its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError, IndexError, ValueError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 10_000:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _kb(path: Path, key: str) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    return 0


def tree_usage(root: int) -> Usage:
    """RSS, PSS and CPU seconds of `root` and its descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    rss = pss = cpu = count = 0
    for pid in tree_pids(root):
        proc = Path(f"/proc/{pid}")
        with suppress(OSError, IndexError, ValueError):
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
            rss += _kb(proc / "status", "VmRSS:")
            pss += _kb(proc / "smaps_rollup", "Pss:")
            count += 1
    return Usage(count, rss / 1024, pss / 1024, cpu / ticks)


def cpu_busy(cpus: str | None) -> float | None:
    """Busy seconds so far (all but idle and iowait) of the listed CPUs, from /proc/stat.

    Counts whatever ran there, kernel network work included: meaningful when the server is
    pinned there and the machine is otherwise quiet. tftpd-hpa's children are never reaped
    (SIGCHLD ignored), so their CPU is missing from `tree_usage`; this sees it.
    """
    if not cpus:
        return None
    wanted = parse_cpus(cpus)
    ticks = 0
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in wanted:
            values = [int(v) for v in fields[:8]]  # user nice system idle iowait irq softirq steal
            ticks += sum(values) - values[3] - values[4]
    return ticks / os.sysconf("SC_CLK_TCK")
