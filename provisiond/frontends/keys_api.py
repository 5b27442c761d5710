"""GET/PUT /api/v1/users/{id}/keys and /api/v1/devices/{id}/keys: programmable keys.

The body of a PUT is ``{"keys": [{type, value, label, position?}, ...]}``, the whole list;
the rules (types, values, positions, the model's limit) are the key service's.
"""

from __future__ import annotations

from aiohttp import web

from provisiond.domain.errors import InvalidInput
from provisiond.frontends.admin_http import admin_expect_handler
from provisiond.frontends.admin_params import actor, json_body, path_id, reply, services

USER_KEYS = "/api/v1/users/{id}/keys"
DEVICE_KEYS = "/api/v1/devices/{id}/keys"


async def _keys(request: web.Request) -> object:
    body = await json_body(request)
    if not isinstance(body, dict) or set(body) != {"keys"}:
        raise InvalidInput('the body must be {"keys": [...]}', field="keys")
    return body["keys"]


async def get_user_keys(request: web.Request) -> web.Response:
    """The user's keys and the phones they follow onto."""
    return reply(request, await services(request).keys.user_keys(path_id(request, "id")))


async def put_user_keys(request: web.Request) -> web.Response:
    """Replace the user's keys."""
    keys = await _keys(request)
    result = await services(request).keys.set_user_keys(
        path_id(request, "id"), keys, actor=actor(request)
    )
    return reply(request, result)


async def get_device_keys(request: web.Request) -> web.Response:
    """The device's own keys and what its phone shows."""
    return reply(request, await services(request).keys.device_keys(path_id(request, "id")))


async def put_device_keys(request: web.Request) -> web.Response:
    """Replace the device's own keys."""
    keys = await _keys(request)
    result = await services(request).keys.set_device_keys(
        path_id(request, "id"), keys, actor=actor(request)
    )
    return reply(request, result)


def add_keys_routes(app: web.Application) -> None:
    """Register the key routes on the admin application (its middlewares apply)."""
    for path, get, put in (
        (USER_KEYS, get_user_keys, put_user_keys),
        (DEVICE_KEYS, get_device_keys, put_device_keys),
    ):
        app.router.add_get(path, get, expect_handler=admin_expect_handler)
        app.router.add_put(path, put, expect_handler=admin_expect_handler)
