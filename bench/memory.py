"""Memory: RSS of provisiond with 100,000 devices in the database, after serving them.

    .venv/bin/python bench/memory.py [--quick] [--devices 100000] [--no-serve-all]

Runs the cold-start benchmark's set-up and start (bench/cold_start.py: 100,000 Yealink T46S
devices, a 10,000-device sample fetched and checked byte for byte), then measures the serving
process tree from /proc: RSS (sum over the processes, shared pages counted in each) and PSS
(shared pages split). Then, unless --no-serve-all, every other device's file is fetched once
too (checked for its extension and MAC), the worst case for any per-device cache, and memory
is measured again. nginx serving the sample's pre-rendered files is the reference.
Results: bench/out/memory.json. Target: RSS <= 250 MB with 100,000 devices (after the sample).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cold_start
import common
import servers
from common import print

TARGET_MB = 250.0


def serve_the_rest(args: argparse.Namespace, sample: list[int]) -> Any:
    """A `then` step for cold_start: fetch every device outside the sample, then measure."""
    chosen = set(sample)

    def step(server: servers.Provisiond) -> dict[str, Any]:
        if args.no_serve_all:
            return {}
        rest = [i for i in range(args.devices) if i not in chosen]
        t0 = time.perf_counter()
        fetched = common.run_async(
            cold_start.fetch_all(server.fleet.http_port, rest, {}, args.concurrency, t0)
        )
        seconds = time.perf_counter() - t0
        print(
            f"the other {len(rest):,} devices served in {seconds:.1f} s: {fetched.ok:,} "
            f"verified, {fetched.wrong + fetched.failed} failed"
        )
        return {
            "fetched": asdict(fetched),
            "seconds": seconds,
            "usage": asdict(servers.tree_usage(server.pid)),
        }

    return step


def report(args: argparse.Namespace, ours: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """Print the memory table; returns the figures judged against the target."""
    rows = [
        [
            f"provisiond after {args.sample:,} served",
            ours["usage"]["rss_mb"],
            ours["usage"]["pss_mb"],
            ours["usage"]["processes"],
        ]
    ]
    all_served = ours.get("then", {}).get("usage")
    if all_served:
        rows.append(
            [
                f"provisiond after all {args.devices:,} served",
                all_served["rss_mb"],
                all_served["pss_mb"],
                all_served["processes"],
            ]
        )
    rows.append(
        [
            f"nginx after {args.sample:,} served",
            ref["usage"]["rss_mb"],
            ref["usage"]["pss_mb"],
            ref["usage"]["processes"],
        ]
    )
    print(common.table(["process tree", "RSS MB", "PSS MB", "procs"], rows))
    rss = ours["usage"]["rss_mb"]
    print(
        f"provisiond RSS with {args.devices:,} devices: {rss:.0f} MB (target <= "
        f"{TARGET_MB:.0f} MB: {common.verdict(rss, TARGET_MB, higher_is_better=False)})"
    )
    judged = {"rss_mb_after_sample": rss, "target_mb": TARGET_MB}
    if all_served:
        worst = all_served["rss_mb"]
        print(
            f"after every device was served once: {worst:.0f} MB "
            f"({common.verdict(worst, TARGET_MB, higher_is_better=False)})"
        )
        judged["rss_mb_after_all"] = worst
    return judged


def run(args: argparse.Namespace, tmp: Path) -> int:
    """The whole benchmark; returns the exit code."""
    data: dict[str, Any] = {
        "benchmark": "memory",
        "env": common.environment(args),
        "devices": args.devices,
        "sample": args.sample,
    }
    fleet, sample, bodies = cold_start.prepare(args, tmp)
    common.set_own_cpus(common.resolve_cpus(args)[1])
    ours = cold_start.cold_provisiond(args, fleet, sample, bodies, serve_the_rest(args, sample))
    ref = cold_start.cold_nginx(args, tmp / "www", sample, bodies)
    data["runs"] = {"provisiond": ours, "nginx": ref}
    data["judged"] = report(args, ours, ref)
    then = ours.get("then", {}).get("fetched", {})
    bad = ours["wrong"] + ours["failed"] + ref["wrong"] + ref["failed"]
    bad += then.get("wrong", 0) + then.get("failed", 0)
    data["correct"] = bad == 0
    print(f"results: {common.write_result('memory', data)}")
    if bad:
        print(f"FAILED: {bad} wrong or failed answers")
    return 1 if bad else 0


def main() -> None:
    """Entry point: cold_start's options plus --no-serve-all."""

    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--no-serve-all", action="store_true", help="measure after the sample only"
        )

    args = cold_start.parse_args(__doc__, extra)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        Path(tmp).chmod(0o755)
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
