"""Running wrk for the HTTP benchmarks, and what each run cost the server and the client.

- `Job`: one wrk command (URL, Lua script and its arguments, threads, connections, CPUs) and
  the CPUs wrk may use (`capacity`), against which its own CPU time tells whether wrk, not the
  server, was the bottleneck;
- `measure`: one run, with the server tree's CPU seconds (and, under a quota, how often the
  cgroup was throttled): req/s, latency percentiles, CPU per request, and the Lua script's
  body-check counters, read from the ``BENCH_RESULT {json}`` line its done() prints;
- `ladder`/`store`: when wrk saturated against a server, the same mode again with every
  server under a CPU quota (0.5, then 0.25 CPU), so that the server is the bottleneck;
- `failures`, `loud`, `saturation_note`, `disturbed`: helpers shared by http_storm,
  http_workers and http_layers.
"""

from __future__ import annotations

import json
import resource
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import common
import servers
from cgroups import CpuGroup

SATURATED = 0.9  # wrk at >= 90 % of the CPUs it was given: the client is the bottleneck


@dataclass(frozen=True)
class Job:
    """One wrk run's command line."""

    port: int
    script: Path
    script_args: list[str]
    duration: int
    connections: int
    threads: int
    cpus: str | None  # taskset list for wrk, None: anywhere
    capacity: float  # CPUs wrk may use (its pinned CPUs, or what quotas leave it)
    close: bool = False  # a new connection per request (-H "Connection: close")
    path: str = "/"
    extra: list[str] = field(default_factory=list)
    saturated_at: float = SATURATED  # share of `capacity` from which wrk is the bottleneck

    def command(self) -> list[str]:
        """The wrk command line (taskset prefix included)."""
        cmd = [*common.pin(self.cpus), "wrk", "-t", str(self.threads), "-c", str(self.connections)]
        cmd += ["-d", f"{self.duration}s", "--timeout", "5s", "-s", str(self.script), *self.extra]
        if self.close:
            cmd += ["-H", "Connection: close"]
        return [*cmd, f"http://127.0.0.1:{self.port}{self.path}", "--", *self.script_args]


def run(job: Job) -> dict[str, Any]:
    """One wrk run: the Lua script's BENCH_RESULT plus req/s and wrk's own CPU use."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_before = servers.cpu_busy(job.cpus)
    retrans_before = tcp_retransmits()
    out = subprocess.run(job.command(), capture_output=True, text=True, timeout=job.duration + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy_after = servers.cpu_busy(job.cpus)
    result_retrans = tcp_retransmits() - retrans_before
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cpu_pct"] = 100 * client_cpu / seconds
    result["client_capacity_cpus"] = job.capacity
    result["client_saturated"] = client_cpu / seconds >= job.saturated_at * job.capacity
    result["client_saturated_at"] = job.saturated_at
    if busy_before is not None and busy_after is not None:
        # Everything that ran on wrk's CPUs (its softirq network work included).
        result["client_cpus_busy_pct"] = 100 * (busy_after - busy_before) / seconds
    # Machine-wide (other traffic counts too): on loopback, retransmissions are mostly SYNs
    # that met a TIME_WAIT socket of the server's, each a connection stalled for a second.
    result["tcp_retransmits_machine"] = result_retrans
    result["wrk_threads"] = job.threads
    result["connections"] = job.connections
    return result


def measure(
    job: Job,
    pid: int,
    group: CpuGroup | None = None,
    server_cpus: str | None = None,
    allowance: float | None = None,
) -> dict[str, Any]:
    """wrk against the server tree rooted at `pid`, with that tree's CPU seconds and memory.

    `server_cpus` (the server's own CPUs, apart from wrk's): their busy time is recorded too;
    much more of it than the server's own CPU time means something else ran there (another
    process, or kernel network work not charged to the server) and disturbed the figure.
    `allowance`: the CPUs the server may use (its quota, or its CPUs); with it, `limit` says
    what held the rate: "wrk", "server", or "neither" (latency, the kernel, other load).

    A server may go on working after the load (batched writes, deferred bookkeeping): the run
    ends only when its tree is idle again (`settle`), so that its leftover work neither
    escapes its cost nor lands in the next server's run. The per-request CPU figures include
    that trailing CPU (`server_cpu_after_s`; `server_cpu_pct` is the load only).
    """
    settle(pid)  # whatever came before is not this run's
    before = servers.tree_usage(pid)
    busy_before = servers.cpu_busy(server_cpus)
    throttled = group.throttling() if group is not None else None
    result = run(job)
    after = servers.tree_usage(pid)
    busy_after = servers.cpu_busy(server_cpus)
    seconds = result["duration_us"] / 1e6
    cpu = after.cpu_s - before.cpu_s
    if busy_before is not None and busy_after is not None:
        result["server_cpus_busy_pct"] = 100 * (busy_after - busy_before) / seconds
    result["settle_s"], result["settled"] = settle(pid)
    trailing = servers.tree_usage(pid).cpu_s - after.cpu_s
    result["server_processes"] = after.processes
    result["server_cpu_s"] = cpu
    result["server_cpu_after_s"] = trailing
    result["server_cpu_pct"] = 100 * cpu / seconds
    total = cpu + trailing
    result["requests_per_server_cpu_s"] = result["requests"] / total if total > 0 else None
    result["server_cpu_us_per_request"] = (
        1e6 * total / result["requests"] if result["requests"] else None
    )
    result["server_rss_mb"] = after.rss_mb
    result["server_pss_mb"] = after.pss_mb
    if group is not None and throttled is not None:
        spent = group.throttling().since(throttled)
        result["throttled_periods_share"] = spent.share
        result["throttled_s"] = spent.throttled_s
    result["failures"] = failures(result)
    if allowance is not None:
        result["server_allowance_cpus"] = allowance
        result["server_saturated"] = cpu / seconds >= job.saturated_at * allowance
    result["limit"] = limit(result)
    return result


def settle(
    pid: int, quiet: float = 0.05, window_s: float = 0.5, most_s: float = 180.0
) -> tuple[float, bool]:
    """Wait until the tree of `pid` uses under `quiet` of a CPU over `window_s`; returns the
    seconds waited and whether it got quiet within `most_s`."""
    started = time.monotonic()
    while time.monotonic() - started < most_s:
        before = servers.tree_usage(pid).cpu_s
        time.sleep(window_s)
        if servers.tree_usage(pid).cpu_s - before < quiet * window_s:
            return time.monotonic() - started, True
    return time.monotonic() - started, False


def limit(result: dict[str, Any]) -> str:
    """What held the rate of a run: "wrk", "server", "neither", or "?" (unknown)."""
    if result["client_saturated"]:
        return "wrk"
    if "server_saturated" not in result:
        return "?"
    return "server" if result["server_saturated"] else "neither"


def tcp_retransmits() -> int:
    """The machine's TCP RetransSegs counter (/proc/net/snmp)."""
    lines = [ln.split() for ln in Path("/proc/net/snmp").read_text().splitlines()]
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names[0] == "Tcp:" and "RetransSegs" in names:
            return int(values[names.index("RetransSegs")])
    return 0


def failures(result: dict[str, Any]) -> int:
    """Responses that failed a check, non-200s, refused logins and timeouts (socket errors are
    reported apart: a closed connection is not a wrong answer)."""
    keys = ("wrong_body", "unpaired", "not_200", "auth_refused")
    return int(sum(result.get(k, 0) for k in keys) + result["errors"]["timeout"])


def socket_errors(result: dict[str, Any]) -> int:
    """connect/read/write errors wrk counted."""
    return int(sum(result["errors"][k] for k in ("connect", "read", "write")))


def loud(lines: list[str]) -> None:
    """A warning that must not be missed in a scrolling log."""
    width = max(len(line) for line in lines) + 4
    common.print("!" * width)
    for line in lines:
        common.print(f"! {line}")
    common.print("!" * width)


def saturation_note(result: dict[str, Any], name: str) -> str:
    """One line: how much of its CPUs wrk used against `name`."""
    pct = result["client_cpu_pct"]
    cap = result["client_capacity_cpus"]
    return (
        f"wrk used {pct:.0f}% CPU against {name}, {pct / cap:.0f}% of the {cap:g} CPU(s) it was "
        f"given (threshold {result['client_saturated_at']:.0%})"
    )


def disturbed(result: dict[str, Any]) -> float:
    """Percentage points of the server CPUs' busy time not charged to the server (0 when
    unknown): other processes, or network work the kernel did outside the server's time."""
    busy = result.get("server_cpus_busy_pct")
    return max(0.0, busy - result["server_cpu_pct"]) if busy is not None else 0.0


QUOTA_STEPS = (0.5, 0.25)  # CPUs per server for the re-measures, tried in turn
Measured = dict[str, dict[str, Any]]  # server name -> its run


def ladder(
    mode: str,
    measure: Callable[[float | None], Measured],
    fixed: float | None,
    problem: str | None,
) -> list[tuple[float | None, Measured]]:
    """Measure a mode; while any server was not the bottleneck of its run (wrk was, or
    neither was: other load, the kernel's connection handling), again with every server under
    a smaller quota (QUOTA_STEPS), which makes the servers the bottleneck. `fixed`: every run
    under that quota, no ladder; `problem`: why there are no cgroups (no ladder either).
    Returns each step's (quota, runs): the last one is the run the verdicts use."""
    steps: list[tuple[float | None, Measured]] = [(fixed, measure(fixed))]
    for quota in (*QUOTA_STEPS, None):
        runs = steps[-1][1]
        hot = [name for name, r in runs.items() if r["limit"] not in ("server", "?")]
        hot += [n for n, r in runs.items() if r["limit"] == "?" and r["client_saturated"]]
        if not hot:
            return steps
        where = f" under a quota of {steps[-1][0]:g} CPU" if steps[-1][0] else ""
        lines = [f"{mode}{where}: NOT SERVER-BOUND against {', '.join(hot)}"]
        lines += [limit_note(runs[name], name) for name in hot]
        if fixed is not None or problem or quota is None:
            why = problem or (
                f"--server-quota {fixed:g} was given" if fixed else "no smaller quota to try"
            )
            lines.append(f"no (further) re-measure: {why}; ratios from this run are not firm")
            loud(lines)
            return steps
        lines.append(f"re-measuring {mode} with every server limited to {quota:g} CPU")
        loud(lines)
        steps.append((quota, measure(quota)))
    return steps


def limit_note(result: dict[str, Any], name: str) -> str:
    """One line: why a run was not held by its server."""
    if result["client_saturated"]:
        return "WRK IS THE BOTTLENECK: " + saturation_note(result, name)
    allowance = result.get("server_allowance_cpus")
    return (
        f"neither wrk ({result['client_cpu_pct']:.0f}% CPU) nor {name} "
        f"({result['server_cpu_pct']:.0f}% CPU of {allowance:g}) was saturated: the rate was set "
        f"elsewhere (other load: {disturbed(result):.0f} points on the server CPUs; the kernel)"
    )


def store(
    runs: dict[str, dict[str, Any]], mode: str, steps: list[tuple[float | None, Measured]]
) -> None:
    """Keep a ladder's runs: ``mode/name`` without a quota, ``mode/name/quota`` for the last
    quota run (the verdicts' run), ``mode/name/quota-0.5`` for an earlier one."""
    for index, (quota, measured) in enumerate(steps):
        last = index == len(steps) - 1
        suffix = "" if quota is None else ("/quota" if last else f"/quota-{quota:g}")
        for name, result in measured.items():
            runs[f"{mode}/{name}{suffix}"] = result
