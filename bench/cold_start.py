"""Cold start: seconds from process start to the first 10,000 distinct devices served.

    .venv/bin/python bench/cold_start.py [--quick] [--devices 100000] [--sample 10000]

A fresh database with 100,000 Yealink T46S devices (bench/common.py). 10,000 of them, a
fixed random sample, are rendered in-process by provisiond's own pipeline (the expected
bytes) and written to disk for nginx. Then ``provisiond serve`` is started; as soon as its
phone port accepts a connection, an aiohttp client (64 requests at a time) fetches the 10,000
files and compares each byte for byte. The time is from Popen to the 10,000th verified answer;
RSS/PSS of the process tree afterwards. The same is done with nginx serving the 10,000 files
as the reference (it has nothing to load: its ratio only says how far from "instant" we are).
A request refused while the server is still starting (connection error, 5xx) is retried
(counted); a wrong body is a failure. The database file is in the page cache (just written).
Results: bench/out/cold_start.json. Target: <= 5 s with 100,000 devices.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import common
import servers
from common import print

TARGET_S = 5.0
RETRY_PAUSE_S = 0.01
MAX_TRIES = 1_000  # 10 s of retries per request at most while the server starts


def parse_args(
    description: str = __doc__, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """Command line; the defaults are the issue's sizes. `extra` adds a caller's options."""
    parser = argparse.ArgumentParser(description=description.split("\n\n")[0])
    if extra is not None:
        extra(parser)
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--sample", type=int, default=10_000, help="distinct devices fetched")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    common.add_common_args(parser)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.sample = min(args.devices, 10_000), min(args.sample, 1_000)
    args.sample = min(args.sample, args.devices)
    return args


@dataclass
class Fetched:
    """What a batch of fetches gave: counts and times relative to the process start."""

    ok: int = 0
    wrong: int = 0
    failed: int = 0  # no 200 after MAX_TRIES
    retries: int = 0
    first_s: float | None = None
    last_s: float | None = None


async def fetch_all(
    port: int,
    indices: Sequence[int],
    expected: dict[str, bytes],
    concurrency: int,
    t0: float,
) -> Fetched:
    """GET each device's file; exact bytes when known, else the extension/MAC check."""
    result = Fetched()
    gate = asyncio.Semaphore(concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:

        async def one(index: int) -> None:
            mac = common.device_mac(index)
            async with gate:
                body = await _get(session, port, mac, result)
            if body is None:
                result.failed += 1
                return
            want = expected.get(mac)
            good = (
                body == want
                if want is not None
                else common.body_ok(body, mac, common.device_extension(index))
            )
            if not good:
                result.wrong += 1
                return
            result.ok += 1
            now = time.perf_counter() - t0
            result.first_s = now if result.first_s is None else result.first_s
            result.last_s = now

        await asyncio.gather(*(one(i) for i in indices))
    return result


async def _get(
    session: aiohttp.ClientSession, port: int, mac: str, result: Fetched
) -> bytes | None:
    """The body of a 200, retrying while the server is not ready; None after MAX_TRIES."""
    url = f"http://127.0.0.1:{port}/{common.config_path(mac)}"
    headers = {"User-Agent": common.USER_AGENT.format(mac=mac)}
    for _ in range(MAX_TRIES):
        try:
            async with session.get(url, headers=headers) as response:
                body = await response.read()
                if response.status == 200:
                    return body
                if response.status < 500:
                    return None  # a definite refusal: retrying would not change it
        except (aiohttp.ClientError, TimeoutError):
            pass
        result.retries += 1
        await asyncio.sleep(RETRY_PAUSE_S)
    return None


def cold_provisiond(
    args: argparse.Namespace,
    fleet: common.Fleet,
    sample: Sequence[int],
    bodies: dict[str, bytes],
    then: Callable[[servers.Provisiond], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Start provisiond, time the sample, measure memory; `then` runs while it still serves."""
    server_cpus, _, workers = common.resolve_cpus(args)
    t0 = time.perf_counter()
    server = servers.Provisiond(fleet, workers, server_cpus)
    try:
        accept_s = servers.wait_tcp(fleet.http_port, server.check_alive) - t0
        fetched = common.run_async(fetch_all(fleet.http_port, sample, bodies, args.concurrency, t0))
        usage = servers.tree_usage(server.pid)
        out = {"accept_s": accept_s, **asdict(fetched), "usage": asdict(usage)}
        if then is not None:
            out["then"] = then(server)
        server.check_alive()
    finally:
        server.stop()
    return out


def cold_nginx(
    args: argparse.Namespace, www: Path, sample: Sequence[int], bodies: dict[str, bytes]
) -> dict[str, Any]:
    """The same with nginx over the pre-rendered files."""
    server_cpus, _, workers = common.resolve_cpus(args)
    t0 = time.perf_counter()
    with servers.nginx(www, workers, server_cpus) as (port, pid):
        accept_s = time.perf_counter() - t0
        fetched = common.run_async(fetch_all(port, sample, bodies, args.concurrency, t0))
        usage = servers.tree_usage(pid)
    return {"accept_s": accept_s, **asdict(fetched), "usage": asdict(usage)}


def prepare(
    args: argparse.Namespace, tmp: Path
) -> tuple[common.Fleet, list[int], dict[str, bytes]]:
    """The fleet, the sample and its expected bodies (also written for nginx)."""
    t0 = time.perf_counter()
    fleet = common.create_fleet(tmp, args.devices)
    created = time.perf_counter() - t0
    sample = random.Random(args.seed).sample(range(args.devices), args.sample)
    bodies = common.prerender(fleet, sample, "http")
    common.write_files(tmp / "www", bodies)
    print(
        f"{args.devices:,} devices inserted in {created:.1f} s; {args.sample:,} sampled and "
        f"pre-rendered in {time.perf_counter() - t0 - created:.1f} s"
    )
    return fleet, sample, bodies


def report(runs: dict[str, dict[str, Any]], sample: int) -> float | None:
    """Print the table; returns provisiond's seconds to the last verified answer."""
    rows = []
    for name, r in runs.items():
        rows.append(
            [
                name,
                r["accept_s"],
                r["first_s"] or 0.0,
                r["last_s"] or 0.0,
                r["ok"],
                r["wrong"] + r["failed"],
                r["retries"],
                r["usage"]["rss_mb"],
                r["usage"]["pss_mb"],
                r["usage"]["processes"],
            ]
        )
    headers = [
        "server",
        "port open s",
        "1st answer s",
        f"{sample:,}th answer s",
        "verified",
        "failed",
        "retries",
        "RSS MB",
        "PSS MB",
        "procs",
    ]
    print(common.table(headers, rows))
    ours, ref = runs["provisiond"]["last_s"], runs["nginx"]["last_s"]
    if ours is None or ref is None:
        return None
    print(
        f"provisiond: {ours:.2f} s from process start to {sample:,} devices served "
        f"(target <= {TARGET_S:.0f} s: {common.verdict(ours, TARGET_S, higher_is_better=False)});"
        f" nginx {ref:.2f} s; ratio {ours / ref:.1f}x"
    )
    return float(ours)


def run(args: argparse.Namespace, tmp: Path) -> int:
    """The whole benchmark; returns the exit code."""
    data: dict[str, Any] = {
        "benchmark": "cold_start",
        "env": common.environment(args),
        "devices": args.devices,
        "sample": args.sample,
    }
    fleet, sample, bodies = prepare(args, tmp)
    common.set_own_cpus(common.resolve_cpus(args)[1])
    runs = {
        "provisiond": cold_provisiond(args, fleet, sample, bodies),
        "nginx": cold_nginx(args, tmp / "www", sample, bodies),
    }
    data["runs"] = runs
    data["seconds_to_sample"] = report(runs, args.sample)
    data["target_s"] = TARGET_S
    bad = sum(r["wrong"] + r["failed"] for r in runs.values())
    data["correct"] = bad == 0
    print(f"results: {common.write_result('cold_start', data)}")
    if bad:
        print(f"FAILED: {bad} wrong or failed answers")
    return 1 if bad else 0


def main() -> None:
    """Entry point."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as tmp:
        Path(tmp).chmod(0o755)
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
