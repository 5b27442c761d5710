"""The phone-facing HTTP(S) frontend: translates requests to `PhoneRequest` and back.

GET/HEAD on any path (at the root or under the configured prefix), PUT/POST for vendor
uploads. Conditional GET (ETag / If-None-Match, Last-Modified / If-Modified-Since) answers 304;
firmware is streamed from disk by aiohttp's FileResponse, which handles Range and ETag.
No per-request access log here: phones are many and their requests are counted instead.

Hostile networks (issue 12): `start_phone_listener` runs the app behind `GuardedSite`
(http_common): a per-source connection cap and a timeout for the first request head, with
aiohttp's keep-alive timeout as the idle limit. An upload is admitted by the pipeline before
its body is read (and before `100 Continue` is sent); the body must arrive whole within the
body timeout and stay under the smaller of the admitted size and the listener's ceiling. A
request whose `Host` is not one of ours (DNS rebinding from a browser inside a site) gets a
bare 421 before anything else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import logging
import ssl
from dataclasses import dataclass
from email.utils import format_datetime, parsedate_to_datetime

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import CIMultiDict

from provisiond.domain.phone import Outcome, PhoneHandler, PhoneRequest, PhoneResponse
from provisiond.frontends.http_common import (
    GuardedSite,
    SourceCounter,
    phone_expect_handler,
    send_continue,
    start_guarded_listener,
)
from provisiond.frontends.tls import peer_macs

log = logging.getLogger(__name__)
HANDLER = web.AppKey("phone_handler", PhoneHandler)
PREFIX = web.AppKey("phone_prefix", str)


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """Timeouts, caps and accepted Host names of a phone listener (settings.phone_limits).

    `allowed_hosts` None: any Host (tests and embedders); otherwise lower-case names, "*" for
    any; IP literals are always accepted (a rebinding attack needs a name).
    """

    header_timeout: float = 10.0
    idle_timeout: float = 15.0
    body_timeout: float = 30.0
    max_connections_per_source: int = 256
    max_body: int = 1 << 20
    allowed_hosts: frozenset[str] | None = None


LIMITS = web.AppKey("phone_limits", HttpLimits)


def host_allowed(value: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a `Host` header value names us (absent or empty: HTTP/1.0 phones, allowed)."""
    if allowed is None or not value or "*" in allowed:
        return True
    return _host_allowed(value, allowed)


@functools.lru_cache(maxsize=4096)  # a storm sends the same few Host values again and again
def _host_allowed(value: str, allowed: frozenset[str]) -> bool:
    host = value.strip().lower()
    if host.startswith("["):  # [v6] or [v6]:port
        host = host[1 : host.find("]")] if "]" in host else host
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    host = host.rstrip(".")
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return host in allowed


_STATUS = {
    Outcome.NOT_FOUND: 404,
    Outcome.FORBIDDEN: 403,
    Outcome.UNAUTHORIZED: 401,
    Outcome.TOO_LARGE: 413,
    Outcome.BAD_REQUEST: 400,
    Outcome.NOT_ALLOWED: 405,
    Outcome.NOT_MODIFIED: 304,
    Outcome.NO_SPACE: 507,
}
_TEXT = {
    404: "Not Found",
    403: "Forbidden",
    401: "Unauthorized",
    413: "Payload Too Large",
    400: "Bad Request",
    405: "Method Not Allowed",
    507: "Insufficient Storage",
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


async def _read_upload(request: web.Request, limit: int, within_s: float) -> bytes | int:
    """The body; or the status to answer: 413 when it is over `limit` (announced or actual),
    408 when it did not arrive whole within `within_s` seconds, 400 when its chunked framing
    is broken or the client dropped the connection (a client's doing: no traceback, and
    nobody reads that answer)."""
    if request.content_length is not None and request.content_length > limit:
        return 413
    chunks, size = [], 0
    try:
        await send_continue(request)  # admitted: now the client may send
        async with asyncio.timeout(within_s):
            async for chunk in request.content.iter_chunked(65536):
                size += len(chunk)
                if size > limit:
                    return 413
                chunks.append(chunk)
    except TimeoutError:
        return 408
    except (ConnectionResetError, HttpProcessingError) as exc:
        log.debug("phone upload from %s ended early: %s", request.remote, exc)
        return 400
    return b"".join(chunks)


def _closing(status: int) -> web.Response:
    """A bare refusal that also ends the connection (the rest of the body is not read)."""
    response = web.Response(status=status)
    response.force_close()
    return response


async def handle_phone(request: web.Request) -> web.StreamResponse:
    """Every phone request, whatever the path."""
    limits = request.app[LIMITS]
    if not host_allowed(request.headers.get("Host"), limits.allowed_hosts):
        return web.Response(status=421)  # no body: nothing for a rebinding page to read
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
        decided = await handler.admit_upload(phone)  # before one byte of the body is read
        if isinstance(decided, PhoneResponse):
            return _respond(request, decided)
        body = await _read_upload(request, min(decided, limits.max_body), limits.body_timeout)
        if isinstance(body, int):
            return _closing(body)
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
    handler: PhoneHandler,
    *,
    prefix: str = "",
    max_body: int = 1 << 20,
    limits: HttpLimits | None = None,
) -> web.Application:
    """The phone-facing application (HTTP or HTTPS: TLS is the site's concern).

    `max_body` is the ceiling of any upload body (settings.max_upload_bytes), on top of the
    size the pipeline admits; `limits` the rest (defaults: no Host check).
    """
    limits = dataclasses.replace(limits or HttpLimits(), max_body=max_body)
    app = web.Application(client_max_size=max_body)
    app[HANDLER] = handler
    app[PREFIX] = prefix.strip("/")
    app[LIMITS] = limits
    app.router.add_route("*", "/{tail:.*}", handle_phone, expect_handler=phone_expect_handler)
    return app


async def start_phone_listener(
    app: web.Application,
    host: str,
    port: int,
    *,
    counter: SourceCounter,
    tls: ssl.SSLContext | None = None,
    reuse_port: bool = False,
) -> tuple[web.AppRunner, GuardedSite]:
    """Serve `app` on host:port with its limits: per-source cap (`counter`, shared by the
    listeners of a process), head, idle and TLS handshake timeouts. Clean up the runner."""
    limits = app[LIMITS]
    return await start_guarded_listener(
        app,
        host,
        port,
        counter=counter,
        header_timeout=limits.header_timeout,
        idle_timeout=limits.idle_timeout,
        body_timeout=limits.body_timeout,
        name="phone HTTPS" if tls is not None else "phone HTTP",
        tls=tls,
        reuse_port=reuse_port,
    )
