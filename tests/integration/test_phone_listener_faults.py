"""The phone listener (frontends/phone_http.py) when the pipeline fails: a server bug is a 500
with its traceback in the log, never a client's 400; a malformed request stays one INFO line.

A real listener on loopback with a pipeline that raises (the bug a broken template would be),
at once (`respond`) or after awaiting (an upload's `handle`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

import pytest

from provisiond.domain.phone import Outcome, PhoneRequest, PhoneResponse
from provisiond.frontends.http_common import SourceCounter
from provisiond.frontends.phone_http import HttpLimits, start_phone_listener

GOOD = PhoneResponse(Outcome.OK, body=b"fine\n", content_type="text/plain", etag='"f"')


class Broken:
    """Fails on "bug.cfg" at once, on "later.cfg" after a pause, and on any upload's body."""

    def respond(self, request: PhoneRequest) -> PhoneResponse | Awaitable[PhoneResponse]:
        if request.path == "bug.cfg":
            raise RuntimeError("a bug in the pipeline")
        if request.path == "later.cfg":
            return self.handle(request)
        return GOOD

    async def handle(self, request: PhoneRequest) -> PhoneResponse:
        await asyncio.sleep(0.01)
        raise RuntimeError("a bug after awaiting")

    async def admit_upload(self, request: PhoneRequest) -> PhoneResponse | int:
        return 1024


async def exchange(port: int, raw: bytes) -> bytes:
    """Send `raw`, read until the server closes (or 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(raw)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(65536), 5)
    finally:
        writer.close()


async def test_a_pipeline_bug_is_a_500_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    listener = await start_phone_listener(
        Broken(), "127.0.0.1", 0, counter=SourceCounter(16), limits=HttpLimits()
    )
    try:
        with caplog.at_level(logging.INFO):
            for path in ("bug.cfg", "later.cfg"):
                head = f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                answer = await exchange(listener.port, head.encode())
                assert answer.startswith(b"HTTP/1.1 500 "), answer
                assert b"Connection: close" in answer
                assert answer.endswith(b"Internal Server Error\n")  # the length it announced
            for _ in range(3):
                answer = await exchange(listener.port, b"GET /\xc3\xbc HTTP/1.1\r\nHost: x\r\n\r\n")
                assert answer.startswith(b"HTTP/1.1 400 "), answer
            good = await exchange(
                listener.port, b"GET /ok.cfg HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            assert good.startswith(b"HTTP/1.1 200 ")
            assert good.endswith(b"\r\n\r\nfine\n")
            deadline = time.monotonic() + 5
            while len(caplog.records) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        await listener.close()
    bugs = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert len(bugs) == 2
    assert "Traceback" in caplog.text
    # Three bad requests, one line at most (none when an earlier test of this process logged
    # that kind of fault within the filter's minute), never with a traceback.
    client = [r for r in caplog.records if r not in bugs and r.levelno >= logging.INFO]
    assert len(client) <= 1, [r.getMessage() for r in client]
    assert all(r.levelno == logging.INFO and r.exc_info is None for r in client)
