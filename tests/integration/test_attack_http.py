"""Issue 12, findings 7 and 9 (phone side): the phone HTTP port under connection attacks.

Every test runs a real `provisiond serve` process (tests/serve_process.py) whose limits are
shortened through their PROVISIOND_* settings, attacks it over real sockets from many 127.x
source addresses, and measures the server process (open fds and RSS from /proc) before, during
and after. Every loop is bounded; every wait has a deadline derived from the shortened settings.

- slow headers (a request head trickled one byte at a time), idle connections (nothing sent)
  and kept-alive connections left idle after a request are closed within the header/idle
  timeouts, and the fds come back;
- stalled uploads (an admitted PUT whose body stops) are cut off with 408 within the body
  timeout, and the memory comes back;
- an upload that is refused (unknown MAC) with `Expect: 100-continue` gets its refusal without
  `100 Continue`: no byte of its body is asked for;
- one source cannot hold more than `max_connections_per_source` connections (the next gets a
  bare 503 and is closed) while another source is still served;
- a `Host` that is not ours (DNS rebinding) gets 421 with no body, from curl and aiohttp;
  IP literals, localhost and the public URL's host are served.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.serve_process import ServeProcess, run_cli, serve

MAC = "001565aabbcc"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
COMMON = "y000000000066.cfg"  # the T46S model file: served to anyone not banned
HEADER_S = 2.0
IDLE_S = 3.0
BODY_S = 2.0
CAP = 20  # per source, for the cap test
# Scheduling slack on top of a timeout: 500 sockets on a 2-core CI box that also runs the test
# client (2 s was once too little there); production timeouts are 10-15 s, and the bug this
# catches kept connections for minutes.
MARGIN_S = 5.0
LINGER_S = min(2.0, BODY_S)  # phone_http.LINGER_S: unread body drained before closing
PUBLIC_HOST = "prov.example.com"


@dataclass
class Proc:
    """What /proc says about the server process."""

    fds: int
    rss_kib: int


def measure(pid: int) -> Proc:
    """Open fds and resident memory of `pid`."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    return Proc(fds, rss)


def _server(tmp: Path, limits: dict[str, str]) -> Iterator[ServeProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PROVISIOND_DATA_DIR"] = str(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    run_cli(env, "db", "upgrade")
    run_cli(env, "keys", "init")
    run_cli(env, "device", "create", "--extension", "200", "--model", "yealink-t46s", "--mac", MAC)
    with serve(tmp, limits) as server:
        yield server


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with header, idle and body timeouts of seconds (and a public URL)."""
    limits = {
        "PROVISIOND_HTTP_HEADER_TIMEOUT_S": str(HEADER_S),
        "PROVISIOND_HTTP_IDLE_TIMEOUT_S": str(IDLE_S),
        "PROVISIOND_HTTP_BODY_TIMEOUT_S": str(BODY_S),
        "PROVISIOND_PUBLIC_URL": f"http://{PUBLIC_HOST}:8080/",
    }
    yield from _server(tmp_path_factory.mktemp("short"), limits)


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with a small per-source cap and timeouts long enough to hold connections."""
    limits = {
        "PROVISIOND_HTTP_MAX_CONNECTIONS_PER_SOURCE": str(CAP),
        "PROVISIOND_HTTP_HEADER_TIMEOUT_S": "60",
        "PROVISIOND_HTTP_IDLE_TIMEOUT_S": "60",
    }
    yield from _server(tmp_path_factory.mktemp("capped"), limits)


Conn = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(server: ServeProcess, source: str) -> Conn:
    """A TCP connection to the phone port from `source` (an address of 127.0.0.0/8)."""
    return await asyncio.open_connection(
        "127.0.0.1", server.phone_port, local_addr=(source, 0), limit=1 << 20
    )


async def closed_after(conn: Conn, deadline: float, trickle: bool = False) -> float:
    """Seconds until the server closed `conn` (EOF or reset), reading what it sends; with
    `trickle`, one more header byte every 0.2 s meanwhile. Raises at `deadline`."""
    reader, writer = conn
    started = time.monotonic()
    try:
        while time.monotonic() < deadline:
            try:
                if trickle and not writer.is_closing():
                    writer.write(b"X")
                    await writer.drain()
                data = await asyncio.wait_for(reader.read(65536), 0.2)
            except TimeoutError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                break
            if not data:
                break
        else:
            raise AssertionError("the server kept the connection open past the deadline")
    finally:
        writer.close()  # also when the assertion fails: no socket outlives the test
    return time.monotonic() - started


def sources(block: int, count: int) -> list[str]:
    """`count` distinct source addresses 127.<block>.x.y."""
    return [f"127.{block}.{1 + n // 200}.{1 + n % 200}" for n in range(count)]


async def wait_fds(pid: int, at_most: int, deadline: float) -> int:
    """Poll until the process holds at most `at_most` fds (or the deadline); the count."""
    while True:
        fds = measure(pid).fds
        if fds <= at_most or time.monotonic() > deadline:
            return fds
        await asyncio.sleep(0.05)


async def test_slow_header_and_idle_connections_are_closed(short: ServeProcess) -> None:
    """200 slow-header, 200 silent and 100 kept-alive idle connections from 500 addresses."""
    pid = short.process.pid
    before = measure(pid)
    request = f"GET /{COMMON} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    async def kept_alive(source: str) -> Conn:
        reader, writer = await connect(short, source)
        writer.write(request)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200"), head
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        return reader, writer

    async def slow_head(source: str) -> Conn:
        reader, writer = await connect(short, source)
        writer.write(b"GET /" + COMMON.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        return reader, writer

    kept = await asyncio.gather(*(kept_alive(s) for s in sources(12, 100)))
    slow = await asyncio.gather(*(slow_head(s) for s in sources(10, 200)))
    silent = await asyncio.gather(*(connect(short, s) for s in sources(11, 200)))
    try:
        # The kernel completes handshakes before the server accepts them: wait (bounded)
        # until the server holds them all, so each one's timeout has started.
        deadline = time.monotonic() + 10
        while measure(pid).fds < before.fds + 450 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        during = measure(pid)
        assert during.fds >= before.fds + 450  # they were all accepted and held
        started = time.monotonic()
        deadline = started + max(HEADER_S, IDLE_S) + MARGIN_S
        times = await asyncio.gather(
            *(closed_after(c, deadline, trickle=True) for c in slow),
            *(closed_after(c, deadline) for c in silent),
            *(closed_after(c, deadline) for c in kept),
        )
    finally:
        for _, writer in (*kept, *slow, *silent):
            writer.close()  # no socket outlives the test, whatever failed
    slow_s, silent_s, kept_s = max(times[:200]), max(times[200:400]), max(times[400:])
    assert slow_s <= HEADER_S + MARGIN_S
    assert silent_s <= HEADER_S + MARGIN_S
    assert kept_s <= IDLE_S + MARGIN_S
    fds = await wait_fds(pid, before.fds + 5, time.monotonic() + 2)
    after = measure(pid)
    print(
        f"\nslow/idle: fds {before.fds} -> {during.fds} -> {fds}; RSS {before.rss_kib} -> "
        f"{during.rss_kib} -> {after.rss_kib} KiB; closed after {slow_s:.2f} s (slow head), "
        f"{silent_s:.2f} s (silent), {kept_s:.2f} s (kept-alive idle)"
    )
    assert fds <= before.fds + 5
    # The listener still serves.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{short.phone_port}/{COMMON}") as response:
            assert response.status == 200


async def test_stalled_uploads_are_cut_off(short: ServeProcess) -> None:
    """100 admitted uploads that announce 200 KB, send 1 KB and stall: 408 and closed."""
    pid = short.process.pid
    before = measure(pid)
    head = (
        f"PUT /{MAC}-local.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n"
        "Content-Length: 200000\r\n\r\n"
    ).encode()
    conns = [await connect(short, s) for s in sources(13, 100)]
    for _, writer in conns:
        writer.write(head + b"x" * 1024)
    started = time.monotonic()

    async def answer(conn: Conn) -> bytes:
        reader, writer = conn
        try:
            return await asyncio.wait_for(reader.read(), BODY_S + LINGER_S + MARGIN_S)
        finally:
            writer.close()

    answers = await asyncio.gather(*(answer(c) for c in conns))
    elapsed = time.monotonic() - started
    during = measure(pid)
    assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[0]
    assert elapsed <= BODY_S + LINGER_S + MARGIN_S  # 408 at BODY_S, closed after the linger
    fds = await wait_fds(pid, before.fds + 5, time.monotonic() + 2)
    after = measure(pid)
    print(
        f"\nstalled uploads: 100 cut off within {elapsed:.2f} s; fds {before.fds} -> {fds}; "
        f"RSS {before.rss_kib} -> {during.rss_kib} -> {after.rss_kib} KiB"
    )
    assert fds <= before.fds + 5
    assert after.rss_kib - before.rss_kib < 32 * 1024  # not 100 bodies' worth held


async def test_refused_upload_never_gets_100_continue(short: ServeProcess) -> None:
    """An upload the pipeline refuses (unknown MAC) is answered before any body is asked for;
    an admitted one gets `100 Continue` and is stored."""
    for mac, first in (("001565ffffff", b"HTTP/1.1 404"), (MAC, b"HTTP/1.1 100 Continue")):
        reader, writer = await connect(short, "127.0.14.1")
        ua = UA.replace("aa:bb:cc", ":".join(mac[i : i + 2] for i in (6, 8, 10)))
        writer.write(
            f"PUT /{mac}-local.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {ua}\r\n"
            "Content-Length: 5\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)
        assert line.startswith(first), line
        if mac == MAC:
            assert await reader.readexactly(2) == b"\r\n"  # the end of the interim answer
            writer.write(b"a=1\r\n")
            assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).startswith(
                b"HTTP/1.1 201"
            )
        writer.close()


async def test_per_source_cap_refuses_extra_connections(capped: ServeProcess) -> None:
    """Source A holds CAP connections: its next one gets 503 and is closed; source B is
    served meanwhile; once A closes one, A is served again."""
    pid = capped.process.pid
    before = measure(pid)
    held = [await connect(capped, "127.0.20.1") for _ in range(CAP)]
    await asyncio.sleep(0.2)  # every accept handled
    extra = [await connect(capped, "127.0.20.1") for _ in range(30)]
    refused = await asyncio.gather(*(asyncio.wait_for(r.read(), 5) for r, _ in extra))
    for _, writer in extra:
        writer.close()
    assert all(answer.startswith(b"HTTP/1.1 503") for answer in refused), refused[0]
    url = f"http://127.0.0.1:{capped.phone_port}/{COMMON}"
    connector = aiohttp.TCPConnector(local_addr=("127.0.20.2", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        for _ in range(5):
            async with http.get(url) as response:
                assert response.status == 200
    during = measure(pid)
    held.pop()[1].close()
    await asyncio.sleep(0.2)
    reader, writer = await connect(capped, "127.0.20.1")
    writer.write(f"GET /{COMMON} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n"), 5)).startswith(b"HTTP/1.1 200")
    writer.close()
    for _, w in held:
        w.close()
    fds = await wait_fds(pid, before.fds + 5, time.monotonic() + 5)
    print(f"\ncap: fds {before.fds} -> {during.fds} -> {fds}; 30/30 over the cap refused")
    assert during.fds <= before.fds + CAP + 5  # the refused ones were not kept
    assert fds <= before.fds + 5


async def _curl(server: ServeProcess, host: str) -> tuple[int, bytes]:
    process = await asyncio.create_subprocess_exec(
        "curl",
        *("-s", "--max-time", "10", "-o", "-", "-w", "\n%{http_code}", "-H", f"Host: {host}"),
        f"http://127.0.0.1:{server.phone_port}/{COMMON}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    body, _, code = out.rpartition(b"\n")
    return int(code), body


async def test_foreign_host_is_refused(short: ServeProcess) -> None:
    """DNS rebinding: a Host that is not ours gets a bare 421; ours are served."""
    for host in ("evil.example", "attacker.test:8080", f"{PUBLIC_HOST}.evil.example"):
        code, body = await _curl(short, host)
        assert (code, body) == (421, b""), host
    for host in (PUBLIC_HOST, f"{PUBLIC_HOST}:8080", "localhost", "127.0.0.1:1", "[::1]:80"):
        code, body = await _curl(short, host)
        assert code == 200, host
        assert body
    url = f"http://127.0.0.1:{short.phone_port}/{COMMON}"
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Host": "rebound.example"}) as response:
            assert response.status == 421
            assert await response.read() == b""
        # Not even a per-device upload or file is looked at under a foreign Host.
        put = f"http://127.0.0.1:{short.phone_port}/{MAC}-local.cfg"
        headers = {"Host": "rebound.example", "User-Agent": UA}
        async with http.put(put, data=b"x=1\n", headers=headers) as response:
            assert response.status == 421
