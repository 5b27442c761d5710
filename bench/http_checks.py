"""Correctness and security checks of the HTTP storms, with real clients on loopback.

- `verify_all` / `verify_all_digest`: every device's file fetched once (aiohttp) and compared
  byte for byte; the digest variant logs in with SHA-256 (our own client code), so with the
  wrk script's MD5 both algorithms are exercised.
- `walk_and_ban`: what wrk cannot do (it has one source address, 127.0.0.1): an unknown-MAC
  walk from 127.0.0.3 (`http.client` bound to that address), which must first hit the walk
  memory (a known MAC asked without naming itself is refused) and then the ban, while
  127.0.0.1 is still served; and a request from 127.0.0.4 (the small site "bench-other") for
  a device bound to the main site: refused (site binding). It runs before the load so that a
  ban is in force, and looked up, during every request of the storm; `ban_holds` repeats
  the end of it after the load.
- `digest_attacks`: against a `digest` site, from 127.0.0.5: no credentials, a replayed
  nonce count, another device's credentials, wrong passwords up to the ban; a banned source
  is still served with valid credentials (provisiond's design), refused a shared file.

Answers expected in an `open` site: 404 for every "not for you" per-device request (unknown,
walked, banned, another site's device: no answer tells them apart), 403 for a shared file
asked by a banned source.
"""

from __future__ import annotations

import asyncio
import http.client
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
import common
import digest_client

VERIFY_CONCURRENCY = 64
BARE_UA = common.BARE_USER_AGENT  # a User-Agent that does not name a MAC
SHARED_FILE = "y000000000000.cfg"  # Yealink's common file: no secret, served to the unbanned
WALKER = "127.0.0.3"
DIGEST_PROBER = "127.0.0.5"


# -- byte-for-byte passes ------------------------------------------------------------------


async def verify_all(
    port: int, bodies: dict[str, bytes], macs: Iterable[str] | None = None
) -> dict[str, int]:
    """GET each device's file once (all, or `macs`), compare byte for byte; ok/wrong/error."""
    counts = {"ok": 0, "wrong": 0, "error": 0}
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(mac: str) -> None:
            headers = {"User-Agent": common.storm_user_agent(mac)}
            async with gate:
                try:
                    url = f"http://127.0.0.1:{port}/{common.config_path(mac)}"
                    async with session.get(url, headers=headers) as response:
                        body = await response.read()
                        good = response.status == 200 and body == bodies[mac]
                        counts["ok" if good else "wrong"] += 1
                except (aiohttp.ClientError, TimeoutError):
                    counts["error"] += 1

        await asyncio.gather(*(one(mac) for mac in (bodies if macs is None else macs)))
    return counts


async def verify_all_digest(port: int, bodies: dict[str, bytes]) -> dict[str, int]:
    """As `verify_all` under a digest site: 401, then SHA-256 credentials, then the file."""
    counts = {"ok": 0, "wrong": 0, "error": 0, "challenged": 0}
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one(mac: str) -> None:
            path = "/" + common.config_path(mac)
            url = f"http://127.0.0.1:{port}{path}"
            headers = {"User-Agent": common.storm_user_agent(mac)}
            async with gate:
                try:
                    async with session.get(url, headers=headers) as first:
                        await first.read()
                        offered = first.headers.getall("WWW-Authenticate", [])
                    challenge = digest_client.pick(offered, "SHA-256")
                    if first.status != 401 or challenge is None:
                        counts["wrong"] += 1
                        return
                    counts["challenged"] += 1
                    headers["Authorization"] = digest_client.authorization(
                        challenge,
                        username=mac,
                        password=common.provisioning_password(mac),
                        method="GET",
                        uri=path,
                    )
                    async with session.get(url, headers=headers) as response:
                        body = await response.read()
                        good = response.status == 200 and body == bodies[mac]
                        counts["ok" if good else "wrong"] += 1
                except (aiohttp.ClientError, TimeoutError):
                    counts["error"] += 1

        await asyncio.gather(*(one(mac) for mac in bodies))
    return counts


# -- one source address at a time ----------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One response, kept whole."""

    status: int
    body: bytes
    headers: list[tuple[str, str]]

    def all(self, name: str) -> list[str]:
        """Every value of header `name`."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


class Client:
    """A keep-alive HTTP/1.1 client bound to one loopback source address."""

    def __init__(self, port: int, source: str) -> None:
        self.port, self.source = port, source
        self.conn = http.client.HTTPConnection(
            "127.0.0.1", port, timeout=10, source_address=(source, 0)
        )

    def get(self, path: str, user_agent: str | None, authorization: str | None = None) -> Answer:
        """GET `path`; the connection is reopened (same source) if the server closed it."""
        headers = {"User-Agent": user_agent} if user_agent else {}
        if authorization:
            headers["Authorization"] = authorization
        self.conn.request("GET", path, headers=headers)
        response = self.conn.getresponse()
        return Answer(response.status, response.read(), response.getheaders())

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class Steps:
    """The checks' log: each step's expectation, what came, and whether they agree."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def expect(self, name: str, wanted: str, got: str, ok: bool) -> bool:
        """Record one step."""
        self.rows.append({"step": name, "expected": wanted, "got": got, "ok": ok})
        return ok

    def status(self, name: str, answer: Answer, status: int, body: bytes | None = None) -> bool:
        """A step whose answer must have `status` (and, when given, exactly `body`)."""
        ok = answer.status == status and (body is None or answer.body == body)
        got = f"{answer.status}" + ("" if body is None or ok else f", {len(answer.body)} bytes")
        wanted = f"{status}" + ("" if body is None else " + the exact file")
        return self.expect(name, wanted, got, ok)

    @property
    def ok(self) -> bool:
        """Every step agreed."""
        return all(row["ok"] for row in self.rows)

    def print(self) -> None:
        """The steps as a table."""
        rows = [
            [r["step"], r["expected"], r["got"], "ok" if r["ok"] else "FAILED"] for r in self.rows
        ]
        common.print(common.table(["check", "expected", "got", ""], rows))


def _unknown(fleet: common.Fleet, n: int) -> str:
    """The n-th MAC that is no device of the fleet (same OUI, beyond the fleet)."""
    return common.device_mac(fleet.count + 1000 + n)


def _path(mac: str) -> str:
    return "/" + common.config_path(mac)


def walk_and_ban(
    port: int, fleet: common.Fleet, bodies: dict[str, bytes], unknown_per_source: int
) -> Steps:
    """Walk memory, ban, site binding and the innocent neighbour, on an `open` secure fleet."""
    steps = Steps()
    known = common.device_mac(0)  # bound to the main site
    own_ua = common.USER_AGENT.format(mac=known)
    walker = Client(port, WALKER)
    try:
        steps.status(
            f"{WALKER} known MAC, its own User-Agent",
            walker.get(_path(known), own_ua),
            200,
            bodies[known],
        )
        first = [walker.get(_path(_unknown(fleet, i)), BARE_UA).status for i in range(3)]
        steps.expect(
            f"{WALKER} 3 unknown MACs", "404 404 404", " ".join(map(str, first)), first == [404] * 3
        )
        steps.status(
            f"{WALKER} known MAC, User-Agent without MAC (walk memory)",
            walker.get(_path(known), BARE_UA),
            404,
        )
        steps.status(
            f"{WALKER} known MAC, its own User-Agent (not banned yet)",
            walker.get(_path(known), own_ua),
            200,
            bodies[known],
        )
        rest = [
            walker.get(_path(_unknown(fleet, i)), BARE_UA).status
            for i in range(3, unknown_per_source)
        ]
        steps.expect(
            f"{WALKER} unknown MACs 4..{unknown_per_source} (ban threshold)",
            "all 404",
            ",".join(sorted({str(s) for s in rest})),
            set(rest) == {404},
        )
    finally:
        walker.close()
    ban_holds(port, bodies, steps)
    other = Client(port, common.OTHER_SITE_SOURCE)
    try:
        where = f"{common.OTHER_SITE_SOURCE} (site {common.SITE_OTHER})"
        steps.status(
            f"{where} device bound to {common.SITE_MAIN}",
            other.get(_path(known), own_ua),
            404,
        )
    finally:
        other.close()
    return steps


def ban_holds(port: int, bodies: dict[str, bytes], steps: Steps) -> Steps:
    """The walker is refused (on a new connection too) while 127.0.0.1 is served."""
    known = common.device_mac(0)
    own_ua = common.USER_AGENT.format(mac=known)
    walker = Client(port, WALKER)
    try:
        steps.status(
            f"{WALKER} banned: known MAC, its own User-Agent", walker.get(_path(known), own_ua), 404
        )
        steps.status(f"{WALKER} banned: shared file", walker.get("/" + SHARED_FILE, own_ua), 403)
    finally:
        walker.close()
    neighbour = Client(port, "127.0.0.1")
    try:
        steps.status(
            "127.0.0.1 (same /24): known MAC",
            neighbour.get(_path(known), own_ua),
            200,
            bodies[known],
        )
        steps.status("127.0.0.1: shared file", neighbour.get("/" + SHARED_FILE, own_ua), 200)
    finally:
        neighbour.close()
    return steps


def digest_attacks(port: int, bodies: dict[str, bytes], auth_failures: int) -> Steps:
    """Digest enforcement on a `digest` secure fleet, from 127.0.0.5."""
    steps = Steps()
    mac, other = common.device_mac(1), common.device_mac(2)
    ua, path = common.USER_AGENT.format(mac=mac), _path(mac)
    password = common.provisioning_password(mac)
    client = Client(port, DIGEST_PROBER)
    try:
        first = client.get(path, ua)
        offered = first.all("WWW-Authenticate")
        algorithms = sorted(c.algorithm for c in map(digest_client.parse_challenge, offered) if c)
        steps.expect(
            f"{DIGEST_PROBER} no credentials",
            "401 MD5+SHA-256",
            f"{first.status} {'+'.join(algorithms)}",
            first.status == 401 and algorithms == ["MD5", "SHA-256"],
        )
        challenge = digest_client.pick(offered, "MD5")
        if challenge is None:
            return steps
        cnonce = "0a4f113b"
        login = digest_client.authorization(
            challenge, username=mac, password=password, method="GET", uri=path, nc=1, cnonce=cnonce
        )
        steps.status(f"{DIGEST_PROBER} MD5, nc=1", client.get(path, ua, login), 200, bodies[mac])
        replay = client.get(path, ua, login)
        stale = [
            c.stale for c in map(digest_client.parse_challenge, replay.all("WWW-Authenticate")) if c
        ]
        steps.expect(
            f"{DIGEST_PROBER} same nonce, nc=1 again (replay)",
            "401 stale=true",
            f"{replay.status} stale={any(stale)}",
            replay.status == 401 and any(stale),
        )
        again = digest_client.authorization(
            challenge, username=mac, password=password, method="GET", uri=path, nc=2, cnonce=cnonce
        )
        steps.status(
            f"{DIGEST_PROBER} same nonce, nc=2", client.get(path, ua, again), 200, bodies[mac]
        )
        foreign = digest_client.authorization(
            challenge,
            username=other,
            password=common.provisioning_password(other),
            method="GET",
            uri=path,
            nc=3,
            cnonce=cnonce,
        )
        steps.status(
            f"{DIGEST_PROBER} another device's credentials", client.get(path, ua, foreign), 401
        )
        wrong = [
            client.get(
                path,
                ua,
                digest_client.authorization(
                    challenge, username=mac, password="wrong", method="GET", uri=path, nc=4 + i
                ),
            ).status
            for i in range(auth_failures - 1)
        ]
        steps.expect(
            f"{DIGEST_PROBER} wrong password x{auth_failures - 1} (ban threshold)",
            "all 401",
            ",".join(sorted({str(s) for s in wrong})),
            set(wrong) == {401},
        )
        steps.status(f"{DIGEST_PROBER} banned: shared file", client.get("/" + SHARED_FILE, ua), 403)
        fresh = digest_client.pick(client.get(path, ua).all("WWW-Authenticate"), "MD5")
        if fresh is not None:
            login = digest_client.authorization(
                fresh, username=mac, password=password, method="GET", uri=path
            )
            steps.status(
                f"{DIGEST_PROBER} banned, valid credentials (a phone behind a banned NAT)",
                client.get(path, ua, login),
                200,
                bodies[mac],
            )
    finally:
        client.close()
    return steps
