"""systemd/provisiond.service: systemd's own checks, its exposure score, and the hardening it
asks for against the real server.

`systemd-analyze verify` needs the ExecStart binary to exist, so it runs on a copy whose
ExecStart names this checkout's `provisiond` script instead of the documented
/opt/provisiond/.venv/bin/provisiond. MemoryDenyWriteExecute= is exercised for real: the
server runs under the kernel's PR_SET_MDWE (Linux 6.3+), which refuses writable+executable
memory the way the unit's seccomp filter does, with two processes, answering phones.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisiond.settings import ENVIRONMENT, REPO_ROOT
from tests.serve_process import free_port

UNIT = REPO_ROOT / "systemd" / "provisiond.service"
INSTALLED_EXEC = "/opt/provisiond/.venv/bin/provisiond"
MAX_EXPOSURE = 2.5
ANALYZE_TIMEOUT_S = 60
PR_SET_MDWE = 65
PR_MDWE_REFUSE_EXEC_GAIN = 1


def systemd_analyze() -> str:
    """The tool's path, or a failure naming its Debian package (never a skip)."""
    path = shutil.which("systemd-analyze")
    if path is None:
        pytest.fail("systemd-analyze is missing: install the Debian package systemd")
    return path


def directives(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every line of a unit file; keys may repeat."""
    found = []
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def values(key: str) -> list[str]:
    """Every value of `key` in [Service]."""
    return [v for s, k, v in directives(UNIT.read_text()) if s == "Service" and k == key]


@pytest.fixture
def testable_unit(tmp_path: Path) -> Path:
    """A copy of the unit whose ExecStart names an executable that exists here."""
    executable = Path(sys.executable).parent / "provisiond"
    assert executable.exists(), "the package is installed in the venv (make test does it)"
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED_EXEC} " in text
    copy = tmp_path / "provisiond.service"
    copy.write_text(text.replace(f"ExecStart={INSTALLED_EXEC} ", f"ExecStart={executable} "))
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    """Run systemd-analyze with a bound on its time."""
    return subprocess.run(
        [systemd_analyze(), *args],
        capture_output=True,
        text=True,
        timeout=ANALYZE_TIMEOUT_S,
        check=False,
    )


def test_systemd_verifies_the_unit(testable_unit: Path) -> None:
    result = analyze("verify", str(testable_unit))
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"systemd-analyze warned:\n{result.stderr}"


def test_verify_would_see_a_mistake(testable_unit: Path) -> None:
    """A control: the same call complains about an unknown directive."""
    text = testable_unit.read_text()
    testable_unit.write_text(text.replace("[Service]\n", "[Service]\nProtectSystme=strict\n"))
    result = analyze("verify", str(testable_unit))
    assert "ProtectSystme" in result.stderr


def test_exposure_score_is_at_most_2_5(testable_unit: Path) -> None:
    threshold = str(int(MAX_EXPOSURE * 10))  # systemd counts exposure in tenths
    result = analyze("security", "--offline=yes", f"--threshold={threshold}", str(testable_unit))
    match = re.search(r"Overall exposure level for provisiond\.service: ([0-9.]+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    score = float(match.group(1))
    assert score <= MAX_EXPOSURE, result.stdout
    assert result.returncode == 0, result.stdout


def test_the_unit_runs_unprivileged_with_one_capability() -> None:
    assert values("Type") == ["notify"]
    assert values("NotifyAccess") == ["main"]
    assert values("WatchdogSec") == ["30"]
    assert values("User") == ["provisiond"]
    assert values("Group") == ["provisiond"]
    assert values("StateDirectory") == ["provisiond"]
    assert values("CapabilityBoundingSet") == ["CAP_NET_BIND_SERVICE"]
    assert values("AmbientCapabilities") == ["CAP_NET_BIND_SERVICE"]
    assert values("ProtectSystem") == ["strict"]
    assert values("MemoryDenyWriteExecute") == ["yes"]
    assert values("RestrictAddressFamilies") == ["AF_INET AF_INET6 AF_UNIX"]
    assert values("ExecStart") == [f"{INSTALLED_EXEC} serve --workers 2"]
    assert int(values("LimitNOFILE")[0]) >= 65536


def test_the_unit_sets_only_settings_provisiond_knows() -> None:
    known = {*ENVIRONMENT, "PROVISIOND_CONFIG"}
    environment = dict(v.split("=", 1) for v in values("Environment"))
    assert set(environment) <= known, set(environment) - known
    assert environment["PROVISIOND_DATA_DIR"] == "/var/lib/provisiond"
    assert environment["PROVISIOND_PHONE_HTTP"] == "0.0.0.0:80"
    assert environment["PROVISIOND_TFTP"] == "0.0.0.0:69"
    assert environment["PROVISIOND_ADMIN_HTTP"].startswith("127.0.0.1:")


def test_the_deployment_guide_installs_where_the_unit_looks() -> None:
    guide = (REPO_ROOT / "docs" / "deployment.md").read_text()
    assert INSTALLED_EXEC in guide
    assert "systemd/provisiond.service" in guide
    for path in ("/var/lib/provisiond", "/etc/provisiond", "/opt/provisiond/phone_templates"):
        assert path in guide


# -- MemoryDenyWriteExecute against the real server -----------------------------------------

# Runs in the child before exec: the flag is inherited by exec and by the --workers children.
MDWE_EXEC = textwrap.dedent(
    f"""
    import ctypes, os, sys
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl({PR_SET_MDWE}, {PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) != 0:
        sys.exit("PR_SET_MDWE failed: errno %d (Linux 6.3+ needed)" % ctypes.get_errno())
    os.execv(sys.argv[1], sys.argv[1:])
    """
)


def test_mdwe_refuses_writable_executable_memory() -> None:
    """A control: under the flag, a W+X mapping really is refused."""
    probe = "import mmap; mmap.mmap(-1, 4096, prot=7)"  # PROT_READ|PROT_WRITE|PROT_EXEC
    command = [sys.executable, "-c", MDWE_EXEC, sys.executable, "-c", probe]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode != 0
    assert "PermissionError" in result.stderr, result.stderr


def _get(url: str, user_agent: str = "provisiond-test") -> int:
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()
        return int(response.status)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def mdwe_server(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], int, int]]:
    """`provisiond serve --workers 2` under PR_SET_MDWE, with its phone and admin ports."""
    phone, admin = free_port(), free_port()
    env = {
        **os.environ,
        "PROVISIOND_DATA_DIR": str(tmp_path),
        "PROVISIOND_PHONE_HTTP": f"127.0.0.1:{phone}",
        "PROVISIOND_TFTP": f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
        "PROVISIOND_ADMIN_HTTP": f"127.0.0.1:{admin}",
    }
    env.pop("PROVISIOND_DATABASE_URL", None)
    serve = [sys.executable, "-m", "provisiond.cli", "serve", "--workers", "2"]
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", MDWE_EXEC, *serve],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            _wait_ready(process, log, admin)
            yield process, phone, admin
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[str], log: Path, admin: int) -> None:
    for _ in range(300):  # bounded: 30 s at most
        if process.poll() is not None:
            pytest.fail(f"provisiond exited under MDWE:\n{log.read_text()}")
        try:
            _get(f"http://127.0.0.1:{admin}/api/v1/openapi.json")
            if _workers(process.pid):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    pytest.fail(f"provisiond did not start under MDWE:\n{log.read_text()}")


def test_the_server_runs_without_writable_executable_memory(
    mdwe_server: tuple[subprocess.Popen[str], int, int],
) -> None:
    process, phone, _admin = mdwe_server
    ua = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
    # Several requests: SO_REUSEPORT spreads them over both processes.
    statuses = [_get(f"http://127.0.0.1:{phone}/y000000000000.cfg", ua) for _ in range(20)]
    assert statuses == [200] * 20
    assert process.poll() is None
    assert len(_workers(process.pid)) == 1, "the --workers child is alive"


def _workers(pid: int) -> list[int]:
    """The `--workers` children of `pid` (multiprocessing's spawned processes)."""
    return [child for child in _children(pid) if "spawn_main" in _cmdline(child)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""
