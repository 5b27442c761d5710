"""A phone file is right on every day of the year: the same data gives the same bytes.

The files used to say "summer time is on" when rendered in summer and "off" in winter, so a
file fetched in January was wrong in July (and the render cache kept it). Here real processes
render every file of every vendor (the boot cases' files, and the device file of every
catalogue model) under `faketime` on 24 dates across two years, including the minutes around
the summer-time changes of both hemispheres, for a zone of each (Europe/Rome, Australia/Sydney),
and every answer must be byte-identical. Each process reports its own clock, so the test knows
the fake date took hold (a test that cannot fail is no test).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.phone_context import catalogue

ROOT = Path(__file__).resolve().parents[2]
ZONES = ("Europe/Rome", "Australia/Sydney")
DATES = [f"{year}-{month:02d}-15 12:00:00" for year in (2027, 2028) for month in range(1, 12)]
DATES += [
    "2027-03-28 00:59:00",  # Rome: one minute before summer time starts (01:00 UTC)
    "2027-10-31 01:01:00",  # Rome: one minute after it ends
    "2027-10-02 15:59:00",  # Sydney: just before summer time starts (16:00 UTC on Saturday)
    "2028-04-01 16:01:00",  # Sydney: just after it ends
]
PARALLEL = 2


def _faketime() -> str:
    path = shutil.which("faketime")
    if path is None:
        pytest.fail("the year test needs faketime: apt-get install faketime (make test does)")
    return path


async def _run(*argv: str) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_every_file_is_the_same_on_every_date(tmp_path: Path) -> None:
    assert len(DATES) == 26
    dirs = [str(tmp_path / zone.replace("/", "-")) for zone in ZONES]
    for data_dir, zone in zip(dirs, ZONES, strict=True):
        await _run(sys.executable, "-m", "tests.year_render", "prepare", data_dir, zone)
    limit = asyncio.Semaphore(PARALLEL)
    faketime = _faketime()

    async def at(date: str) -> dict[str, dict[str, str]]:
        async with limit:
            out = await _run(faketime, date, sys.executable, "-m", "tests.year_render", "render",
                             *dirs)  # fmt: skip
        answers: dict[str, Any] = json.loads(out)
        clock = datetime.fromisoformat(answers.pop("clock"))
        wanted = datetime.fromisoformat(date).replace(tzinfo=UTC)
        assert abs((clock - wanted).total_seconds()) < 60, (date, clock)
        return answers

    results = await asyncio.gather(*(at(date) for date in DATES))
    first = results[0]
    for data_dir in dirs:
        rendered = first[data_dir]
        assert len({key.rsplit("@", 1)[1] for key in rendered}) == len(catalogue())
        not_served = {key: value for key, value in rendered.items() if len(value) != 64}
        assert not not_served, not_served
    for date, result in zip(DATES, results, strict=True):
        for data_dir in dirs:
            changed = sorted(k for k, v in result[data_dir].items() if first[data_dir][k] != v)
            assert not changed, f"{date} in {data_dir}: {changed}"
