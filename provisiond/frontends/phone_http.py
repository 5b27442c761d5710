"""The phone-facing HTTP(S) frontend: translates requests to `PhoneRequest` and back.

GET/HEAD on any path (at the root or under the configured prefix), PUT/POST for vendor
uploads. Conditional GET (ETag / If-None-Match, Last-Modified / If-Modified-Since) answers 304;
firmware is streamed from disk by aiohttp's FileResponse, which handles Range and ETag.
No per-request access log here: phones are many and their requests are counted instead.
"""

from __future__ import annotations

import dataclasses
import logging
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web
from multidict import CIMultiDict

from provisiond.domain.phone import Outcome, PhoneHandler, PhoneRequest, PhoneResponse
from provisiond.frontends.http_common import expect_handler
from provisiond.frontends.tls import peer_macs

log = logging.getLogger(__name__)
HANDLER = web.AppKey("phone_handler", PhoneHandler)
PREFIX = web.AppKey("phone_prefix", str)

_STATUS = {
    Outcome.NOT_FOUND: 404,
    Outcome.FORBIDDEN: 403,
    Outcome.UNAUTHORIZED: 401,
    Outcome.TOO_LARGE: 413,
    Outcome.BAD_REQUEST: 400,
    Outcome.NOT_MODIFIED: 304,
}
_TEXT = {
    404: "Not Found",
    403: "Forbidden",
    401: "Unauthorized",
    413: "Payload Too Large",
    400: "Bad Request",
    405: "Method Not Allowed",
}


def _plain(status: int, headers: tuple[tuple[str, str], ...] = ()) -> web.Response:
    response = web.Response(status=status, text=_TEXT.get(status, "") + "\n")
    for name, value in headers:  # add, not set: digest sends one challenge per algorithm
        response.headers.add(name, value)
    return response


def _strip_prefix(path: str, prefix: str) -> str:
    """The path relative to the prefix; both the root and the prefix are served."""
    if prefix:
        head = "/" + prefix + "/"
        if path.startswith(head):
            return path[len(head) :]
    return path.lstrip("/")


def _not_modified(request: web.Request, answer: PhoneResponse) -> bool:
    if answer.etag is not None and "If-None-Match" in request.headers:
        tags = [t.strip() for t in request.headers["If-None-Match"].split(",")]
        return answer.etag in tags or "*" in tags
    since = request.headers.get("If-Modified-Since")
    if answer.last_modified is not None and since:
        try:
            return answer.last_modified.replace(microsecond=0) <= parsedate_to_datetime(since)
        except (TypeError, ValueError):
            return False
    return False


async def _read_upload(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is over `limit` (announced or actual)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def handle_phone(request: web.Request) -> web.StreamResponse:
    """Every phone request, whatever the path."""
    path = _strip_prefix(request.path, request.app[PREFIX])
    handler = request.app[HANDLER]
    method = request.method
    if method not in ("GET", "HEAD", "PUT", "POST"):
        return _plain(405)
    phone = PhoneRequest(
        protocol="https" if request.secure else "http",
        method=method,  # type: ignore[arg-type]  # checked just above
        path=path,
        user_agent=request.headers.get("User-Agent"),
        client_ip=request.remote or "",
        headers=tuple((k.lower(), v) for k, v in request.headers.items()),
        target=request.raw_path,
        client_cert_macs=peer_macs(request.transport) if request.secure else frozenset(),
    )
    if method in ("PUT", "POST"):
        limit = handler.upload_limit(phone)
        if limit is None:
            return _plain(405 if path else 404)
        body = await _read_upload(request, limit)
        if body is None:
            return _plain(413)
        phone = dataclasses.replace(phone, body=body)
    answer = await handler.handle(phone)
    return _respond(request, answer)


def _respond(request: web.Request, answer: PhoneResponse) -> web.StreamResponse:
    if not answer.ok:
        return _plain(_STATUS.get(answer.outcome, 400), answer.headers)
    if answer.file is not None:
        return web.FileResponse(answer.file, headers={"Content-Type": answer.content_type})
    headers: CIMultiDict[str] = CIMultiDict(answer.headers)
    if answer.etag:
        headers["ETag"] = answer.etag
    if answer.last_modified is not None:
        headers["Last-Modified"] = format_datetime(answer.last_modified, usegmt=True)
    headers["Cache-Control"] = "no-cache"
    if request.method == "GET" and _not_modified(request, answer):
        return web.Response(status=304, headers=headers)
    if request.method in ("PUT", "POST"):
        return web.Response(status=201 if request.method == "PUT" else 200, headers=headers)
    headers["Content-Type"] = answer.content_type
    return web.Response(body=answer.body, headers=headers)


def create_phone_app(
    handler: PhoneHandler, *, prefix: str = "", max_body: int = 1 << 20
) -> web.Application:
    """The phone-facing application (HTTP or HTTPS: TLS is the site's concern)."""
    app = web.Application(client_max_size=max_body)
    app[HANDLER] = handler
    app[PREFIX] = prefix.strip("/")
    app.router.add_route("*", "/{tail:.*}", handle_phone, expect_handler=expect_handler)
    return app
