"""Render every phone file of every vendor, for the year test (test_year.py) under faketime.

    python -m tests.year_render prepare DATA_DIR ZONE   # a database with one device per model
    python -m tests.year_render render DATA_DIR...      # {dir: {path@model: sha256}, "clock": now}

`prepare` runs once per zone, with the real clock: it creates the SQLite database and keyring in
DATA_DIR through the services (generated provisioning passwords included), with the platform
time zone ZONE, one device per catalogue model (the boot cases' models keep their own MACs).
`render` builds the phone pipeline with the composition root (`provisiond.app.build_phone_side`,
as `provisiond render` does) and asks, as the phone would, for every file of each boot case plus
the device file of every other model of the same vendor. It reads the database only, so the
test can run it under `faketime` on any date and compare the answers byte for byte.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from provisiond.app import build_phone_side, build_services, open_secrets, prepare_database
from provisiond.domain.catalogue import boot_paths
from provisiond.domain.identify import FileKind, match_path
from provisiond.domain.phone import PhoneRequest
from provisiond.provisioning.activity import DiscardActivity
from provisiond.services.commands import DeviceCreate
from provisiond.settings import Settings, load_settings
from tests.integration.boot_sequences import BOOT_CASES, Role, provision
from tests.phone_context import catalogue, catalogue_models, vendors

RENDERED = (Role.COMMON, Role.BOOT, Role.DEVICE)


def _settings(data_dir: Path) -> Settings:
    return load_settings(environ={"PROVISIOND_DATA_DIR": str(data_dir)})


def _extra_macs() -> dict[str, str]:
    """A MAC for every catalogue model that no boot case uses (its vendor's first case's OUI,
    or a fixed one for a vendor without a boot case)."""
    used = {case.model for case in BOOT_CASES}
    macs = {}
    for number, model in enumerate(sorted(set(catalogue()) - used), start=1):
        vendor = catalogue()[model].vendor
        first = next((case for case in BOOT_CASES if case.vendor == vendor), None)
        oui = first.mac[:6] if first is not None else "00a0b0"
        macs[model] = oui + f"{0xE00000 + number:06x}"
    return macs


async def prepare(data_dir: Path, zone: str) -> None:
    """The database of every boot case's device and one device per other model."""
    settings = _settings(data_dir)
    db = await prepare_database(settings)
    try:
        services = build_services(settings, db, await open_secrets(settings, db))
        first, *others = BOOT_CASES
        await provision(services, first)  # the scenario's user, with custom CLI and label
        for number, case in enumerate(others, start=1):
            await services.devices.create(
                DeviceCreate(extension=f"3{number:03d}", model=case.model, mac=case.mac), "test"
            )
        for number, (model, mac) in enumerate(sorted(_extra_macs().items()), start=1):
            await services.devices.create(
                DeviceCreate(extension=f"4{number:03d}", model=model, mac=mac), "test"
            )
        await services.platform.put_settings({"timezone": zone}, "test")
    finally:
        await db.dispose()


def _requests() -> list[tuple[str, str, str | None]]:
    """(label, path, User-Agent) of every rendered file the test compares."""
    wanted: list[tuple[str, str, str | None]] = []
    for case in BOOT_CASES:
        for step in case.gets:
            if step.role in RENDERED:
                wanted.append((case.model, case.path(step.path), case.user_agent()))
    for model, mac in sorted(_extra_macs().items()):
        entry = catalogue_models()[model]  # its device file(s), from its own boot sequence
        vendor = vendors()[entry.vendor]
        wanted += [
            (model, path, None)
            for path in boot_paths(entry, mac)
            if match_path((vendor,), path)[0].spec.kind is FileKind.DEVICE
        ]
    return wanted


async def render(data_dir: Path) -> dict[str, str]:
    """sha256 of every answer body (or its outcome when it is not served), by path and model."""
    settings = _settings(data_dir)
    db = await prepare_database(settings)
    try:
        phone = await build_phone_side(
            settings, db, await open_secrets(settings, db), activity=DiscardActivity(), follow=False
        )
        resolver = phone.resolver
        answers = {}
        for label, path, agent in _requests():
            answer = await resolver.handle(PhoneRequest("http", "GET", path, agent, "127.0.0.1"))
            digest = hashlib.sha256(answer.body).hexdigest() if answer.ok else answer.outcome.value
            answers[f"{path}@{label}"] = digest
        return answers
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    """Command-line entry: prepare or render (see the module docstring)."""
    if argv[:1] == ["prepare"] and len(argv) == 3:
        asyncio.run(prepare(Path(argv[1]), argv[2]))
        return 0
    if argv[:1] == ["render"] and len(argv) >= 2:
        # The clock as this process sees it, so the test can tell that faketime took hold.
        answers: dict[str, object] = {"clock": datetime.now(UTC).isoformat()}
        for data_dir in argv[1:]:
            answers[data_dir] = asyncio.run(render(Path(data_dir)))
        json.dump(answers, sys.stdout, indent=1, sort_keys=True)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
