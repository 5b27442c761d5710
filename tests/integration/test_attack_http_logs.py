"""Attack finding F7: a client on the phone network must not be able to write tracebacks into
the server log.

A real `provisiond serve` process (tests/serve_process.py) writes its log to a file; the tests
talk to it over real sockets and read that file:

- an upload whose client closes the connection right after `100 Continue`;
- request lines with non-ASCII bytes (aiohttp's parser refuses them with 400);
- the same malformed request line on the admin port.

Each leaves no traceback, at most a line or two however often it is repeated, and the server
keeps answering. A real server fault still logs its traceback (a handler that raises, served by
the same listener helper as `serve` uses, with pytest's log capture).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from provisiond.frontends.http_common import SourceCounter, start_guarded_listener
from tests.serve_process import ServeProcess, run_cli, serve

MAC = "001565aabbcc"
UA = "Yealink SIP-T46S 66.86.0.15 00:15:65:aa:bb:cc"
COMMON = "y000000000066.cfg"  # the T46S model file: served to anyone not banned
REPEAT = 30  # attempts per attack: a per-request log line would show as 30 lines
SETTLE_S = 1.0  # time for the server to finish the aborted requests (and log, if it does)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """A server with one Yealink device (whose `-local.cfg` upload is admitted)."""
    tmp = tmp_path_factory.mktemp("logs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISIOND_")}
    env["PROVISIOND_DATA_DIR"] = str(tmp)
    run_cli(env, "db", "upgrade")
    run_cli(env, "keys", "init")
    run_cli(env, "device", "create", "--extension", "200", "--model", "yealink-t46s", "--mac", MAC)
    with serve(tmp) as process:
        deadline = time.monotonic() + 15  # its start-up lines are not the tests' to count
        while "provisiond: serving" not in log_text(process) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield process


def log_text(server: ServeProcess) -> str:
    """Everything the server has logged so far."""
    return server.log_path.read_text(encoding="utf-8", errors="replace")


async def still_serves(server: ServeProcess) -> None:
    """The phone port still answers a common file, the admin port its OpenAPI document."""
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{server.phone_port}/{COMMON}") as response:
            assert response.status == 200
        async with http.get(f"{server.api}/openapi.json") as response:
            assert response.status == 200


async def exchange(port: int, source: str, data: bytes, until: bytes) -> bytes:
    """Connect from `source`, send `data`, read until `until` (or EOF), close at once."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
    try:
        writer.write(data)
        try:
            return await asyncio.wait_for(reader.readuntil(until), 5)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
    finally:
        writer.close()


def new_lines(before: str, after: str) -> list[str]:
    """The lines logged between two reads of the log."""
    assert after.startswith(before)
    return [line for line in after[len(before) :].splitlines() if line.strip()]


async def test_upload_dropped_after_100_continue_logs_no_traceback(server: ServeProcess) -> None:
    """An admitted upload whose client leaves as soon as it is told to send the body."""
    head = (
        f"PUT /{MAC}-local.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: {UA}\r\n"
        "Content-Length: 1000\r\nExpect: 100-continue\r\n\r\n"
    ).encode()
    before = log_text(server)
    for n in range(REPEAT):
        answer = await exchange(server.phone_port, f"127.0.40.{1 + n}", head, b"\r\n\r\n")
        assert answer == b"HTTP/1.1 100 Continue\r\n\r\n", answer
    await asyncio.sleep(SETTLE_S)
    await still_serves(server)
    lines = new_lines(before, log_text(server))
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
    assert len(lines) <= 2, "\n".join(lines)
    # The same upload sent whole is still stored.
    async with aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.phone_port}/{MAC}-local.cfg"
        async with http.put(url, data=b"a=1\n", headers={"User-Agent": UA}) as response:
            assert response.status == 201


@pytest.mark.parametrize("port_name", ["phone_port", "admin_port"])
async def test_non_ascii_request_line_logs_no_traceback(
    server: ServeProcess, port_name: str
) -> None:
    """`GET /\\xc3\\xbc.cfg` is answered 400 and leaves at most a line or two in the log."""
    port = getattr(server, port_name)
    request = b"GET /\xc3\xbc.cfg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    before = log_text(server)
    for n in range(REPEAT):
        answer = await exchange(port, f"127.0.41.{1 + n}", request, b"\r\n")
        assert answer.split(b" ", 2)[1] == b"400", answer  # HTTP/1.0: the version is unread
    await asyncio.sleep(SETTLE_S)
    await still_serves(server)
    lines = new_lines(before, log_text(server))
    assert not [line for line in lines if "Traceback" in line], "\n".join(lines)
    assert len(lines) <= 2, "\n".join(lines)


async def test_a_server_fault_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A handler that fails (a bug, not the client) is logged with its traceback; a malformed
    request line on the same listener only as one line."""

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug in a handler")

    app = web.Application()
    app.router.add_get("/broken", broken)
    runner, site = await start_guarded_listener(
        app,
        "127.0.0.1",
        0,
        counter=SourceCounter(16),
        header_timeout=5,
        idle_timeout=5,
        body_timeout=5,
        name="test HTTP",
    )
    try:
        with caplog.at_level(logging.INFO):
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{site.port}/broken") as response:
                    assert response.status == 500
            bad = b"GET /\xc3\xbc HTTP/1.1\r\nHost: x\r\n\r\n"
            for _ in range(3):
                answer = await exchange(site.port, "127.0.42.1", bad, b"\r\n")
                assert answer.split(b" ", 2)[1] == b"400", answer
            deadline = time.monotonic() + 5
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        await runner.cleanup()
    faults = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(faults) == 1
    assert "a bug in a handler" in caplog.text
    assert "Traceback" in caplog.text
    client = [r for r in caplog.records if r is not faults[0] and r.levelno >= logging.INFO]
    assert len(client) == 1, [r.getMessage() for r in client]  # three requests, one line
    assert client[0].levelno == logging.INFO
    assert client[0].exc_info is None
    assert "test HTTP" in client[0].getMessage()
