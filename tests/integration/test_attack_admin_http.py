"""Attack finding F9: the admin port (API, web console, metrics) under connection attacks.

Like test_attack_http.py for the phone port: a real `provisiond serve` process whose admin
limits are shortened through their PROVISIOND_ADMIN_* settings, attacked over real sockets from
many 127.x source addresses, with its open fds read from /proc.

- slow request heads and silent connections are closed within the header timeout, kept-alive
  idle ones within the idle timeout, without a token, and the fds come back;
- a request body that stalls gets a JSON 408 within the body timeout and its connection closes;
- one source cannot hold more than `max_connections_per_source` connections (the next gets a
  bare 503) while another source is served;
- meanwhile the console and the API work, over kept-alive connections (aiohttp, curl).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.integration.test_attack_http import Conn, closed_after, measure, sources, wait_fds
from tests.serve_process import ServeProcess, first_admin_token, run_cli, serve

HEADER_S = 2.0
IDLE_S = 3.0
BODY_S = 2.0
CAP = 20  # per source, for the cap test
MARGIN_S = 5.0  # scheduling slack (see test_attack_http.py); the bug held connections for ever
LINGER_S = min(2.0, BODY_S)  # unread body bytes drained before closing


def _server(tmp: pytest.TempPathFactory, name: str, limits: dict[str, str]) -> Iterator[Admin]:
    data = tmp.mktemp(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PROVISIOND_DATA_DIR"] = str(data)
    run_cli(env, "db", "upgrade")
    run_cli(env, "keys", "init")
    with serve(data, limits) as server:
        yield Admin(server, first_admin_token(server))


class Admin:
    """A running server and its admin token."""

    def __init__(self, server: ServeProcess, token: str) -> None:
        self.server = server
        self.token = token
        self.port = server.admin_port
        self.url = f"http://127.0.0.1:{server.admin_port}"

    async def connect(self, source: str) -> Conn:
        """A TCP connection to the admin port from `source` (an address of 127.0.0.0/8)."""
        return await asyncio.open_connection(
            "127.0.0.1", self.port, local_addr=(source, 0), limit=1 << 20
        )

    async def works(self, source: str) -> None:
        """From `source`: the console page and two API calls on one kept-alive connection (a
        browser's way), then an API call by curl."""
        opened: list[object] = []

        async def count(*args: object) -> None:
            opened.append(args)

        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(count)
        connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=1)
        headers = {"Authorization": f"Bearer {self.token}"}
        async with aiohttp.ClientSession(
            connector=connector, headers=headers, trace_configs=[trace]
        ) as http:
            for path in ("/console/", "/api/v1/users", "/api/v1/devices?limit=5"):
                async with http.get(self.url + path) as response:
                    assert response.status == 200, path
                    await response.read()
        assert len(opened) == 1  # one connection, kept alive
        process = await asyncio.create_subprocess_exec(
            *("curl", "-s", "--max-time", "10", "--interface", source, "-o", "/dev/null"),
            *("-w", "%{http_code}", "-H", f"Authorization: Bearer {self.token}"),
            f"{self.url}/api/v1/users",
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await process.communicate()
        assert out == b"200"


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """A server with admin header, idle and body timeouts of seconds."""
    limits = {
        "PROVISIOND_ADMIN_HEADER_TIMEOUT_S": str(HEADER_S),
        "PROVISIOND_ADMIN_IDLE_TIMEOUT_S": str(IDLE_S),
        "PROVISIOND_ADMIN_BODY_TIMEOUT_S": str(BODY_S),
    }
    yield from _server(tmp_path_factory, "admin_short", limits)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Admin]:
    """A server with a small admin per-source cap and timeouts long enough to hold them."""
    limits = {
        "PROVISIOND_ADMIN_MAX_CONNECTIONS_PER_SOURCE": str(CAP),
        "PROVISIOND_ADMIN_HEADER_TIMEOUT_S": "60",
        "PROVISIOND_ADMIN_IDLE_TIMEOUT_S": "60",
    }
    yield from _server(tmp_path_factory, "admin_capped", limits)


async def test_slow_heads_and_idle_connections_are_closed(short: Admin) -> None:
    """100 slow heads, 100 silent and 20 kept-alive idle connections, from 220 addresses."""
    pid = short.server.process.pid
    request = (
        f"GET /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {short.token}\r\n\r\n"
    ).encode()

    async def kept_alive(source: str) -> Conn:
        reader, writer = await short.connect(source)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return reader, writer

    async def slow_head(source: str) -> Conn:
        reader, writer = await short.connect(source)
        writer.write(b"GET /api/v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        return reader, writer

    # Warm up first: the database pool grows to serve 20 requests at once.
    for _, writer in await asyncio.gather(*(kept_alive(s) for s in sources(49, 20))):
        writer.close()
    await asyncio.sleep(0.5)
    before = measure(pid)
    kept = await asyncio.gather(*(kept_alive(s) for s in sources(50, 20)))
    slow = await asyncio.gather(*(slow_head(s) for s in sources(51, 100)))
    silent = await asyncio.gather(*(short.connect(s) for s in sources(52, 100)))
    try:
        deadline = time.monotonic() + 10  # until the server holds them all (bounded)
        while measure(pid).fds < before.fds + 200 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        during = measure(pid)
        assert during.fds >= before.fds + 200  # they were accepted and held
        deadline = time.monotonic() + max(HEADER_S, IDLE_S) + MARGIN_S
        times = await asyncio.gather(
            *(closed_after(c, deadline, trickle=True) for c in slow),
            *(closed_after(c, deadline) for c in silent),
            *(closed_after(c, deadline) for c in kept),
        )
    finally:
        for _, writer in (*kept, *slow, *silent):
            writer.close()
    slow_s, silent_s, kept_s = max(times[:100]), max(times[100:200]), max(times[200:])
    assert slow_s <= HEADER_S + MARGIN_S
    assert silent_s <= HEADER_S + MARGIN_S
    assert kept_s <= IDLE_S + MARGIN_S
    fds = await wait_fds(pid, before.fds + 5, time.monotonic() + 2)
    print(
        f"\nadmin slow/idle: fds {before.fds} -> {during.fds} -> {fds}; closed after "
        f"{slow_s:.2f} s (slow head), {silent_s:.2f} s (silent), {kept_s:.2f} s (idle)"
    )
    assert fds <= before.fds + 5
    await short.works("127.0.53.1")


async def test_stalled_body_gets_408(short: Admin) -> None:
    """An authenticated POST that announces 1000 bytes and sends 10: a JSON 408 within the
    body timeout, then the connection closes; nothing was created."""
    body = b'{"userna'
    head = (
        f"POST /api/v1/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {short.token}\r\nContent-Length: 1000\r\n\r\n"
    ).encode()
    reader, writer = await short.connect("127.0.54.1")
    started = time.monotonic()
    try:
        writer.write(head + body)
        answer = await asyncio.wait_for(reader.read(), BODY_S + LINGER_S + MARGIN_S)
    finally:
        writer.close()
    elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "timeout"
    assert BODY_S - 0.5 <= elapsed <= BODY_S + LINGER_S + MARGIN_S
    await short.works("127.0.54.2")
    headers = {"Authorization": f"Bearer {short.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(f"{short.url}/api/v1/users") as response:
            assert (await response.json())["items"] == []
        # A body that arrives in time is read as before, with or without 100-continue.
        user = {"username": "ann", "display_name": "Ann", "main_extension": "301"}
        async with http.post(f"{short.url}/api/v1/users", json=user) as response:
            assert response.status == 201, await response.text()
    process = await asyncio.create_subprocess_exec(
        *("curl", "-s", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"),
        *("-H", f"Authorization: Bearer {short.token}", "-H", "Expect: 100-continue"),
        *("-H", "Content-Type: application/json", "-d", json.dumps({**user, "username": "bo"})),
        f"{short.url}/api/v1/users",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert out == b"409"  # read whole and judged: the extension is taken


async def test_per_source_cap_refuses_extra_connections(capped: Admin) -> None:
    """Source A holds CAP connections: its next ones get 503 and are closed; source B uses
    the console and the API meanwhile; once A closes one, A is served again."""
    pid = capped.server.process.pid
    before = measure(pid)
    held = [await capped.connect("127.0.60.1") for _ in range(CAP)]
    try:
        await asyncio.sleep(0.2)  # every accept handled
        extra = [await capped.connect("127.0.60.1") for _ in range(10)]
        refused = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in extra))
        for _, writer in extra:
            writer.close()
        assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused), refused[0]
        await capped.works("127.0.60.2")
        during = measure(pid)
        for _ in range(2):  # room for works()'s two clients, one after the other
            held.pop()[1].close()
        await asyncio.sleep(0.2)
        await capped.works("127.0.60.1")
    finally:
        for _, writer in held:
            writer.close()
    fds = await wait_fds(pid, before.fds + 5, time.monotonic() + 5)
    assert during.fds <= before.fds + CAP + 5  # the refused ones were not kept
    assert fds <= before.fds + 5
