"""HTTP layers: what each candidate layer costs by itself, against nginx, in the same run.

    .venv/bin/python bench/http_layers.py [--quick] [--modes keepalive,close]

Three bare servers answer every request with the same cached ~1 KB body (bench/
layer_servers.py): (a) aiohttp's low-level server (`aiohttp.web_server.Server`) under uvloop,
(b) an asyncio Protocol on httptools under uvloop, (c) nginx serving a file of the same bytes
(the tuned configuration of servers.py, one worker). One process each (nginx: master and one
worker), all pinned to the same CPU, wrk on the client CPUs; every response body is compared
with the expected bytes (bench/http_layers.lua). Keep-alive, then a new connection per request.
Printed: req/s, p50/p99, server CPU microseconds per request, and the ratios to nginx. As in
http_storm.py, a mode where wrk used >= 90 % of its CPUs is measured again with every server
limited to a CPU quota (0.5, then 0.25 CPU; or --server-quota for every run), and the ratios
use the last such run.
Results: bench/out/http_layers.json. Exit 1 only when a check failed.
"""

from __future__ import annotations

import argparse
import http.client
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import cgroups
import common
import servers
import wrkrun
from common import print

HERE = Path(__file__).resolve().parent
LUA = HERE / "http_layers.lua"
LAYERS = ("aiohttp", "httptools")
BODY_NAME = "body.cfg"


def body_bytes(size: int = 1024) -> bytes:
    """A config-like text body of exactly `size` bytes (deterministic)."""
    text, n = "", 0
    while len(text) < size:
        text += f"setting.{n:04d} = value-{n * 7919 % 100000:05d}\n"
        n += 1
    return text.encode()[:size]


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--modes", default="keepalive,close")
    parser.add_argument("--server-quota", type=float, default=None, help="CPUs per server, always")
    parser.add_argument("--quota-period-us", type=int, default=cgroups.DEFAULT_PERIOD_US)
    parser.add_argument("--saturated-at", type=float, default=wrkrun.SATURATED)
    common.add_common_args(parser)  # --workers is ignored: one process per server here
    common.one_server_cpu_defaults(parser)
    args = parser.parse_args()
    if args.quick:
        args.duration = min(args.duration, 3)
    return args


@contextmanager
def layer_server(kind: str, body_file: Path, cpu: str | None) -> Iterator[tuple[int, int]]:
    """A bare server of layer_servers.py; yields (port, pid)."""
    port = common.free_port()
    cmd = [*common.pin(cpu), sys.executable, str(HERE / "layer_servers.py"), kind, str(port)]
    proc = subprocess.Popen([*cmd, str(body_file)], stderr=subprocess.PIPE)
    try:

        def alive() -> None:
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"{kind} server exited: {err}")

        servers.wait_tcp(port, alive, timeout=30)
        yield port, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def check_once(port: int, body: bytes) -> bool:
    """One GET with Python's http.client: exactly the body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/" + BODY_NAME)
        response = conn.getresponse()
        return response.status == 200 and response.read() == body
    finally:
        conn.close()


class Layers:
    """The servers, and their runs."""

    def __init__(self, args: argparse.Namespace, targets: dict[str, tuple[int, int]]) -> None:
        self.args = args
        server, self.client_cpus, _ = common.resolve_cpus(args)
        self.server_cpu = str(min(common.parse_cpus(server))) if server else None
        n_client = len(common.parse_cpus(self.client_cpus)) if self.client_cpus else 0
        self.capacity = float(n_client or 2)
        self.targets = targets
        self.runs: dict[str, dict[str, Any]] = {}
        self.cgroup_problem = cgroups.probe()

    def measure(self, mode: str, quota: float | None, body_file: Path) -> dict[str, Any]:
        """Every server once, under `quota` (own cgroup each) when given."""
        found: dict[str, Any] = {}
        with ExitStack() as stack:
            for name, (port, pid) in self.targets.items():
                group = None
                if quota is not None:
                    group = cgroups.create(f"bench-layer-{name}")
                    stack.callback(group.release)
                    group.add(servers.tree_pids(pid))
                    group.set_quota(quota, self.args.quota_period_us)
                job = wrkrun.Job(
                    port=port,
                    script=LUA,
                    script_args=[str(body_file)],
                    duration=self.args.duration,
                    connections=self.args.connections,
                    threads=max(1, int(self.capacity)),
                    cpus=self.client_cpus,
                    capacity=self.capacity,
                    close=mode == "close",
                    path="/" + BODY_NAME,
                    saturated_at=self.args.saturated_at,
                )
                label = f" (quota {quota:g} CPU)" if quota else ""
                print(f"wrk {mode} -> {name}{label} ({self.args.duration} s)")
                apart = self.server_cpu if self.client_cpus else None
                result = wrkrun.measure(job, pid, group, apart, allowance=quota or 1.0)
                result["quota_cpus"] = quota
                found[name] = result
        return found

    def mode(self, mode: str, body_file: Path) -> None:
        """A mode, again under a quota while wrk saturates against any server."""
        steps = wrkrun.ladder(
            mode,
            lambda quota: self.measure(mode, quota, body_file),
            self.args.server_quota,
            self.cgroup_problem,
        )
        wrkrun.store(self.runs, mode, steps)


def report(runs: dict[str, dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """The table, with each run's ratios to nginx's run in the same mode and condition."""
    rows, ratios = [], {}
    for key, r in runs.items():
        mode, name, *quota = key.split("/")
        ref = runs.get("/".join([mode, "nginx", *quota]))  # same mode and quota step
        rps_ratio = r["rps"] / ref["rps"] if ref else None
        cpu = r["server_cpu_us_per_request"]
        cpu_ratio = cpu / ref["server_cpu_us_per_request"] if ref and cpu else None
        ratios[key] = {"rps_vs_nginx": rps_ratio, "cpu_per_request_vs_nginx": cpu_ratio}
        rows.append(
            [
                f"{mode:<9} {name}",
                f"quota {r['quota_cpus']:g}" if quota else "-",
                r["rps"],
                r["latency_us"]["p50"] / 1000,
                r["latency_us"]["p99"] / 1000,
                r["failures"],
                wrkrun.socket_errors(r),
                r["server_cpu_pct"],
                cpu or 0.0,
                f"{r['client_cpu_pct']:.0f}{' SAT' if r['client_saturated'] else ''}",
                r["limit"],
                f"{wrkrun.disturbed(r):.0f}" if "server_cpus_busy_pct" in r else "-",
                f"{rps_ratio:.2f}x" if rps_ratio else "-",
                f"{cpu_ratio:.2f}x" if cpu_ratio else "-",
            ]
        )
    headers = [
        "run",
        "server CPU",
        "req/s",
        "p50 ms",
        "p99 ms",
        "failed",
        "sock err",
        "server CPU%",
        "CPU us/req",
        "wrk CPU%",
        "limit",
        "other%",
        "req/s vs nginx",
        "CPU/req vs nginx",
    ]
    print(common.table(headers, rows))
    print(
        "(CPU us/req: the server's CPU time per request; 'vs nginx': against nginx in the same "
        "mode and condition; SAT: wrk was the bottleneck, that server's figures are floors; "
        "other%: busy time of the server CPU not charged to the server; limit: wrk, server or "
        "neither, as in http_storm.py)"
    )
    for mode in modes:
        used = "/quota" if f"{mode}/nginx/quota" in runs else ""
        line = ", ".join(
            f"{name} {ratios[f'{mode}/{name}{used}']['rps_vs_nginx']:.2f}x"
            for name in LAYERS
            if f"{mode}/{name}{used}" in ratios
        )
        loose = [
            f"{name} ({runs[key]['limit']})"
            for name in (*LAYERS, "nginx")
            if (key := f"{mode}/{name}{used}") in runs and runs[key]["limit"] != "server"
        ]
        firm = f"  NOT FIRM, not held by the server: {', '.join(loose)}" if loose else ""
        print(f"{mode} ({'quota' if used else 'no quota'}): req/s vs nginx: {line}{firm}")
    return ratios


def main() -> None:
    """Entry point."""
    args = parse_args()
    modes = [m for m in args.modes.split(",") if m]
    body = body_bytes()
    data: dict[str, Any] = {"benchmark": "http_layers", "env": common.environment(args)}
    with tempfile.TemporaryDirectory(prefix="bench-layers-") as tmp:
        root = Path(tmp)
        root.chmod(0o755)  # nginx runs as nobody
        common.write_files(root / "www", {"body": body})
        body_file = root / "www" / BODY_NAME
        server_cpus, client_cpus, _ = common.resolve_cpus(args)
        cpu = str(min(common.parse_cpus(server_cpus))) if server_cpus else None
        common.set_own_cpus(client_cpus)
        with ExitStack() as stack:
            targets = {
                name: stack.enter_context(layer_server(name, body_file, cpu)) for name in LAYERS
            }
            targets["nginx"] = stack.enter_context(servers.nginx(root / "www", 1, cpu))
            checked = {name: check_once(port, body) for name, (port, _) in targets.items()}
            print(f"one GET each, compared byte for byte: {checked}; all pinned to CPU {cpu}")
            layers = Layers(args, targets)
            for mode in modes:
                layers.mode(mode, body_file)
    data["runs"], data["checked"] = layers.runs, checked
    data["ratios"] = report(layers.runs, modes)
    bad = sum(r["failures"] for r in layers.runs.values()) + sum(not ok for ok in checked.values())
    data["correct"] = bad == 0
    print(f"results: {common.write_result('http_layers', data)}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
