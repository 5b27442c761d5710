"""Run a real `provisiond serve` process on free loopback ports (for end-to-end tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServeProcess:
    """A running server and how to reach it."""

    process: subprocess.Popen[str]
    env: dict[str, str]
    phone_port: int
    tftp_port: int
    admin_port: int
    log_path: Path

    @property
    def api(self) -> str:
        """The admin API base URL."""
        return f"http://127.0.0.1:{self.admin_port}/api/v1"


@contextmanager
def serve(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """Start `python -m provisiond.cli serve`, wait until the admin API answers, stop it after."""
    ports = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    env = {
        **os.environ,
        "PROVISIOND_DATA_DIR": str(data_dir),
        "PROVISIOND_PHONE_HTTP": f"127.0.0.1:{ports[0]}",
        "PROVISIOND_TFTP": f"127.0.0.1:{ports[1]}",
        "PROVISIOND_ADMIN_HTTP": f"127.0.0.1:{ports[2]}",
        **(extra_env or {}),
    }
    env.pop("PROVISIOND_DATABASE_URL", None) if "PROVISIOND_DATABASE_URL" not in (
        extra_env or {}
    ) else None
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serve.log"
    with log_path.open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "provisiond.cli", "serve"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = ServeProcess(process, env, *ports, log_path)
        try:
            _wait_ready(server)
            yield server
        finally:
            stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server under test always ends."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run_cli(env: dict[str, str], *argv: str) -> str:
    """Run ``provisiond ARGV...`` with `env`; its stdout, stripped (fails on a non-zero exit)."""
    done = subprocess.run(
        [sys.executable, "-m", "provisiond.cli", *argv],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _wait_ready(server: ServeProcess, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            out = server.log_path.read_text(encoding="utf-8")
            raise RuntimeError(f"provisiond serve exited early:\n{out}")
        try:
            # Ready: the admin API answers and the phone listener (opened last) accepts.
            urllib.request.urlopen(f"{server.api}/openapi.json", timeout=1).read()
            socket.create_connection(("127.0.0.1", server.phone_port), timeout=1).close()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    raise RuntimeError("provisiond serve did not become ready")
