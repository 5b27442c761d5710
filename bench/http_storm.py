"""HTTP config storm: wrk against provisiond and against nginx serving the same files.

    bash bench/setup.sh && .venv/bin/python bench/http_storm.py [--quick] [--devices 10000]

10,000 Yealink T46S devices (bench/common.py). Every device's file is first rendered by
provisiond's own pipeline in-process and written to disk for nginx, so both servers send the
same bytes. Both servers then run side by side on the same CPUs (taskset); each is first
checked byte for byte on every file (which also warms provisiond's caches: the "warm" rate),
then loaded with wrk and bench/http_storm.lua (a random MAC per request, each response body
checked for that device's extension line, MAC and length) twice: with keep-alive, and with a
new connection per request (``-H "Connection: close"``). Printed: req/s, p50/p99 latency,
server CPU, the provisiond/nginx ratio and the issue's target. Results: bench/out/http_storm.json.
Exit 1 only when a check failed (a wrong body, a non-200, a timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import common
import servers
from common import print

LUA = Path(__file__).with_name("http_storm.lua")
TARGETS = {"keepalive": 0.6, "close": 0.5}
VERIFY_CONCURRENCY = 64


def parse_args() -> argparse.Namespace:
    """Command line; the defaults are the issue's sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="wrk threads (default: client CPUs)")
    parser.add_argument("--modes", default="keepalive,close", help="keepalive,close")
    parser.add_argument("--seed", type=int, default=1)
    common.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.duration = min(args.devices, 1_000), min(args.duration, 3)
    return args


async def verify_all(port: int, bodies: dict[str, bytes]) -> dict[str, int]:
    """GET every device's file once, compare byte for byte; counts of ok / wrong / errors."""
    counts = {"ok": 0, "wrong": 0, "error": 0}
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(mac: str, expected: bytes) -> None:
            headers = {"User-Agent": common.USER_AGENT.format(mac=mac)}
            async with gate:
                try:
                    url = f"http://127.0.0.1:{port}/{common.config_path(mac)}"
                    async with session.get(url, headers=headers) as response:
                        body = await response.read()
                        good = response.status == 200 and body == expected
                        counts["ok" if good else "wrong"] += 1
                except (aiohttp.ClientError, TimeoutError):
                    counts["error"] += 1

        await asyncio.gather(*(one(mac, body) for mac, body in bodies.items()))
    return counts


def run_wrk(args: argparse.Namespace, port: int, devices: Path, mode: str) -> dict[str, Any]:
    """One wrk run; the Lua script's BENCH_RESULT line plus wrk's own CPU time."""
    _, client_cpus, _ = common.resolve_cpus(args)
    threads = args.threads or (len(common.parse_cpus(client_cpus)) if client_cpus else 2)
    cmd = [*common.pin(client_cpus), "wrk", "-t", str(threads), "-c", str(args.connections)]
    cmd += ["-d", f"{args.duration}s", "--timeout", "5s", "-s", str(LUA)]
    if mode == "close":
        cmd += ["-H", "Connection: close"]
    cmd += [f"http://127.0.0.1:{port}/", "--", str(devices), common.NEEDLE, str(args.seed)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 120)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if out.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}{out.stderr}")
    result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds
    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["client_cpu_pct"] = 100 * client_cpu / seconds
    result["wrk_threads"] = threads
    return result


def measure(
    args: argparse.Namespace, port: int, pid: int, devices: Path, mode: str
) -> dict[str, Any]:
    """wrk against one server, with the server tree's CPU seconds and memory."""
    before = servers.tree_usage(pid)
    result = run_wrk(args, port, devices, mode)
    after = servers.tree_usage(pid)
    cpu = after.cpu_s - before.cpu_s
    result["server_cpu_pct"] = 100 * cpu / (result["duration_us"] / 1e6)
    result["requests_per_server_cpu_s"] = result["requests"] / cpu if cpu > 0 else None
    result["server_rss_mb"] = after.rss_mb
    result["server_pss_mb"] = after.pss_mb
    result["failures"] = failures(result)
    return result


def failures(result: dict[str, Any]) -> int:
    """Responses that failed a check, non-200s and timeouts; socket errors are reported apart."""
    return int(
        result["wrong_body"] + result["unpaired"] + result["not_200"] + result["errors"]["timeout"]
    )


def report(runs: dict[str, dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Print the table and the ratios; return the ratios for the JSON."""
    rows = []
    for mode in modes:
        for name in ("provisiond", "nginx"):
            r = runs[f"{mode}/{name}"]
            errs = sum(r["errors"][k] for k in ("connect", "read", "write"))
            rows.append(
                [
                    f"{mode:<9} {name}",
                    r["rps"],
                    r["latency_us"]["p50"] / 1000,
                    r["latency_us"]["p99"] / 1000,
                    r["requests"],
                    r["failures"],
                    errs,
                    r["server_cpu_pct"],
                    r["client_cpu_pct"],
                    r["server_rss_mb"],
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
        "server CPU%",
        "wrk CPU%",
        "server RSS MB",
    ]
    print(common.table(headers, rows))
    ratios: dict[str, Any] = {}
    for mode in modes:
        ours, ref = runs[f"{mode}/provisiond"], runs[f"{mode}/nginx"]
        ratio = ours["rps"] / ref["rps"]
        target = TARGETS[mode]
        per_cpu = _per_cpu_ratio(ours, ref)
        ratios[mode] = {"rps_ratio": ratio, "target": target, "per_server_cpu_ratio": per_cpu}
        print(
            f"{mode:<9} provisiond / nginx = {ratio:.2f}x req/s (target >= {target}x: "
            f"{common.verdict(ratio, target)}); per server CPU-second {per_cpu or 0:.2f}x"
        )
        if ref["client_cpu_pct"] > 90:
            print(
                f"          note: wrk used {ref['client_cpu_pct']:.0f}% of its CPU against "
                "nginx, so nginx's rate is a lower bound and the ratio an upper bound"
            )
    return ratios


def _per_cpu_ratio(ours: dict[str, Any], ref: dict[str, Any]) -> float | None:
    a, b = ours["requests_per_server_cpu_s"], ref["requests_per_server_cpu_s"]
    return a / b if a and b else None


def run(args: argparse.Namespace, tmp: Path) -> int:
    """The whole benchmark; returns the exit code."""
    server_cpus, client_cpus, workers = common.resolve_cpus(args)
    modes = [m for m in args.modes.split(",") if m]
    data: dict[str, Any] = {"benchmark": "http_storm", "env": common.environment(args)}
    started = time.perf_counter()
    fleet = common.create_fleet(tmp, args.devices)
    bodies = common.prerender(fleet, range(args.devices), "http")
    common.write_files(tmp / "www", bodies)
    devices = tmp / "devices.txt"
    devices.write_text(
        "".join(
            f"{common.device_mac(i)} {common.device_extension(i)} "
            f"{len(bodies[common.device_mac(i)])}\n"
            for i in range(args.devices)
        )
    )
    print(
        f"{args.devices:,} devices created and pre-rendered in {time.perf_counter() - started:.1f}"
        f" s; server CPUs {server_cpus or 'any'}, client CPUs {client_cpus or 'any'}, "
        f"workers {workers}"
    )
    common.set_own_cpus(client_cpus)
    with (
        servers.provisiond(fleet, workers, server_cpus) as server,
        servers.nginx(tmp / "www", workers, server_cpus) as (nginx_port, nginx_pid),
    ):
        servers.wait_tcp(fleet.http_port, server.check_alive)
        targets = {"provisiond": (fleet.http_port, server.pid), "nginx": (nginx_port, nginx_pid)}
        data["verify"] = {}
        for name, (port, _) in targets.items():
            t0 = time.perf_counter()
            counts = common.run_async(verify_all(port, bodies))
            print(
                f"{name}: every file fetched once and compared byte for byte: {counts} "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            data["verify"][name] = counts
        runs: dict[str, dict[str, Any]] = {}
        for mode in modes:
            for name, (port, pid) in targets.items():
                print(f"wrk {mode} -> {name} ({args.duration} s, {args.connections} connections)")
                runs[f"{mode}/{name}"] = measure(args, port, pid, devices, mode)
        server.check_alive()
    data["runs"], data["ratios"] = runs, report(runs, modes)
    bad = sum(r["failures"] for r in runs.values())
    bad += sum(c["wrong"] + c["error"] for c in data["verify"].values())
    data["correct"] = bad == 0
    print(f"results: {common.write_result('http_storm', data)}")
    if bad:
        print(f"FAILED: {bad} wrong or failed responses")
    return 1 if bad else 0


def main() -> None:
    """Entry point."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        Path(tmp).chmod(0o755)  # nginx runs as nobody
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
