"""Shared parts of the boot-storm benchmarks: the fleet, its expected files, CPUs, reporting.

- `create_fleet`: a fresh data dir and SQLite database with N devices, inserted directly with
  SQLAlchemy Core in batches (passwords sealed with provisiond's own SecretBox over a keyring
  made in that data dir). Every device is a Yealink T46S (``yealink-t46s``) without a user:
  one template, so both servers are compared on the same kind of file. MAC i is
  00:15:65 + (i + 1) in the low 24 bits, extension ``200000 + i``. With ``secure=True`` (the
  HTTP storms) the security checks are on the path: sites, site binding, provisioning
  (digest) passwords; `digest_fleet` copies such a fleet under a `digest` site.
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
BARE_USER_AGENT = "Yealink SIP-T46S 66.86.0.15"  # no MAC: what the "bare" devices send
BARE_EVERY = 10  # device i with i % 10 == 0 sends BARE_USER_AGENT in the HTTP storms
NEEDLE = "account.1.user_name = "  # the Yealink line that carries the extension
INSERT_BATCH = 5_000
# The secure fleet (create_fleet(secure=True)). Sites are matched in id order, first wins:
# "bench-other" (id 1) holds only 127.0.0.4, so a request from there for a device bound to
# "bench" (id 2, all of 127.0.0.0/8) exercises the site binding.
SITE_MAIN = "bench"
SITE_OTHER = "bench-other"
SITE_DIGEST = "bench-digest"
OTHER_SITE_SOURCE = "127.0.0.4"
NOWHERE = "192.0.2.0/24"  # TEST-NET-1: no request of ours comes from there
UNBOUND_EVERY = 10  # device i with i % 10 == 9 starts unbound: its first boot locks it
T = TypeVar("T")

print = functools.partial(print, flush=True)  # progress lines appear at once


# -- the fleet ---------------------------------------------------------------------------


def device_mac(index: int) -> str:
    """MAC of device `index` (0-based), 12 lowercase hex digits."""
    return f"{(OUI << 24) + index + 1:012x}"


def device_index(mac: str) -> int:
    """The index of the device with this MAC (the inverse of `device_mac`)."""
    return int(mac, 16) - (OUI << 24) - 1


def storm_user_agent(mac: str) -> str:
    """The User-Agent device `mac` sends in the HTTP storms (http_storm.lua does the same):
    one device in BARE_EVERY never names its MAC, so provisiond's walk memory is consulted."""
    if device_index(mac) % BARE_EVERY == 0:
        return BARE_USER_AGENT
    return USER_AGENT.format(mac=mac)


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


def provisioning_password(mac: str) -> str:
    """The device's HTTP digest password (secure fleets), deterministic per MAC."""
    return hashlib.blake2b(mac.encode(), key=b"provisiond-bench-prov", digest_size=12).hexdigest()


def is_bound(index: int) -> bool:
    """Whether device `index` of a secure fleet starts bound to the main site."""
    return index % UNBOUND_EVERY != UNBOUND_EVERY - 1


def create_fleet(root: Path, count: int, *, secure: bool = False) -> Fleet:
    """Migrate a fresh SQLite database under `root`/data and insert `count` devices.

    `secure`: two open sites (see SITE_MAIN), the main one with lock_on_first_boot; nine
    devices in ten bound to it and the rest unbound (their first request binds them); every
    device with a provisioning (digest) password sealed like its SIP password. Bans and the
    walk memory keep provisiond's defaults (nothing in the database).
    """
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
    tables = Base.metadata.tables
    tokens, devices, sites = tables["api_tokens"], tables["devices"], tables["sites"]
    with engine.begin() as conn:
        # A token exists, as on any installation after its first start: no first-start work.
        conn.execute(insert(tokens), [{"name": "bench", "token_hash": "0" * 64}])
        site_id = None
        if secure:
            other = {"name": SITE_OTHER, "networks": [f"{OTHER_SITE_SOURCE}/32"], "policy": "open"}
            conn.execute(insert(sites), [other])
            main = {"name": SITE_MAIN, "networks": ["127.0.0.0/8"], "policy": "open"}
            conn.execute(insert(sites), [{**main, "lock_on_first_boot": True}])
            site_id = _site_id(conn, SITE_MAIN)
        for start in range(0, count, INSERT_BATCH):
            rows = [
                _device_row(i, box, stamp, site_id)
                for i in range(start, min(start + INSERT_BATCH, count))
            ]
            conn.execute(insert(devices), rows)
    engine.dispose()
    return fleet


def _site_id(conn: Any, name: str) -> int:
    from sqlalchemy import select

    from provisiond.storage.models import Site

    return int(conn.execute(select(Site.id).where(Site.name == name)).scalar_one())


def _device_row(index: int, box: Any, stamp: datetime, site_id: int | None) -> dict[str, Any]:
    mac = device_mac(index)
    row = {
        "extension": device_extension(index),
        "model_id": MODEL_ID,
        "mac": int(mac, 16),
        "active": True,
        "sip_username": device_extension(index),
        "sip_password": box.encrypt(_password(mac)),
        "created_at": stamp,
        "updated_at": stamp,
    }
    if site_id is not None:  # a secure fleet
        row["provisioning_password"] = box.encrypt(provisioning_password(mac))
        row["locked_site_id"] = site_id if is_bound(index) else None
    return row


def copy_fleet(fleet: Fleet, root: Path) -> Fleet:
    """The same data dir (database and keyring) under `root`, on new ports: a second server
    with the same devices and secrets. Its files differ from the original's only by the port
    in the URLs they carry. Call it before a server writes to `fleet`."""
    copy = Fleet(root, fleet.count, free_port(), free_port(socket.SOCK_DGRAM), free_port())
    shutil.copytree(fleet.data_dir, copy.data_dir)
    return copy


def digest_fleet(fleet: Fleet, root: Path) -> Fleet:
    """A copy of a secure `fleet` (`copy_fleet`) where a third site, policy `digest`, holds
    127.0.0.0/8 and every device is bound to it; the main site is moved to TEST-NET-1."""
    from sqlalchemy import create_engine, insert, update

    from provisiond.settings import load_settings
    from provisiond.storage.models import Base

    copy = copy_fleet(fleet, root)
    settings = load_settings(environ=copy.env)
    url = settings.effective_database_url.replace("sqlite+aiosqlite", "sqlite")
    engine = create_engine(url)
    sites, devices = Base.metadata.tables["sites"], Base.metadata.tables["devices"]
    with engine.begin() as conn:
        main = _site_id(conn, SITE_MAIN)
        conn.execute(update(sites).where(sites.c.id == main).values(networks=[NOWHERE]))
        digest = {"name": SITE_DIGEST, "networks": ["127.0.0.0/8"], "policy": "digest"}
        conn.execute(insert(sites), [digest])
        conn.execute(update(devices).values(locked_site_id=_site_id(conn, SITE_DIGEST)))
    engine.dispose()
    return copy


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
            if answer.headers and protocol == "http":  # a digest site's challenge: log in
                request = _logged_in(request, [v for k, v in answer.headers if k.lower() == _WWW])
                answer = await phone.resolver.handle(request)
            if not answer.ok or not body_ok(answer.body, mac, device_extension(index)):
                raise RuntimeError(f"pre-render of {mac}: {answer.outcome} {answer.detail}")
            bodies[mac] = answer.body
    finally:
        await db.dispose()
    return bodies


_WWW = "www-authenticate"


def _logged_in(request: Any, challenges: list[str]) -> Any:
    """`request` again with digest credentials answering one of `challenges` (our own client
    code, bench/digest_client.py, never provisiond's)."""
    import dataclasses

    from digest_client import authorization, pick

    challenge = pick(challenges, "SHA-256") or pick(challenges, "MD5")
    if challenge is None:
        raise RuntimeError(f"pre-render: no usable digest challenge in {challenges}")
    mac = request.path.split(".", 1)[0]
    uri = "/" + request.path
    header = authorization(
        challenge, username=mac, password=provisioning_password(mac), method="GET", uri=uri
    )
    return dataclasses.replace(request, headers=(("authorization", header),), target=uri)


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
    parser.add_argument("--server-cpus", default=server, help="taskset list (default %(default)s)")
    parser.add_argument("--client-cpus", default=client, help="taskset list (default %(default)s)")
    parser.add_argument("--no-pin", action="store_true", help="no CPU pinning")
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="provisiond --workers and nginx worker_processes (default %(default)s: 0 means the "
        "number of server CPUs; provisiond gets it only when `serve --help` lists --workers)",
    )


def one_server_cpu_defaults(parser: argparse.ArgumentParser) -> None:
    """The HTTP benchmarks' layout (the issue's): each server on the first CPU, one process,
    and every other CPU for wrk (more client CPU is the other remedy for a saturated wrk)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        parser.set_defaults(server_cpus=str(cpus[0]), client_cpus=_cpu_list(cpus[1:]), workers=1)


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
    """'PASS' / 'MISS' for a figure against its target."""
    met = ratio >= target if higher_is_better else ratio <= target
    return "PASS" if met else "MISS"
