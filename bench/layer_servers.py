"""The bare servers of bench/http_layers.py: the same cached body for any path, nothing else.

    python bench/layer_servers.py {aiohttp,httptools} PORT BODY_FILE

Each answers every GET on 127.0.0.1:PORT with the bytes of BODY_FILE (read once), keep-alive
unless the request says otherwise, under uvloop. They exist to show what an HTTP layer costs
by itself, below any application: the floor a phone HTTP front end built on that layer can
reach. Not servers for anything else (no HEAD/404/limits/timeouts).

- aiohttp: aiohttp's low-level server (`aiohttp.web_server.Server`, no Application, router or
  middleware), one `web.Response` per request (aiohttp responses are single-use), no access log.
- httptools: an `asyncio.Protocol` feeding `httptools.HttpRequestParser`; the response
  (status line, Date cached per second, Content-Type, Content-Length, body) is built once per
  second and written whole.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any, ClassVar, cast


def date_header() -> bytes:
    """The HTTP Date of this second."""
    return formatdate(time.time(), usegmt=True).encode()


class HttptoolsProtocol(asyncio.Protocol):
    """One connection: parse with httptools, answer each complete request with the body."""

    cache: ClassVar[dict[tuple[int, bool], bytes]] = {}
    body: ClassVar[bytes] = b""

    def __init__(self) -> None:
        import httptools

        self.parser = httptools.HttpRequestParser(self)
        self.errors = (httptools.HttpParserError, httptools.HttpParserUpgrade)
        self.transport: asyncio.Transport | None = None
        self.closing = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport (uvloop's is not an asyncio.Transport subclass, but is one)."""
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; on_message_complete answers (pipelined requests in order)."""
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except self.errors:
            self._close()

    def on_message_complete(self) -> None:
        """A request is complete: write the whole response, close if not keep-alive."""
        if self.closing or self.transport is None:
            return
        keep = bool(self.parser.should_keep_alive())
        self.transport.write(self.response(keep))
        if not keep:
            self._close()

    @classmethod
    def response(cls, keep: bool) -> bytes:
        """Status line, headers and body, rebuilt once per second (the Date)."""
        second = int(time.time())
        key = (second, keep)
        found = cls.cache.get(key)
        if found is None:
            cls.cache.clear()
            head = (
                b"HTTP/1.1 200 OK\r\nServer: bench\r\nDate: " + date_header() + b"\r\n"
                b"Content-Type: text/plain\r\nContent-Length: " + str(len(cls.body)).encode()
            )
            head += b"\r\n\r\n" if keep else b"\r\nConnection: close\r\n\r\n"
            found = cls.cache[key] = head + cls.body
        return found

    def _close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


async def serve_httptools(port: int, body: bytes) -> asyncio.AbstractServer:
    """The httptools server."""
    HttptoolsProtocol.body = body
    loop = asyncio.get_running_loop()
    return await loop.create_server(HttptoolsProtocol, "127.0.0.1", port, backlog=4096)


async def serve_aiohttp(port: int, body: bytes) -> asyncio.AbstractServer:
    """The aiohttp low-level server."""
    from aiohttp import web, web_server

    async def handler(request: Any) -> web.StreamResponse:
        return web.Response(body=body, content_type="text/plain")

    server = web_server.Server(handler, access_log=None)
    loop = asyncio.get_running_loop()
    return await loop.create_server(server, "127.0.0.1", port, backlog=4096)


async def main(kind: str, port: int, body: bytes) -> None:
    """Serve until SIGTERM/SIGINT."""
    start = serve_aiohttp if kind == "aiohttp" else serve_httptools
    server = await start(port, body)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("aiohttp", "httptools"):
        raise SystemExit(__doc__.split("\n\n")[1])
    import uvloop

    uvloop.run(main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]).read_bytes()))
