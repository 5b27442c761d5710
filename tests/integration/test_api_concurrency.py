"""Parallel admin requests against one user keep the rules true (DESIGN.md rules 1, 2, 4, 7).

The requests go through real sockets at the same time (asyncio.gather over the test client);
the database serialises admin writes (BEGIN IMMEDIATE on SQLite, an advisory lock on
PostgreSQL), so whatever order they land in, the end state must be consistent.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from tests.integration.api_fixtures import Api, Reply, mac_for

DEVICES = 10
REQUESTS = 50


async def _consistent(api: Api, user_id: int) -> dict[str, Any]:
    """Assert the user's invariants and return the user."""
    user: dict[str, Any] = await api.ok("GET", f"/api/v1/users/{user_id}")
    by_id = {d["id"]: d for d in user["devices"]}
    assert user["primary_device_id"] in by_id  # exactly one primary, one of the user's devices
    assert user["main_extension"] == by_id[user["primary_device_id"]]["extension"]
    rung = (await api.ok("GET", f"/api/v1/directory/{user['main_extension']}"))["ring_targets"]
    primaries = [t["device_id"] for t in rung if t.get("primary")]
    assert primaries == [user["primary_device_id"]]
    return user


async def test_parallel_assign_and_primary(api: Api) -> None:
    """50 parallel assign / primary-device requests: one primary, main extension follows it."""
    user = await api.user("mrossi", "300")
    devices = [await api.device(f"{300 + n}", mac_for(n)) for n in range(DEVICES)]
    await api.ok("PUT", f"/api/v1/users/{user['id']}/devices/{devices[0]['id']}")
    rng = random.Random(20240501)  # a fixed mix, so a failure can be replayed

    def request(index: int) -> tuple[str, str, object]:
        device = rng.choice(devices)["id"]
        if index % 2:
            return ("PUT", f"/api/v1/users/{user['id']}/primary-device", {"device_id": device})
        return ("PUT", f"/api/v1/users/{user['id']}/devices/{device}", None)

    plan = [request(i) for i in range(REQUESTS)]
    replies: list[Reply] = await asyncio.gather(*(api.call(m, p, b) for m, p, b in plan))

    statuses = Counter(r.status for r in replies)
    assert set(statuses) <= {200, 409}, [r.text for r in replies if r.status not in (200, 409)]
    for reply in replies:
        if reply.status == 409:  # only "not one of the user's devices yet" may be refused
            assert reply.json["field"] == "device_id", reply.text
    assert statuses[200] >= REQUESTS // 2  # every assign succeeds, so at least half
    final = await _consistent(api, user["id"])
    assigned = {p.rsplit("/", 1)[1] for m, p, b in plan if b is None} | {str(devices[0]["id"])}
    assert {str(d["id"]) for d in final["devices"]} == assigned


async def test_parallel_primary_only(api: Api) -> None:
    """All devices assigned, then every request picks a primary: the last one wins cleanly."""
    user = await api.user("gverdi", "400")
    devices = [await api.device(f"{400 + n}", mac_for(n), user_id=user["id"]) for n in range(6)]
    path = f"/api/v1/users/{user['id']}/primary-device"
    replies = await asyncio.gather(
        *(api.call("PUT", path, {"device_id": devices[i % 6]["id"]}) for i in range(30))
    )
    assert [r.status for r in replies] == [200] * 30
    for reply in replies:
        body = reply.json
        changed = body.get("main_extension_changed")
        if changed is not None:
            assert changed["new"] == body["main_extension"]
            assert changed["old"] != changed["new"]
    await _consistent(api, user["id"])


async def test_last_licence_seat_race(api: Api) -> None:
    """Two users ask for the last Team App seat at the same time: exactly one gets it."""
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 2})
    await api.user("holder", "500", team_app={"enabled": True})
    rivals = [await api.user(name, ext) for name, ext in (("anna", "501"), ("bruno", "502"))]
    replies = await asyncio.gather(
        *(
            api.call("PATCH", f"/api/v1/users/{u['id']}", {"team_app": {"enabled": True}})
            for u in rivals
        )
    )
    assert sorted(r.status for r in replies) == [200, 409]
    loser = next(r for r in replies if r.status == 409).json
    assert loser["error"] == "licence_refused"
    assert loser["module"] == "APP_USERS"
    assert (await api.ok("GET", "/api/v1/licences"))["APP_USERS"] == {"count": 2, "used": 2}
    enabled = [
        (await api.ok("GET", f"/api/v1/users/{u['id']}"))["team_app"]["enabled"] for u in rivals
    ]
    assert sorted(enabled) == [False, True]


async def test_last_seat_race_on_create(api: Api) -> None:
    """Two users created in parallel, both with the Team App, for one seat: one is created."""
    await api.ok("PUT", "/api/v1/licences", {"APP_USERS": 1})
    bodies = [
        {
            "username": name,
            "display_name": name,
            "main_extension": ext,
            "team_app": {"enabled": True},
        }
        for name, ext in (("carla", "601"), ("dario", "602"))
    ]
    replies = await asyncio.gather(*(api.call("POST", "/api/v1/users", b) for b in bodies))
    assert sorted(r.status for r in replies) == [201, 409]
    assert (await api.ok("GET", "/api/v1/users"))["total"] == 1
    assert (await api.ok("GET", "/api/v1/licences"))["APP_USERS"] == {"count": 1, "used": 1}
