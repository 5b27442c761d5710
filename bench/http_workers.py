"""Workers: ``provisiond serve --workers 2`` on two CPUs against ``--workers 1`` on one.

    .venv/bin/python bench/http_workers.py [--quick] [--quota 0.5] [--emulate]

The issue's target: two workers on two CPUs serve >= 1.7 x what one worker serves on one,
with the load generator on other CPUs. The same secure fleet, device list and Lua checks as
bench/http_storm.py (every body checked), keep-alive and a new connection per request.
Extra workers are children of the first process sharing its port (SO_REUSEPORT,
provisiond/server.py); they are found in /proc (their command line runs multiprocessing's
``spawn_main``) and pinned, every thread, to their own CPU.

With three CPUs or more: one worker on CPU a, against two on CPUs a and b; wrk on the rest.
With two (or with --emulate), there is no CPU left for wrk, so this is an EMULATION: every
server process gets a CPU quota Q (--quota, default 0.5) in its own cgroup, with the highest
weight so that it gets its quota first: one worker on CPU 0 with Q, against two workers (Q
each) on CPU 0 and CPU 1; wrk runs on both CPUs and gets what is left (2 - Q, then 2 - 2Q).
A worker limited to Q of a CPU stands for a whole CPU; what the emulation cannot show is
contention between the workers for memory bandwidth and caches of two busy CPUs, nor wrk's
interference on the same cores (its threads run beside the servers). Results:
bench/out/http_workers.json. Exit 1 only when a check failed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cgroups
import common
import http_checks
import servers
import wrkrun
from common import print
from http_storm import LUA, write_devices

TARGET = 1.7
MODES = ("keepalive", "close")
WARMUP_S = 5  # every worker renders (and caches) the files before the measured runs


@dataclass(frozen=True)
class Layout:
    """Where the server processes and wrk run, for one worker count."""

    workers: int
    cpus: list[int]  # the CPU of each server process, in process order (primary first)
    quota: float | None  # per process, in CPUs (the emulation), or None
    client_cpus: str
    capacity: float  # CPUs left to wrk

    def describe(self) -> str:
        """One line for the log."""
        each = f", quota {self.quota:g} CPU each" if self.quota else ""
        cpus = ",".join(map(str, self.cpus))
        return (
            f"{self.workers} worker(s) on CPU {cpus}{each}; wrk on CPUs {self.client_cpus} "
            f"({self.capacity:g} CPU left to it)"
        )


def layouts(args: argparse.Namespace) -> tuple[list[Layout], str | None]:
    """The two layouts, and why this is an emulation (None when it is not)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 3 and not args.emulate:
        rest = ",".join(map(str, cpus[2:]))
        n = float(len(cpus) - 2)
        return [Layout(1, cpus[:1], None, rest, n), Layout(2, cpus[:2], None, rest, n)], None
    if len(cpus) < 2:
        raise SystemExit("http_workers needs at least two CPUs")
    reason = (
        f"this machine has {len(cpus)} CPUs: no third CPU for wrk"
        if len(cpus) < 3
        else "--emulate given"
    )
    q, both = args.quota, ",".join(map(str, cpus[:2]))
    return [
        Layout(1, cpus[:1], q, both, 2 - q),
        Layout(2, cpus[:2], q, both, 2 - 2 * q),
    ], reason


def parse_args() -> argparse.Namespace:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quota", type=float, default=0.5, help="CPUs per process (emulation)")
    parser.add_argument("--quota-period-us", type=int, default=cgroups.DEFAULT_PERIOD_US)
    parser.add_argument("--emulate", action="store_true", help="quotas even with 3+ CPUs")
    parser.add_argument("--saturated-at", type=float, default=wrkrun.SATURATED)
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per mode and layout, alternating (median)"
    )
    args = parser.parse_args()
    if args.quick:
        args.devices, args.duration = min(args.devices, 1_000), min(args.duration, 3)
    return args


def listeners(port: int) -> int:
    """Listening TCP sockets on 127.0.0.1:`port` (one per serving process)."""
    wanted = f"0100007F:{port:04X}"
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted and fields[3] == "0A":
            count += 1
    return count


def worker_pids(primary: int) -> list[int]:
    """The `--workers` children of `primary` (not multiprocessing's resource tracker)."""
    found = []
    for pid in servers.tree_pids(primary):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if pid != primary and b"spawn_main" in cmdline:
            found.append(pid)
    return sorted(found)


def pin_all_threads(pid: int, cpu: int) -> None:
    """sched_setaffinity on every thread of `pid` (taskset without -a pins one thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {cpu})
        except (ProcessLookupError, PermissionError):
            continue


def process_cpu_s(pid: int) -> float:
    """utime + stime of one process (its own threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_workers(fleet: common.Fleet, server: servers.Provisiond, n: int) -> list[int]:
    """Wait until `n` processes listen on the phone port; the serving pids, primary first."""
    deadline = time.monotonic() + servers.READY_TIMEOUT_S
    while time.monotonic() < deadline:
        server.check_alive()
        workers = worker_pids(server.pid)
        if listeners(fleet.http_port) >= n and len(workers) >= n - 1:
            return [server.pid, *workers[: n - 1]]
        time.sleep(0.05)
    raise TimeoutError(f"{n} listeners on port {fleet.http_port} never appeared")


def place(stack: ExitStack, layout: Layout, pids: list[int], period_us: int) -> list[Any]:
    """Pin each serving process to its CPU and, in the emulation, into its quota group.

    The first group takes the primary's whole tree (resource tracker included); each further
    worker is moved on into a group of its own.
    """
    groups: list[Any] = []
    for index, (pid, cpu) in enumerate(zip(pids, layout.cpus, strict=True)):
        pin_all_threads(pid, cpu)
        if layout.quota is None:
            continue
        group = cgroups.create(f"bench-w{layout.workers}-p{index}", favoured=True)
        stack.callback(group.release)
        group.add(servers.tree_pids(pid) if index == 0 else [pid])
        group.set_quota(layout.quota, period_us)
        groups.append(group)
    return groups


@dataclass
class Config:
    """One running server of a layout, ready to be measured."""

    layout: Layout
    fleet: common.Fleet
    devices: Path
    server: servers.Provisiond
    pids: list[int]  # serving processes, primary first
    groups: list[cgroups.CpuGroup]
    verify: dict[str, int]
    warmup_failures: int = 0


def start(
    stack: ExitStack,
    args: argparse.Namespace,
    layout: Layout,
    fleet: common.Fleet,
    bodies: dict[str, bytes],
    devices: Path,
) -> Config:
    """Start a layout's server, place its processes, check every file byte for byte."""
    print(layout.describe())
    server = stack.enter_context(servers.provisiond(fleet, layout.workers, str(layout.cpus[0])))
    servers.wait_tcp(fleet.http_port, server.check_alive)
    pids = wait_workers(fleet, server, layout.workers)
    groups = place(stack, layout, pids, args.quota_period_us)
    verify = common.run_async(http_checks.verify_all(fleet.http_port, bodies))
    print(f"  every file fetched once and compared byte for byte: {verify}")
    return Config(layout, fleet, devices, server, pids, groups, verify)


def job(args: argparse.Namespace, config: Config, mode: str, duration: int) -> wrkrun.Job:
    """The wrk command against one layout's server."""
    layout = config.layout
    return wrkrun.Job(
        port=config.fleet.http_port,
        script=LUA,
        script_args=[
            str(config.devices),
            common.NEEDLE,
            str(args.seed),
            "plain",
            str(common.BARE_EVERY),
        ],
        duration=duration,
        connections=args.connections,
        threads=len(common.parse_cpus(layout.client_cpus)),
        cpus=layout.client_cpus,
        capacity=layout.capacity,
        close=mode == "close",
        saturated_at=args.saturated_at,
    )


def measure(args: argparse.Namespace, config: Config, mode: str) -> dict[str, Any]:
    """One wrk run, with each serving process's CPU and each quota group's throttling."""
    print(f"wrk {mode} -> provisiond --workers {config.layout.workers} ({args.duration} s)")
    before = {pid: process_cpu_s(pid) for pid in config.pids}
    throttled = [g.throttling() for g in config.groups]
    layout = config.layout
    allowance = layout.workers * (layout.quota or 1.0)
    result = wrkrun.measure(
        job(args, config, mode, args.duration), config.server.pid, None, None, allowance
    )
    seconds = result["duration_us"] / 1e6
    result["per_process_cpu_pct"] = [
        100 * (process_cpu_s(pid) - before[pid]) / seconds for pid in config.pids
    ]
    result["throttled_periods_share"] = [
        g.throttling().since(t).share for g, t in zip(config.groups, throttled, strict=True)
    ]
    return result


def run_all(args: argparse.Namespace, plans: list[Layout], tmp: Path) -> dict[str, Any]:
    """Both layouts' servers up at once (each idle while the other is measured), runs
    alternating between them, so that a change of load on the machine hits both alike."""
    modes = [m for m in args.modes.split(",") if m]
    first = common.create_fleet(tmp / "fleet1", args.devices, secure=True)
    fleets = [
        first,
        *(common.copy_fleet(first, tmp / f"fleet{i + 2}") for i in range(1, len(plans))),
    ]
    runs: dict[str, Any] = {"layouts": {}, "runs": {}}
    with ExitStack() as stack:
        configs = []
        for layout, fleet in zip(plans, fleets, strict=True):
            bodies = common.prerender(fleet, range(args.devices), "http")
            devices = write_devices(tmp / f"devices{layout.workers}.txt", bodies, args.devices)
            configs.append(start(stack, args, layout, fleet, bodies, devices))
        for config in configs:  # every process renders and caches the files first
            warm = wrkrun.run(job(args, config, "keepalive", min(WARMUP_S, args.duration)))
            config.warmup_failures = wrkrun.failures(warm)
        for mode in modes:
            for rep in range(args.repeat):
                order = configs if rep % 2 == 0 else configs[::-1]
                for config in order:
                    key = f"{mode}/{config.layout.workers}"
                    runs["runs"].setdefault(key, []).append(measure(args, config, mode))
        for config in configs:
            config.server.check_alive()
            runs["layouts"][config.layout.workers] = {
                **config.layout.__dict__,
                "verify": config.verify,
                "warmup_failures": config.warmup_failures,
            }
    return runs


def _median_rps(results: list[dict[str, Any]]) -> float:
    return float(statistics.median(r["rps"] for r in results))


def report(
    runs: dict[str, list[dict[str, Any]]], modes: list[str], emulated: str | None
) -> dict[str, Any]:
    """Table and the scaling verdicts."""
    rows = []
    for key, results in runs.items():
        mode, n = key.split("/")
        for r in results:
            rows.append(
                [
                    f"{mode:<9} --workers {n}",
                    r["rps"],
                    r["latency_us"]["p50"] / 1000,
                    r["latency_us"]["p99"] / 1000,
                    r["requests"],
                    r["failures"],
                    wrkrun.socket_errors(r),
                    "+".join(f"{p:.0f}" for p in r["per_process_cpu_pct"]),
                    r["server_cpu_us_per_request"] or 0.0,
                    f"{r['client_cpu_pct']:.0f}/{100 * r['client_capacity_cpus']:.0f}"
                    + (" SAT" if r["client_saturated"] else ""),
                    "+".join(f"{100 * t:.0f}" for t in r["throttled_periods_share"]) or "-",
                    r["limit"],
                ]
            )
    headers = [
        "run",
        "req/s",
        "p50 ms",
        "p99 ms",
        "requests",
        "failed",
        "sock err",
        "CPU% per process",
        "CPU us/req",
        "wrk CPU%/avail",
        "throttled%",
        "limit",
    ]
    print(common.table(headers, rows))
    print(
        "(CPU% per process: primary first; wrk CPU%/avail: its CPU use and what the layout "
        "leaves it; throttled%: share of quota periods each process's group was stopped)"
    )
    ratios: dict[str, Any] = {}
    for mode in modes:
        one, two = runs[f"{mode}/1"], runs[f"{mode}/2"]
        ratio = _median_rps(two) / _median_rps(one)
        note = ""
        if any(r["client_saturated"] for r in two):
            note = " (a LOWER bound: wrk saturated against two workers; try a smaller --quota)"
        if any(r["client_saturated"] for r in one):
            note = " (NOT meaningful: wrk saturated against one worker; try a smaller --quota)"
        verdict = common.verdict(ratio, TARGET)
        ratios[mode] = {
            "scaling": ratio,
            "target": TARGET,
            "verdict": verdict,
            "note": note or None,
        }
        print(
            f"{mode:<9} --workers 2 / --workers 1 = {ratio:.2f}x req/s "
            f"(target >= {TARGET}x: {verdict}){note}"
        )
    if emulated:
        print(
            f"EMULATION ({emulated}): each server process held to a CPU quota; see the "
            "module docstring and bench/README.md for what this can and cannot show"
        )
    return ratios


def main() -> None:
    """Entry point."""
    args = parse_args()
    plans, emulated = layouts(args)
    if emulated:
        problem = cgroups.probe()
        if problem:
            raise SystemExit(f"the emulation needs cpu cgroups: {problem}")
        wrkrun.loud(
            [
                f"EMULATION: {emulated}.",
                f"Each server process gets a quota of {args.quota:g} CPU (one worker on CPU 0,",
                "then two on CPU 0 and CPU 1); wrk runs on both CPUs with what is left.",
            ]
        )
    modes = [m for m in args.modes.split(",") if m]
    data: dict[str, Any] = {"benchmark": "http_workers", "emulated": emulated}
    data["env"] = {"cpus": os.cpu_count(), "loadavg_before": os.getloadavg(), "quota": args.quota}
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp:
        found = run_all(args, plans, Path(tmp))
    data.update(found)
    data["ratios"] = report(found["runs"], modes, emulated)
    bad = sum(r["failures"] for results in found["runs"].values() for r in results)
    for layout in found["layouts"].values():
        bad += layout["warmup_failures"] + layout["verify"]["wrong"] + layout["verify"]["error"]
    data["correct"] = bad == 0
    print(f"results: {common.write_result('http_workers', data)}")
    if bad:
        print(f"FAILED: {bad} wrong or failed responses")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
