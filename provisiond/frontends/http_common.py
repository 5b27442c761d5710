"""HTTP details shared by the phone and admin listeners."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, web

ExpectHandler = Callable[[web.Request], Awaitable[web.StreamResponse | None]]


def make_expect_handler(refuse: Callable[[], web.StreamResponse]) -> ExpectHandler:
    """`Expect: 100-continue` as aiohttp does it, and `refuse()` (a 417) for anything else.

    aiohttp's own handler echoes the header value in its 417 text, and a value that is not
    UTF-8 then fails to encode: a 500. We never echo it; the admin side answers in JSON.
    """

    async def expect_handler(request: web.Request) -> web.StreamResponse | None:
        if request.version != HttpVersion11:
            return None
        if request.headers.get("Expect", "").lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0  # the body has not started yet
            return None
        return refuse()  # returned, not raised: aiohttp then answers with it directly

    return expect_handler


expect_handler = make_expect_handler(
    lambda: web.Response(status=417, text="unsupported Expect header\n")
)
