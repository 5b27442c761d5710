"""Two instances on one PostgreSQL agree on every file after concurrent admin changes and first
boots through both (issue 13, bug 1).

Admin label changes go through either instance's API while phones boot for the first time
through both, each boot binding its device to the site (an audit row written by the phone side).
Afterwards every device's file is the same from both instances and carries the label the
database holds: no instance stepped over a change in the audit log.
"""

from __future__ import annotations

import random
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.databases import PG_URL, pg_database
from tests.integration.test_scale_out import _api, _phone_ready, _prepare
from tests.serve_process import ServeProcess, serve

DEVICES = 30
ROUNDS = 60  # admin changes, alternating instances
SETTLE_S = 5.0  # the feed polls every 0.5 s; NOTIFY makes it faster


def _mac(index: int) -> str:
    return f"0015650b{index:04x}"


def _file(server: ServeProcess, index: int) -> str:
    mac = _mac(index)
    colon = ":".join(mac[i : i + 2] for i in range(0, 12, 2))
    request = urllib.request.Request(
        f"http://127.0.0.1:{server.phone_port}/{mac}.cfg",
        headers={"User-Agent": f"Yealink SIP-T46S 66.86.0.15 {colon}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())


@pytest.fixture
def empty_database() -> Iterator[str]:
    if not PG_URL:
        pytest.skip("two instances need PROVISIOND_TEST_DATABASE_URL (.ci/run sets it)")
    with pg_database("provisiond_f") as url:
        yield url


def test_every_file_agrees_after_concurrent_changes_and_first_boots(
    empty_database: str, tmp_path: Path
) -> None:
    env, token = _prepare(empty_database, tmp_path)
    env["PROVISIOND_PUBLIC_URL"] = "http://prov.example.test/"  # the same files from both
    with serve(tmp_path / "a", env) as a, serve(tmp_path / "b", env) as b:
        api_a, api_b = _api(a, token), _api(b, token)
        _phone_ready(a)
        _phone_ready(b)
        api_a(
            "POST",
            "/sites",
            {"name": "lo", "networks": ["127.0.0.0/8"], "lock_on_first_boot": True},
        )
        ids = [
            api_a(
                "POST",
                "/devices",
                {"extension": str(500 + i), "model": "yealink-t46s", "mac": _mac(i)},
            )["id"]
            for i in range(DEVICES)
        ]
        failures: list[BaseException] = []
        rng = random.Random(13)
        changes = [(rng.randrange(DEVICES), round_) for round_ in range(ROUNDS)]

        def admin() -> None:
            for number, (index, round_) in enumerate(changes):
                call = api_a if number % 2 else api_b
                call("PATCH", f"/devices/{ids[index]}", {"label": f"r{round_}-d{index}"})

        def boots(server: ServeProcess, order: list[int]) -> None:
            for index in order:
                _file(server, index)

        orders = [rng.sample(range(DEVICES), DEVICES) for _ in range(4)]
        with ThreadPoolExecutor(max_workers=5) as pool:
            futures = [pool.submit(admin)]
            futures += [pool.submit(boots, (a, b)[n % 2], order) for n, order in enumerate(orders)]
            for future in futures:
                exc = future.exception(timeout=120)
                if exc is not None:
                    failures.append(exc)
        assert not failures, failures

        truth = {i: api_a("GET", f"/devices/{ids[i]}") for i in range(DEVICES)}
        assert all(d["site_id"] is not None for d in truth.values()), "a first boot left no lock"
        labels = {i: f"account.1.label = {d['label']}\n" for i, d in truth.items() if d["label"]}
        deadline = time.monotonic() + SETTLE_S
        while True:
            differing = [i for i in range(DEVICES) if _file(a, i) != _file(b, i)]
            stale = [i for i, line in labels.items() if line not in _file(a, i)]
            if not differing and not stale:
                break
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {SETTLE_S} s: files differ for {differing}, stale on A for {stale}"
                )
            time.sleep(0.1)
