"""HTTP config storm: wrk against provisiond and against nginx serving the same files.

    bash bench/setup.sh && .venv/bin/python bench/http_storm.py [--quick] [--modes ...]

10,000 Yealink T46S devices (bench/common.py) in a secure fleet: an `open` site over
127.0.0.0/8 with lock_on_first_boot, nine devices in ten bound to it and the rest bound by
their first request during the storm, digest passwords set, provisiond's default bans and walk
memory. Every file is first rendered by provisiond's own pipeline in-process and written to
disk for nginx, so both servers send the same bytes. Both servers run side by side on the same
CPU (taskset), one process each; nginx and the bound devices' files are checked byte for byte
before the load (warming provisiond's caches), every file after it. Before the load, a walk
from 127.0.0.3 is banned (http_checks.py), so a ban is in force throughout the storm.

Modes (wrk + bench/http_storm.lua: a random MAC per request, every body checked):
keepalive, close (a new connection per request), and digest (a copy of the fleet under a
`digest` site; wrk answers every challenge with MD5 in pure Lua; compared with provisiond's
own open keep-alive, measured in the same runs, as nginx cannot do digest). When a server
was not the bottleneck of its run (wrk used >= 90 % of its CPUs, or neither was saturated:
other load, the kernel), the mode is measured again with every server in its own cpu cgroup
under a quota of 0.5, then 0.25 CPU (cgroups.py, wrkrun.ladder), and the verdicts use the last
run; --server-quota puts every run under one quota instead. Verdicts: req/s, p99 and requests
per server CPU-second against nginx (storm_report.py). Results: bench/out/http_storm.json.
Exit 1 only when a check failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sqlite3
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
import storm_report
import wrkrun
from common import print

LUA = Path(__file__).with_name("http_storm.lua")
MODES = ("keepalive", "close", "digest")


@dataclass
class Target:
    """A server under load in one mode."""

    name: str
    port: int
    pid: int
    devices: Path  # the Lua script's device list
    lua_mode: str  # "plain" or "digest"


def parse_args() -> argparse.Namespace:
    """Command line; the defaults are the issue's sizes."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=100)
    parser.add_argument("--threads", type=int, default=0, help="wrk threads (default: client CPUs)")
    parser.add_argument("--modes", default="keepalive,close,digest", help=",".join(MODES))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--server-quota",
        type=float,
        default=None,
        help="CPUs per server (cgroup quota) for every run; default: none, and "
        f"{' then '.join(map(str, wrkrun.QUOTA_STEPS))} for re-measures while wrk saturates",
    )
    parser.add_argument("--quota-period-us", type=int, default=cgroups.DEFAULT_PERIOD_US)
    parser.add_argument(
        "--saturated-at",
        type=float,
        default=wrkrun.SATURATED,
        help="share of its CPUs from which wrk counts as the bottleneck (default 0.9)",
    )
    common.add_common_args(parser)
    common.one_server_cpu_defaults(parser)
    args = parser.parse_args()
    if args.quick:
        args.devices, args.duration = min(args.devices, 1_000), min(args.duration, 3)
    unknown = set(args.modes.split(",")) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
    return args


def write_devices(path: Path, bodies: dict[str, bytes], count: int) -> Path:
    """The Lua script's device list: MAC, extension, body length, digest password."""
    lines = []
    for i in range(count):
        mac = common.device_mac(i)
        pw = common.provisioning_password(mac)
        lines.append(f"{mac} {common.device_extension(i)} {len(bodies[mac])} {pw}\n")
    path.write_text("".join(lines))
    return path


class Storm:
    """The runs of one benchmark invocation, and where they are kept."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server_cpus, self.client_cpus, self.workers = common.resolve_cpus(args)
        n_client = len(common.parse_cpus(self.client_cpus)) if self.client_cpus else 0
        # Unpinned (--no-pin), wrk may use every CPU of the machine.
        self.capacity = float(n_client or os.cpu_count() or 1)
        self.threads = args.threads or n_client or 2
        self.runs: dict[str, dict[str, Any]] = {}
        self.notes: list[str] = []
        self.cgroup_problem = cgroups.probe()
        if args.server_quota is not None and self.cgroup_problem:
            raise SystemExit(f"--server-quota needs cpu cgroups: {self.cgroup_problem}")

    def job(self, target: Target, close: bool) -> wrkrun.Job:
        """The wrk command for one target."""
        lua_args = [str(target.devices), common.NEEDLE, str(self.args.seed), target.lua_mode]
        lua_args.append(str(common.BARE_EVERY))
        return wrkrun.Job(
            port=target.port,
            script=LUA,
            script_args=lua_args,
            duration=self.args.duration,
            connections=self.args.connections,
            threads=self.threads,
            cpus=self.client_cpus,
            capacity=self.capacity,
            close=close,
            saturated_at=self.args.saturated_at,
        )

    def measure(self, mode: str, targets: list[Target], quota: float | None) -> dict[str, Any]:
        """One wrk run per target, each server in its own quota cgroup when `quota` is set."""
        found: dict[str, Any] = {}
        with ExitStack() as stack:
            groups: dict[str, cgroups.CpuGroup] = {}
            if quota is not None:
                for t in targets:
                    group = cgroups.create(f"bench-{t.name}")
                    stack.callback(group.release)
                    group.add(servers.tree_pids(t.pid))
                    group.set_quota(quota, self.args.quota_period_us)
                    groups[t.name] = group
            for t in targets:
                label = f"{mode} -> {t.name}" + (f" (quota {quota:g} CPU)" if quota else "")
                print(f"wrk {label} ({self.args.duration} s, {self.args.connections} connections)")
                job = self.job(t, mode == "close")
                # The server CPUs' busy time is meaningful only when wrk runs elsewhere.
                apart = self.server_cpus if self.client_cpus else None
                mine = (
                    len(common.parse_cpus(self.server_cpus)) if self.server_cpus else os.cpu_count()
                )
                allowance = quota or float(mine or 1)
                result = wrkrun.measure(job, t.pid, groups.get(t.name), apart, allowance)
                result["quota_cpus"] = quota
                found[t.name] = result
        return found

    def mode(self, mode: str, targets: list[Target]) -> None:
        """Measure a mode; while wrk saturates against any target, again under a quota."""
        steps = wrkrun.ladder(
            mode,
            lambda quota: self.measure(mode, targets, quota),
            self.args.server_quota,
            self.cgroup_problem,
        )
        wrkrun.store(self.runs, mode, steps)
        if len(steps) > 1 or any(r["client_saturated"] for r in steps[0][1].values()):
            self.notes.append(f"{mode}: wrk saturated; quotas tried: {[q for q, _ in steps]}")


def unbound_count(fleet: common.Fleet) -> int:
    """Devices of the fleet bound to no site (read-only, beside the running server)."""
    db = next(fleet.data_dir.glob("*.db"))
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return int(
            conn.execute("SELECT count(*) FROM devices WHERE locked_site_id IS NULL").fetchone()[0]
        )


def prepare(args: argparse.Namespace, tmp: Path, modes: list[str]) -> dict[str, Any]:
    """Fleets, rendered files, device lists and nginx's tree."""
    fleet = common.create_fleet(tmp / "fleet", args.devices, secure=True)
    digest = common.digest_fleet(fleet, tmp / "digest") if "digest" in modes else None
    bodies = common.prerender(fleet, range(args.devices), "http")
    common.write_files(tmp / "www", bodies)
    prep: dict[str, Any] = {"fleet": fleet, "bodies": bodies, "digest": digest}
    prep["devices"] = write_devices(tmp / "devices.txt", bodies, args.devices)
    if digest is not None:
        prep["digest_bodies"] = common.prerender(digest, range(args.devices), "http")
        prep["digest_devices"] = write_devices(
            tmp / "digest-devices.txt", prep["digest_bodies"], args.devices
        )
    return prep


def security_settings(fleet: common.Fleet) -> Any:
    """provisiond's effective security settings for this fleet (defaults: nothing set)."""
    from provisiond.settings import load_settings

    return load_settings(environ=fleet.env).security


def run(args: argparse.Namespace, tmp: Path) -> int:
    """The whole benchmark; returns the exit code."""
    modes = [m for m in args.modes.split(",") if m]
    storm = Storm(args)
    data: dict[str, Any] = {"benchmark": "http_storm", "env": common.environment(args)}
    data["env"]["cgroups"] = storm.cgroup_problem or "available"
    started = time.perf_counter()
    prep = prepare(args, tmp, modes)
    fleet, bodies = prep["fleet"], prep["bodies"]
    security = security_settings(fleet)
    bound = [common.device_mac(i) for i in range(args.devices) if common.is_bound(i)]
    print(
        f"{args.devices:,} devices created and pre-rendered in "
        f"{time.perf_counter() - started:.1f} s "
        f"({args.devices - len(bound):,} unbound until their first request); server CPUs "
        f"{storm.server_cpus or 'any'}, client CPUs {storm.client_cpus or 'any'}, workers "
        f"{storm.workers}; cpu cgroups: {storm.cgroup_problem or 'available'}"
    )
    common.set_own_cpus(storm.client_cpus)
    checks: dict[str, Any] = {}
    verify: dict[str, Any] = {}
    with (
        servers.provisiond(fleet, storm.workers, storm.server_cpus) as server,
        servers.nginx(tmp / "www", storm.workers, storm.server_cpus) as (nginx_port, nginx_pid),
    ):
        servers.wait_tcp(fleet.http_port, server.check_alive)
        verify["nginx"] = timed("nginx, every file", http_checks.verify_all(nginx_port, bodies))
        verify["provisiond_before"] = timed(
            "provisiond, bound devices' files",
            http_checks.verify_all(fleet.http_port, bodies, bound),
        )
        # Bans, walk memory and digest nonces are per process: with several workers the kernel
        # spreads the attacker's connections and the checks' answers would depend on it.
        single = storm.workers == 1 or not common.serve_supports_workers()
        if single:
            print(f"walk from {http_checks.WALKER}, before the load (a ban in force during it):")
            steps = http_checks.walk_and_ban(
                fleet.http_port, fleet, bodies, security.ban_unknown_per_source
            )
            steps.print()
            checks["walk"] = steps.rows
        else:
            wrkrun.loud(
                [
                    f"--workers {storm.workers}: the walk, ban and digest checks are "
                    "skipped (each process keeps its own bans); run with --workers 1"
                ]
            )
        open_target = Target("provisiond", fleet.http_port, server.pid, prep["devices"], "plain")
        targets = [open_target, Target("nginx", nginx_port, nginx_pid, prep["devices"], "plain")]
        unbound_before = unbound_count(fleet)
        for mode in (m for m in modes if m != "digest"):
            storm.mode(mode, targets)
        if "digest" in modes:
            checks["digest"], verify["digest"] = digest_mode(storm, prep, open_target, security)
        server.check_alive()
        print("after the load:")
        if single:
            recheck = http_checks.ban_holds(fleet.http_port, bodies, http_checks.Steps())
            recheck.print()
            checks["ban_after"] = recheck.rows
        verify["provisiond_after"] = timed(
            "provisiond, every file (locks included)",
            http_checks.verify_all(fleet.http_port, bodies),
        )
        time.sleep(1.5)  # the activity recorder writes first-boot locks in batches
        checks["unbound"] = {"before_load": unbound_before, "after_load": unbound_count(fleet)}
        print(
            f"devices bound to no site: {unbound_before} before the load, "
            f"{checks['unbound']['after_load']} after it (first-boot locks)"
        )
    data["runs"], data["checks"], data["verify"], data["notes"] = (
        storm.runs,
        checks,
        verify,
        storm.notes,
    )
    data["ratios"] = storm_report.report(storm.runs, modes)
    bad = sum(r["failures"] for r in storm.runs.values())
    bad += sum(c["wrong"] + c["error"] for c in verify.values())
    bad += sum(not row["ok"] for rows in checks.values() if isinstance(rows, list) for row in rows)
    data["correct"] = bad == 0
    print(f"results: {common.write_result('http_storm', data)}")
    if bad:
        print(f"FAILED: {bad} wrong or failed responses or checks")
    return 1 if bad else 0


def digest_mode(
    storm: Storm, prep: dict[str, Any], open_target: Target, security: Any
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The digest server: byte-for-byte pass, the digest attacks, then the storm."""
    digest, bodies = prep["digest"], prep["digest_bodies"]
    with servers.provisiond(digest, storm.workers, storm.server_cpus) as server:
        servers.wait_tcp(digest.http_port, server.check_alive)
        counts = timed(
            "provisiond (digest site), every file with SHA-256 credentials",
            http_checks.verify_all_digest(digest.http_port, bodies),
        )
        steps = http_checks.Steps()
        if storm.workers == 1 or not common.serve_supports_workers():
            print(f"digest checks from {http_checks.DIGEST_PROBER}, before the load:")
            steps = http_checks.digest_attacks(digest.http_port, bodies, security.ban_auth_failures)
            steps.print()
        target = Target(
            "provisiond", digest.http_port, server.pid, prep["digest_devices"], "digest"
        )
        # The reference, provisiond's open keep-alive, measured in the same runs (and quotas).
        reference = dataclasses.replace(open_target, name=storm_report.DIGEST_REFERENCE)
        storm.mode("digest", [target, reference])
        server.check_alive()
    return steps.rows, counts


def timed(what: str, coro: Any) -> dict[str, int]:
    """Run a byte-for-byte pass and print its counts."""
    t0 = time.perf_counter()
    counts: dict[str, int] = common.run_async(coro)
    took = time.perf_counter() - t0
    print(f"{what} fetched once and compared byte for byte: {counts} ({took:.1f} s)")
    return counts


def main() -> None:
    """Entry point."""
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        Path(tmp).chmod(0o755)  # nginx runs as nobody
        sys.exit(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
