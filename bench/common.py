"""Shared parts of the boot-storm benchmarks: the fleet, its expected files, CPUs, reporting.

- `create_fleet`: a fresh data dir and SQLite database with N devices, inserted directly with
  SQLAlchemy Core in batches (passwords sealed with provisiond's own SecretBox over a keyring
  made in that data dir). Every device is a Yealink T46S (``yealink-t46s``) without a user:
  one template, so both servers are compared on the same kind of file. MAC i is
  00:15:65 + (i + 1) in the low 24 bits, extension ``200000 + i``.
- `prerender`: the exact bytes provisiond serves, produced in-process by its own pipeline
  (`build_phone_side` + `Resolver.handle`), for the reference servers and for byte-for-byte checks.
- CPU pinning (server CPUs / client CPUs), the common options, tables and bench/out/*.json.
The processes themselves (provisiond, nginx, tftpd-hpa) and /proc measurements: servers.py.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "bench" / "out"
PROVISIOND = Path(sys.executable).parent / "provisiond"
MODEL_ID = "yealink-t46s"
OUI = 0x001565  # Yealink
FIRST_EXTENSION = 200_000
USER_AGENT = "Yealink SIP-T46S 66.86.0.15 {mac}"  # what a T46S sends (MAC without colons)
NEEDLE = "account.1.user_name = "  # the Yealink line that carries the extension
INSERT_BATCH = 5_000
T = TypeVar("T")

print = functools.partial(print, flush=True)  # progress lines appear at once


# -- the fleet ---------------------------------------------------------------------------


def device_mac(index: int) -> str:
    """MAC of device `index` (0-based), 12 lowercase hex digits."""
    return f"{(OUI << 24) + index + 1:012x}"


def device_extension(index: int) -> str:
    """Extension of device `index`."""
    return str(FIRST_EXTENSION + index)


def config_path(mac: str) -> str:
    """The per-MAC file a Yealink asks for."""
    return f"{mac}.cfg"


def body_ok(body: bytes, mac: str, extension: str) -> bool:
    """The check used when the exact bytes are not known: the right MAC's extension line."""
    return mac.encode() in body and f"\n{NEEDLE}{extension}\n".encode() in body


@dataclass(frozen=True)
class Fleet:
    """A data dir with `count` devices, and the loopback ports its server will use."""

    root: Path
    count: int
    http_port: int
    tftp_port: int
    admin_port: int

    @property
    def data_dir(self) -> Path:
        """PROVISIOND_DATA_DIR."""
        return self.root / "data"

    @property
    def env(self) -> dict[str, str]:
        """The PROVISIOND_* variables of this fleet's server (and of the pre-render)."""
        return {
            "PROVISIOND_DATA_DIR": str(self.data_dir),
            "PROVISIOND_PHONE_HTTP": f"127.0.0.1:{self.http_port}",
            "PROVISIOND_TFTP": f"127.0.0.1:{self.tftp_port}",
            "PROVISIOND_ADMIN_HTTP": f"127.0.0.1:{self.admin_port}",
            "PROVISIOND_SIP_REGISTRAR": "pbx.bench.invalid",
        }


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _password(mac: str) -> str:
    # Deterministic per MAC, so a rerun renders the same files.
    return hashlib.blake2b(mac.encode(), key=b"provisiond-bench", digest_size=12).hexdigest()


def create_fleet(root: Path, count: int) -> Fleet:
    """Migrate a fresh SQLite database under `root`/data and insert `count` devices."""
    from sqlalchemy import create_engine, insert

    from provisiond.settings import load_settings
    from provisiond.storage import migrate
    from provisiond.storage.models import Base
    from provisiond.storage.secrets import SecretBox, init_keyring

    fleet = Fleet(root, count, free_port(), free_port(socket.SOCK_DGRAM), free_port())
    settings = load_settings(environ=fleet.env)
    fleet.data_dir.mkdir(parents=True)
    asyncio.run(migrate.upgrade(settings.effective_database_url))
    init_keyring(settings.keyring_path)
    box = SecretBox(settings.keyring_path)
    url = settings.effective_database_url.replace("sqlite+aiosqlite", "sqlite")
    engine = create_engine(url)
    stamp = datetime.now(UTC)
    tokens, devices = Base.metadata.tables["api_tokens"], Base.metadata.tables["devices"]
    with engine.begin() as conn:
        # A token exists, as on any installation after its first start: no first-start work.
        conn.execute(insert(tokens), [{"name": "bench", "token_hash": "0" * 64}])
        for start in range(0, count, INSERT_BATCH):
            rows = [
                _device_row(i, box.encrypt(_password(device_mac(i))), stamp)
                for i in range(start, min(start + INSERT_BATCH, count))
            ]
            conn.execute(insert(devices), rows)
    engine.dispose()
    return fleet


def _device_row(index: int, sealed: str, stamp: datetime) -> dict[str, Any]:
    mac = device_mac(index)
    return {
        "extension": device_extension(index),
        "model_id": MODEL_ID,
        "mac": int(mac, 16),
        "active": True,
        "sip_username": device_extension(index),
        "sip_password": sealed,
        "created_at": stamp,
        "updated_at": stamp,
    }


def prerender(fleet: Fleet, indices: Sequence[int], protocol: str) -> dict[str, bytes]:
    """MAC -> the exact bytes provisiond's own pipeline serves for that device's file."""
    return run_async(_prerender(fleet, indices, protocol))


async def _prerender(fleet: Fleet, indices: Sequence[int], protocol: str) -> dict[str, bytes]:
    from provisiond.app import build_phone_side
    from provisiond.domain.phone import PhoneRequest
    from provisiond.provisioning.activity import DiscardActivity
    from provisiond.settings import load_settings
    from provisiond.storage.database import Database
    from provisiond.storage.secrets import SecretBox

    settings = load_settings(environ=fleet.env)
    db = Database(settings.effective_database_url)
    secrets = SecretBox(settings.keyring_path)
    bodies: dict[str, bytes] = {}
    try:
        # The same composition root as `provisiond render`: the directory loaded once.
        phone = await build_phone_side(
            settings, db, secrets, activity=DiscardActivity(), follow=False
        )
        for index in indices:
            mac = device_mac(index)
            agent = USER_AGENT.format(mac=mac) if protocol == "http" else None
            request = PhoneRequest(protocol, "GET", config_path(mac), agent, "127.0.0.1")  # type: ignore[arg-type]
            answer = await phone.resolver.handle(request)
            if not answer.ok or not body_ok(answer.body, mac, device_extension(index)):
                raise RuntimeError(f"pre-render of {mac}: {answer.outcome} {answer.detail}")
            bodies[mac] = answer.body
    finally:
        await db.dispose()
    return bodies


def write_files(directory: Path, bodies: dict[str, bytes]) -> None:
    """One file per MAC, world-readable (the reference servers run as nobody)."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for mac, body in bodies.items():
        path = directory / config_path(mac)
        path.write_bytes(body)
        path.chmod(0o644)


# -- CPUs and the CLI -----------------------------------------------------------------------------


@functools.cache
def serve_supports_workers() -> bool:
    """Whether this provisiond's `serve` takes ``--workers`` (added with the boot-storm work)."""
    out = subprocess.run(
        [str(PROVISIOND), "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    return "--workers" in out.stdout


def pin(cpus: str | None) -> list[str]:
    """A taskset prefix, or nothing."""
    return ["taskset", "-c", cpus] if cpus and shutil.which("taskset") else []


def set_own_cpus(cpus: str | None) -> None:
    """Pin this (client) process to `cpus`."""
    if cpus:
        os.sched_setaffinity(0, parse_cpus(cpus))


def parse_cpus(text: str) -> set[int]:
    """'0', '0-2', '1,3' -> set of CPU numbers."""
    found: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        found.update(range(int(low), int(high or low) + 1))
    return found


# -- running and reporting -----------------------------------------------------------------


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """asyncio.run on uvloop when it is installed (the client should not be the bottleneck)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def add_common_args(parser: argparse.ArgumentParser) -> None:
    """--quick, CPU pinning and workers, shared by every benchmark."""
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    server, client = default_cpus()
    parser.add_argument("--server-cpus", default=server, help=f"taskset list (default {server})")
    parser.add_argument("--client-cpus", default=client, help=f"taskset list (default {client})")
    parser.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="provisiond --workers and nginx worker_processes (default: server CPUs; "
        "provisiond gets it only when `serve --help` lists --workers)",
    )


def default_cpus() -> tuple[str | None, str | None]:
    """Split the machine: the last quarter (at least one CPU) for the load generator."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return None, None
    client = max(1, len(cpus) // 4)
    return _cpu_list(cpus[:-client]), _cpu_list(cpus[-client:])


def _cpu_list(cpus: list[int]) -> str:
    return ",".join(str(c) for c in cpus)


def resolve_cpus(args: argparse.Namespace) -> tuple[str | None, str | None, int]:
    """(server cpus, client cpus, workers) after --no-pin and the workers default."""
    server, client = (None, None) if args.no_pin else (args.server_cpus, args.client_cpus)
    workers = args.workers or (len(parse_cpus(server)) if server else 1)
    return server, client, workers


def environment(args: argparse.Namespace) -> dict[str, Any]:
    """What the numbers depend on, recorded with them."""
    server, client, workers = resolve_cpus(args)
    return {
        "cpus": os.cpu_count(),
        "loadavg_before": os.getloadavg(),
        "server_cpus": server,
        "client_cpus": client,
        "workers": workers,
        "provisiond_has_workers_flag": serve_supports_workers(),
        "python": sys.version.split()[0],
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    """bench/out/<name>.json (git-ignored)."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, columns right-aligned except the first."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        parts = [
            row[0].ljust(widths[0]),
            *(c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(parts))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def verdict(ratio: float, target: float, higher_is_better: bool = True) -> str:
    """'met' / 'NOT met' for a ratio against its target."""
    met = ratio >= target if higher_is_better else ratio <= target
    return "met" if met else "NOT met"
