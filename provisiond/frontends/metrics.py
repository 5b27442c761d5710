"""Prometheus /metrics, and /healthz and /readyz for load balancers, on the admin listener.

The counters live where the work happens (PhoneStats in the resolver, TftpStats in the TFTP
server, the enumeration guard, the database pool); a custom collector reads them at scrape time,
so the hot path pays nothing for metrics. Values are this process's: with `--workers N`, the
other processes' phone HTTP counters are not included (their requests still are served).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import text

from provisiond.frontends.admin_http import admin_expect_handler
from provisiond.frontends.phone_tftp import TftpServer
from provisiond.provisioning.bans import EnumerationGuard
from provisiond.provisioning.memory import MemoryDirectory
from provisiond.provisioning.stats import PhoneStats
from provisiond.storage.database import Database


@dataclass
class Sources:
    """What the collector reads (filled in as the server starts its parts)."""

    db: Database
    phone: PhoneStats | None = None
    directory: MemoryDirectory | None = None
    tftp: TftpServer | None = None
    guard: EnumerationGuard | None = None


SOURCES = web.AppKey("metrics_sources", Sources)


class _Collector(Collector):
    def __init__(self, sources: Sources) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Metric]:
        src = self.sources
        if src.phone is not None:
            yield from _phone(src.phone)
        if src.directory is not None:
            devices = GaugeMetricFamily("provisiond_devices_loaded", "devices in memory")
            devices.add_metric([], src.directory.size)
            yield devices
        if src.tftp is not None:
            yield from _tftp(src.tftp)
        if src.guard is not None:
            guard = src.guard
            yield _counter("provisiond_bans", "sources banned", guard.bans_total)
            yield _counter(
                "provisiond_ban_refusals", "requests refused by a ban", guard.refused_total
            )
            active = GaugeMetricFamily("provisiond_bans_active", "bans in force")
            active.add_metric([], len(guard.bans()))
            yield active
        yield from _pool(src.db)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc)
    family.add_metric([], value)
    return family


def _phone(stats: PhoneStats) -> Iterator[Metric]:
    requests = CounterMetricFamily(
        "provisiond_phone_requests", "phone requests", labels=["protocol", "outcome"]
    )
    for (protocol, outcome), count in sorted(stats.requests.items()):
        requests.add_metric([protocol, outcome], count)
    yield requests
    served = CounterMetricFamily(
        "provisiond_phone_files_served", "files served, by vendor", labels=["protocol", "vendor"]
    )
    for (protocol, vendor), count in sorted(stats.served.items()):
        served.add_metric([protocol, vendor], count)
    yield served
    yield _counter("provisiond_render_cache_hits", "render cache hits", stats.cache_hits)
    yield _counter("provisiond_render_cache_misses", "render cache misses", stats.cache_misses)
    buckets: list[tuple[str, float]] = []
    running = 0
    for bound, count in zip(stats.render_buckets, stats.render_counts, strict=False):
        running += count
        buckets.append((repr(bound), running))
    buckets.append(("+Inf", running + stats.render_counts[-1]))
    histogram = HistogramMetricFamily(
        "provisiond_render_seconds", "template rendering time", unit=""
    )
    histogram.add_metric([], buckets, sum_value=stats.render_sum)
    yield histogram


def _tftp(server: TftpServer) -> Iterator[Metric]:
    stats = server.stats
    for name, doc in (
        ("transfers_started", "TFTP transfers started"),
        ("transfers_completed", "TFTP transfers completed"),
        ("transfers_failed", "TFTP transfers failed"),
        ("transfers_evicted", "TFTP unproven transfers evicted to make room"),
        ("retransmissions", "TFTP packets sent again"),
        ("bytes_sent", "TFTP payload bytes sent"),
        ("bytes_received", "TFTP payload bytes received"),
        ("requests_rejected", "TFTP requests rejected before a transfer"),
    ):
        yield _counter(f"provisiond_tftp_{name}", doc, getattr(stats, name))


def _pool(db: Database) -> Iterator[Metric]:
    pool: Any = db.engine.pool
    gauge = GaugeMetricFamily("provisiond_db_pool", "database connections", labels=["state"])
    for state, reader in (("checked_out", "checkedout"), ("idle", "checkedin"), ("size", "size")):
        method: Callable[[], int] | None = getattr(pool, reader, None)
        if method is not None:
            gauge.add_metric([state], method())
    yield gauge


async def metrics(request: web.Request) -> web.Response:
    """Prometheus text exposition."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(request.app[SOURCES]))
    return web.Response(
        body=generate_latest(registry),
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


async def healthz(request: web.Request) -> web.Response:
    """The process answers."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready for phones: the database answers and the phone side is loaded."""
    sources = request.app[SOURCES]
    problems = []
    try:
        async with sources.db.read() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:  # any database failure means "not ready"
        problems.append(f"database: {type(exc).__name__}")
    if sources.phone is None:
        problems.append("phone side not started")
    status = 503 if problems else 200
    return web.json_response({"ready": not problems, "problems": problems}, status=status)


def add_metrics_routes(app: web.Application, sources: Sources) -> None:
    """/metrics, /healthz and /readyz (no token: scrapers and load balancers)."""
    app[SOURCES] = sources
    app.router.add_get("/metrics", metrics, expect_handler=admin_expect_handler)
    app.router.add_get("/healthz", healthz, expect_handler=admin_expect_handler)
    app.router.add_get("/readyz", readyz, expect_handler=admin_expect_handler)
