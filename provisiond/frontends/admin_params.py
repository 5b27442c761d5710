"""Reading an admin API request and answering it: shared by every admin route module.

Path and query numbers are checked digits (`str.isdigit` accepts '²', which `int` refuses);
bodies are UTF-8 JSON read by `load_json` (lone surrogates refused); answers go through the
model the operation table (provisiond.frontends.openapi) documents for the route.
"""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from provisiond.domain.errors import InvalidInput
from provisiond.domain.rules import LineRef
from provisiond.frontends.admin_http import CALLER, SERVICES, json_response, load_json
from provisiond.frontends.api_models import dump
from provisiond.frontends.openapi import operation
from provisiond.services import Services

__all__ = [
    "actor",
    "bool_param",
    "int_param",
    "json_body",
    "new_primary",
    "path_id",
    "reply",
    "services",
]

_DIGITS = re.compile(r"[0-9]{1,12}")  # not str.isdigit(): that accepts '²', which int() refuses


def services(request: web.Request) -> Services:
    return request.app[SERVICES]


def actor(request: web.Request) -> str:
    return request[CALLER].name


def int_param(request: web.Request, name: str, *, query: bool = False) -> int | None:
    raw = request.query.get(name) if query else request.match_info.get(name)
    if raw is None:
        return None
    if not _DIGITS.fullmatch(raw):
        raise InvalidInput(f"{name} must be a whole number", field=name)
    return int(raw)


def new_primary(request: web.Request) -> LineRef | None:
    """?new_primary=DEVICE[&new_primary_slot=N]: the user's new primary line."""
    device = int_param(request, "new_primary", query=True)
    slot = int_param(request, "new_primary_slot", query=True)
    return None if device is None else LineRef(device, slot or 1)


def path_id(request: web.Request, name: str) -> int:
    value = int_param(request, name)
    assert value is not None  # the route template guarantees presence
    return value


def bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise InvalidInput(f"{name} must be true or false", field=name)
    return raw in ("true", "1")


async def json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        raise InvalidInput("a JSON body is required", field="body")
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput("the body is not UTF-8 text", field="body") from exc
    return load_json(text, field="body")


def reply(request: web.Request, data: Any, *, refused: bool = False) -> web.Response:
    """`data` checked against the answer the operation table documents for this route (its
    `refusal` with `refused`), and sent with the documented status; a service answer that
    does not match its model raises here (a 500) instead of reaching a client."""
    route = request.match_info.route.resource
    assert route is not None  # only routes of the table call this
    op = operation(request.method, route.canonical)
    kind, status = (op.refusal, 422) if refused else (op.answer, op.status)
    return json_response(dump(kind, data), status=status)
