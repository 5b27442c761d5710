"""Run a real `provisiond serve` process on free loopback ports (for end-to-end tests).

`serve` starts one and waits until it answers; `serve_exits` starts one that is expected to
refuse to start and returns its exit code and output; `run_cli` / `run_cli_result` run other
subcommands; `cli_env` is the environment both use for a data directory; `api_call` and
`phone_get` talk to a running server without raising on an HTTP error status;
`first_admin_token` reads the token a server made on an empty database.
"""

from __future__ import annotations

import json
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
from typing import Any

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


def cli_env(data_dir: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment for `data_dir`: PROVISIOND_DATABASE_URL only if `extra_env`
    names it (else the embedded SQLite file in the data dir), `extra_env` winning."""
    env = {**os.environ, "PROVISIOND_DATA_DIR": str(data_dir), **(extra_env or {})}
    if "PROVISIOND_DATABASE_URL" not in (extra_env or {}):
        env.pop("PROVISIOND_DATABASE_URL", None)
    return env


def _serve_env(
    data_dir: Path, extra_env: dict[str, str] | None
) -> tuple[dict[str, str], tuple[int, int, int]]:
    ports = free_port(), free_port(socket.SOCK_DGRAM), free_port()
    listen = {
        "PROVISIOND_PHONE_HTTP": f"127.0.0.1:{ports[0]}",
        "PROVISIOND_TFTP": f"127.0.0.1:{ports[1]}",
        "PROVISIOND_ADMIN_HTTP": f"127.0.0.1:{ports[2]}",
    }
    return cli_env(data_dir, {**listen, **(extra_env or {})}), ports


@contextmanager
def serve(data_dir: Path, extra_env: dict[str, str] | None = None) -> Iterator[ServeProcess]:
    """Start `python -m provisiond.cli serve`, wait until the admin API answers, stop it after."""
    env, ports = _serve_env(data_dir, extra_env)
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


def serve_exits(
    data_dir: Path, extra_env: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, str]:
    """Start `serve` where it must refuse to start: (its exit code, its output).

    Fails the test when the server is still running after `timeout` seconds, or when its
    admin or phone listener answered meanwhile (it must serve nothing before refusing).
    """
    env, ports = _serve_env(data_dir, extra_env)
    process = subprocess.Popen(
        [sys.executable, "-m", "provisiond.cli", "serve"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    answered = []
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            for port in (ports[0], ports[2]):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    answered.append(port)
                except OSError:
                    pass
            time.sleep(0.05)
        if process.poll() is None:
            raise AssertionError(f"provisiond serve still runs after {timeout} s")
        output = process.communicate()[0]
    finally:
        if process.poll() is None:
            stop(process)
        if process.stdout is not None:
            process.stdout.close()
    assert not answered, f"the refused server accepted connections on {answered}:\n{output}"
    return process.returncode, output


def stop(process: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL after 10 s: a server under test always ends."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def first_admin_token(server: ServeProcess, timeout: float = 15.0) -> str:
    """The token `serve` writes on an empty database (it may follow the listeners by a moment)."""
    path = Path(server.env["PROVISIOND_DATA_DIR"]) / "first-admin-token"
    deadline = time.monotonic() + timeout
    while not path.is_file() or not path.read_text(encoding="utf-8").strip():
        assert server.process.poll() is None, server.log_path.read_text(encoding="utf-8")
        assert time.monotonic() < deadline, f"no {path} after {timeout} s"
        time.sleep(0.05)
    return path.read_text(encoding="utf-8").strip()


def run_cli_result(
    env: dict[str, str], *argv: str, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``provisiond ARGV...`` with `env`, whatever its exit code (bounded by `timeout`)."""
    return subprocess.run(
        [sys.executable, "-m", "provisiond.cli", *argv],
        cwd=REPO,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli(env: dict[str, str], *argv: str) -> str:
    """Run ``provisiond ARGV...`` with `env`; its stdout, stripped (fails on a non-zero exit)."""
    done = run_cli_result(env, *argv)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def api_call(
    server: ServeProcess, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    """(status, decoded JSON body) of an admin API request; an error status does not raise."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{server.api}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"null")


def phone_get(
    server: ServeProcess,
    path: str,
    user_agent: str,
    *,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 10,
) -> tuple[int, bytes]:
    """(status, body) of a phone's HTTP request to `path`; an error status does not raise."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.phone_port}/{path.lstrip('/')}",
        data=body,
        method=method,
        headers={"User-Agent": user_agent},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


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
