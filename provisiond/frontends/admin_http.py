"""The admin listener's HTTP plumbing: error mapping, bearer tokens, CORS, security headers.

Errors are always JSON ``{"error": code, "detail": text, "field": name}`` (DESIGN.md section
4): DomainErrors map to 4xx by kind, and anything unexpected is logged and answered with a
500 that carries no trace.

The token throttle: ten failed token attempts from one address in a minute refuse that
address's *failing* attempts with 429 for five minutes. A valid token is checked first and is
never refused for failures it did not make: every local client (the CLI's scripts, the
console, curl) shares 127.0.0.1, so one script with a stale token must not lock the admin out.
While an address is throttled, a token that is not even well formed (``pvd_`` and 43 base64url
characters) is refused without a database look-up; a well-formed one costs one indexed
equality on the token's SHA-256. Tokens carry 256 random bits, so the throttle is about
noise and load (and a log line per ban), not about making a guess any likelier to fail.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from provisiond.domain.errors import (
    Conflict,
    DomainError,
    Forbidden,
    InvalidInput,
    LicenceRefused,
    NotFound,
)
from provisiond.frontends.http_common import make_expect_handler
from provisiond.provisioning.bans import EnumerationGuard, GuardConfig
from provisiond.services import Caller, Services
from provisiond.storage.database import fault_of

log = logging.getLogger(__name__)
SERVICES = web.AppKey("services", Services)
MAX_BODY = web.AppKey("max_body_bytes", int)
CALLER = web.RequestKey("caller", Caller)
CORS_ORIGINS = web.AppKey("cors_origins", frozenset[str])
GUARD = web.AppKey("guard", EnumerationGuard)
# Failed token attempts per client address: 10 a minute, then 5 minutes of 429.
THROTTLE = web.AppKey("token_throttle", EnumerationGuard)
TOKEN_THROTTLE = GuardConfig(window_s=60, auth_failures_per_source=10, ban_s=300)
PUBLIC = frozenset({"/api/v1/openapi.json"})
# The shape of every token TokenService.create makes: "pvd_" + token_urlsafe(32).
_TOKEN_SHAPE = re.compile(r"pvd_[A-Za-z0-9_-]{43}")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS: list[tuple[type[DomainError], int]] = [
    (InvalidInput, 422),
    (NotFound, 404),
    (LicenceRefused, 409),
    (Conflict, 409),
    (Forbidden, 403),
]


# Longest integer a JSON body may hold: no field takes more than 20 digits, and CPython refuses
# to convert over 4,300 (a ValueError that is not a JSONDecodeError).
MAX_JSON_DIGITS = 100


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_DIGITS:
        raise ValueError(f"a number has more than {MAX_JSON_DIGITS} digits")
    return int(text)


def _json_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        shown = text if len(text) <= 20 else text[:20] + "..."
        raise ValueError(f"the number {shown} is out of range")
    return value


def _json_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def load_json(text: str, *, field: str | None = None) -> Any:
    """Parse JSON text (a request body, an import file) or raise InvalidInput naming `field`.

    Refused besides malformed text: an integer of more than MAX_JSON_DIGITS digits, a number
    that overflows to infinity, NaN/Infinity (not JSON, RFC 8259), nesting too deep to parse.
    """
    try:
        data = json.loads(
            text, parse_int=_json_int, parse_float=_json_float, parse_constant=_json_constant
        )
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InvalidInput(f"malformed JSON: {exc.msg} at {where}", field=field) from exc
    except ValueError as exc:  # raised by the hooks above
        raise InvalidInput(f"malformed JSON: {exc}", field=field) from exc
    except RecursionError as exc:  # thousands of nested brackets
        raise InvalidInput("malformed JSON: nested too deeply", field=field) from exc
    if _SURROGATE.search(text) and _has_lone_surrogate(data):
        raise InvalidInput(
            "malformed JSON: a string holds a lone surrogate (\\ud800-\\udfff), which is not "
            "Unicode text",
            field=field,
        )
    return data


# JSON may escape a lone UTF-16 surrogate ("\ud800"); Python then holds a string that no
# encoder (UTF-8, the database drivers) accepts. Only bodies with such an escape are walked.
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _has_lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if any("\ud800" <= ch <= "\udfff" for ch in item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _dumps(data: Any) -> str:
    # A trailing newline keeps curl output readable in a terminal.
    return json.dumps(data, ensure_ascii=False) + "\n"


def json_response(data: Any, *, status: int = 200) -> web.Response:
    """A JSON answer."""
    return web.json_response(data, status=status, dumps=_dumps)


def error_response(status: int, code: str, detail: str, field: str | None = None) -> web.Response:
    """The one error shape of the API."""
    body: dict[str, Any] = {"error": code, "detail": detail}
    if field is not None:
        body["field"] = field
    return json_response(body, status=status)


def _domain_error(exc: DomainError) -> web.Response:
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 400)
    response = error_response(status, exc.code, exc.detail, exc.field)
    if isinstance(exc, LicenceRefused):
        response.text = json.dumps({**json.loads(response.text or "{}"), "module": exc.module})
    return response


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """DomainError -> 4xx JSON; HTTP errors -> JSON; the database away or its disk full -> 503
    or 507 JSON; anything else -> 500 JSON without a trace."""
    try:
        return await handler(request)
    except DomainError as exc:
        return _domain_error(exc)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[MAX_BODY]
        return error_response(413, "too_large", f"request body over {limit} bytes", "body")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception as error:
        fault = fault_of(error)
        if fault is not None:  # the database's state, not a bug: say so, without a traceback
            where = f"{request.method} {request.path}"
            log.error("admin API %s: database %s: %s", where, fault, error)
            status, detail = _FAULTS[fault]
            return error_response(status, f"database_{fault}", detail)
        log.exception("admin API error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal error; see the server log")


_FAULTS = {
    "unavailable": (503, "the database is unavailable; nothing was changed, try again"),
    "disk_full": (507, "the database's disk is full; nothing was changed, free space there"),
}


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Bearer token required on /api/v1 (except the OpenAPI document); read-only tokens GET only.

    The token is checked before the throttle: a valid token passes whatever others failed.
    """
    if not request.path.startswith("/api/") or request.path in PUBLIC:
        return await handler(request)
    for name, value in request.query.items():
        if "\x00" in value or "\x00" in name:  # no database stores NUL in text
            return error_response(422, "invalid", f"{name}: NUL characters are not allowed", name)
    throttle = request.app[THROTTLE]
    client = request.remote or ""
    blocked = throttle.banned(client)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    caller = None
    if token and (blocked is None or _TOKEN_SHAPE.fullmatch(token)):
        caller = await request.app[SERVICES].tokens.authenticate(token)
    if caller is None and blocked is not None:
        throttle.note_refused(blocked)
        retry = max(1, int((blocked.until - datetime.now(UTC)).total_seconds()))
        response = error_response(429, "throttled", "too many failed token attempts; wait")
        response.headers["Retry-After"] = str(retry)
        return response
    if not token:
        return _unauthorized("missing bearer token")
    if caller is None:
        throttle.record(client, "auth_failure")
        return _unauthorized("unknown token")
    if request.method not in ("GET", "HEAD") and not caller.can_write:
        return error_response(403, "forbidden", "this token is read-only")
    request[CALLER] = caller
    return await handler(request)


admin_expect_handler = make_expect_handler(
    lambda: error_response(417, "expectation_failed", "unsupported Expect header")
)


def _unauthorized(detail: str) -> web.Response:
    response = error_response(401, "unauthorized", detail)
    response.headers["WWW-Authenticate"] = 'Bearer realm="provisiond"'
    return response


_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Cross-Origin-Opener-Policy": "same-origin",
}


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every admin answer; API answers are never cached."""
    response = await handler(request)
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Closed by default: only configured origins get CORS headers (and preflight answers)."""
    origin = request.headers.get("Origin")
    allowed = origin is not None and origin in request.app[CORS_ORIGINS]
    if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
        if not allowed:
            return error_response(403, "cors", "cross-origin requests are not allowed")
        response: web.StreamResponse = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, PATCH, DELETE"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    else:
        response = await handler(request)
    if allowed and origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response
