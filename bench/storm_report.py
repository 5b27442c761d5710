"""The table and the verdicts of bench/http_storm.py.

Runs are keyed ``<mode>/<server>`` (no quota) and ``<mode>/<server>/quota`` (both servers
in cpu cgroups with a quota, after wrk saturated or with --server-quota). A mode's verdicts
use its quota runs when there are any: those are the runs where wrk was not the bottleneck.
When the runs the verdicts use still had wrk saturated, each ratio says which kind of bound
it is: a saturated client under-reports the server it loads (lower req/s, higher latency).
"""

from __future__ import annotations

from typing import Any

import common
import wrkrun
from common import print

TARGETS = {"keepalive": 0.6, "close": 0.5}  # provisiond / nginx req/s
P99_TARGET = 3.0  # provisiond p99 <= 3 x nginx's, 100 connections
PER_CPU_TARGET = 0.5  # requests per server CPU-second, provisiond / nginx
MODE_ORDER = ("keepalive", "close", "digest")
DIGEST_REFERENCE = "provisiond-open"  # the digest mode's reference: open keep-alive
TRAILING_NOTE_S = 2.0  # a server busy longer than this after its load gets a note
DISTURBED = 25.0  # percentage points of server-CPU time not charged to the server


def table_rows(runs: dict[str, dict[str, Any]]) -> list[list[object]]:
    """One row per run, in mode order."""
    rows: list[list[object]] = []
    order = {m: i for i, m in enumerate(MODE_ORDER)}

    def rank(key: str) -> tuple[int, float, str]:
        # Mode, then the quota steps in the order they ran (none, 0.5, 0.25), then the server.
        quota = runs[key]["quota_cpus"]
        return (order.get(key.split("/")[0], 9), -(quota or 1e9), key)

    for key in sorted(runs, key=rank):
        r = runs[key]
        mode, name, *rest = key.split("/")
        basis = f"quota {r['quota_cpus']:g}" if rest else "-"
        rows.append(
            [
                f"{mode:<9} {name}",
                basis,
                r["rps"],
                r["latency_us"]["p50"] / 1000,
                r["latency_us"]["p99"] / 1000,
                r["requests"],
                r["failures"],
                wrkrun.socket_errors(r),
                r["server_cpu_pct"],
                r.get("server_cpu_after_s", 0.0),
                r["server_cpu_us_per_request"] or 0.0,
                f"{r['client_cpu_pct']:.0f}{' SAT' if r['client_saturated'] else ''}",
                r["limit"],
                f"{100 * r['throttled_periods_share']:.0f}"
                if "throttled_periods_share" in r
                else "-",
                f"{wrkrun.disturbed(r):.0f}" if "server_cpus_busy_pct" in r else "-",
                r["server_rss_mb"],
            ]
        )
    return rows


HEADERS = [
    "run",
    "server CPU",
    "req/s",
    "p50 ms",
    "p99 ms",
    "requests",
    "failed",
    "sock err",
    "server CPU%",
    "CPU after s",
    "CPU us/req",
    "wrk CPU%",
    "limit",
    "throttled%",
    "other%",
    "RSS MB",
]


def _basis(runs: dict[str, dict[str, Any]], mode: str, names: tuple[str, str]) -> str:
    """'/quota' when both servers of `names` have a quota run in `mode`, else ''."""
    return "/quota" if all(f"{mode}/{n}/quota" in runs for n in names) else ""


def _bound(ours: dict[str, Any], ref: dict[str, Any], higher_is_better: bool) -> str:
    """What a ratio ours/ref is when a run was not held by its server."""
    loose = [n for n, r in (("provisiond", ours), ("nginx", ref)) if r["limit"] == "neither"]
    if loose:
        return f" (NOT FIRM: {' and '.join(loose)} held by neither wrk nor its CPU)"
    ours_sat, ref_sat = ours["client_saturated"], ref["client_saturated"]
    if ours_sat and ref_sat:
        return " (wrk saturated against both: neither bound)"
    if not ours_sat and not ref_sat:
        return ""
    # A saturated client lowers that server's req/s and raises its latency.
    ratio_too_high = ref_sat if higher_is_better else ours_sat
    return (
        " (an UPPER bound: wrk saturated)" if ratio_too_high else " (a LOWER bound: wrk saturated)"
    )


def versus_nginx(runs: dict[str, dict[str, Any]], mode: str) -> dict[str, Any]:
    """The three ratios of a mode against nginx, with their targets and verdicts."""
    suffix = _basis(runs, mode, ("provisiond", "nginx"))
    ours, ref = runs[f"{mode}/provisiond{suffix}"], runs[f"{mode}/nginx{suffix}"]
    rps = ours["rps"] / ref["rps"]
    p99 = ours["latency_us"]["p99"] / max(1, ref["latency_us"]["p99"])
    a, b = ours["requests_per_server_cpu_s"], ref["requests_per_server_cpu_s"]
    per_cpu = a / b if a and b else None
    out = {
        "basis": f"quota {ours['quota_cpus']:g} CPU" if suffix else "no quota",
        "rps_ratio": rps,
        "rps_target": TARGETS[mode],
        "rps_verdict": common.verdict(rps, TARGETS[mode]),
        "rps_bound": _bound(ours, ref, True).strip(" ()") or None,
        "p99_ratio": p99,
        "p99_target": P99_TARGET,
        "p99_verdict": common.verdict(p99, P99_TARGET, higher_is_better=False),
        "p99_bound": _bound(ours, ref, False).strip(" ()") or None,
        "per_server_cpu_ratio": per_cpu,
        "per_server_cpu_target": PER_CPU_TARGET,
        "per_server_cpu_verdict": common.verdict(per_cpu or 0.0, PER_CPU_TARGET),
    }
    print(f"{mode} ({out['basis']}), provisiond / nginx:")
    _line("req/s", rps, f">= {TARGETS[mode]}x", out["rps_verdict"], _bound(ours, ref, True))
    _line("p99 latency", p99, f"<= {P99_TARGET:g}x", out["p99_verdict"], _bound(ours, ref, False))
    verdict = out["per_server_cpu_verdict"]
    _line("per server CPU-sec", per_cpu or 0.0, f">= {PER_CPU_TARGET}x", verdict, "")
    return out


def _line(what: str, ratio: float, target: str, verdict: str, bound: str) -> None:
    print(f"  {what:<19} {ratio:5.2f}x  (target {target}: {verdict}){bound}")


def digest_cost(runs: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Digest keep-alive against provisiond's own open keep-alive, in the same condition."""
    for suffix in ("/quota", ""):
        dig = runs.get(f"digest/provisiond{suffix}")
        ref = runs.get(f"digest/{DIGEST_REFERENCE}{suffix}")
        if dig is not None and ref is not None:
            break
    else:
        return None
    rps = dig["rps"] / ref["rps"]
    a, b = dig["server_cpu_us_per_request"], ref["server_cpu_us_per_request"]
    bound = ""
    if dig["limit"] != "server" or ref["limit"] != "server":
        bound = f" (NOT FIRM: runs held by {dig['limit']} / {ref['limit']}, not the server)"
    out = {
        "basis": f"quota {dig['quota_cpus']:g} CPU" if suffix else "no quota",
        "rps_ratio": rps,
        "cpu_us_per_request": {"digest": a, "keepalive": b},
        "client_saturated": dig["client_saturated"] or ref["client_saturated"],
    }
    print(
        f"digest ({out['basis']}), provisiond digest / provisiond open keep-alive "
        "(no nginx: it cannot do digest):"
    )
    print(f"  req/s               {rps:5.2f}x{bound}")
    if a and b:
        print(
            f"  server CPU/request  {a:.0f} us vs {b:.0f} us (+{a - b:.0f} us for the digest check)"
        )
    return out


def report(runs: dict[str, dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Print the table and the ratios; return the ratios for the JSON."""
    print(common.table(HEADERS, table_rows(runs)))
    print(
        "(server CPU: the quota the servers ran under; server CPU%: during the load; CPU after "
        "s: CPU the server spent after the load until idle; CPU us/req: both, per request; "
        "wrk CPU%: of one CPU, SAT when >= "
        f"{wrkrun.SATURATED:.0%} of the CPUs wrk was given; throttled%: share of the quota's "
        "periods in which the server was stopped; other%: busy time of the server CPUs not "
        "charged to the server: other processes, or kernel network work; limit: what held the "
        "rate: wrk, the server (>= 90% of its CPU or quota), or neither: then the rate is set by "
        "something else, such as the kernel's connection handling, and compares no servers)"
    )
    for key, r in runs.items():
        if r.get("settle_s", 0.0) > TRAILING_NOTE_S:
            print(
                f"note: {key}: the server stayed busy {r['settle_s']:.0f} s after the load "
                f"({r['server_cpu_after_s']:.1f} CPU-s, counted in CPU us/req)"
                + ("" if r.get("settled", True) else "; it was STILL BUSY when we gave up")
            )
        if wrkrun.disturbed(r) > DISTURBED:
            print(
                f"note: {key}: the server CPUs were {wrkrun.disturbed(r):.0f} points busier than "
                "the server itself: other load on the machine disturbed this run"
            )
    ratios: dict[str, Any] = {}
    for mode in modes:
        if mode in TARGETS:
            ratios[mode] = versus_nginx(runs, mode)
    if "digest" in modes:
        cost = digest_cost(runs)
        if cost is not None:
            ratios["digest"] = cost
    return ratios
