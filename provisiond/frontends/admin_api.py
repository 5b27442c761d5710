"""The admin REST API (JSON under /api/v1, bearer tokens), on its own listener.

This module only translates HTTP to service calls; errors, authentication, CORS and security
headers are the middlewares of provisiond.frontends.admin_http. Every rule lives in the
services. Every JSON answer goes through the model that provisiond.frontends.openapi's
operation table documents for its route (`_reply`), so what is served is what is documented.
"""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web

from provisiond.domain.errors import InvalidInput, NotFound
from provisiond.frontends.admin_http import (
    CORS_ORIGINS,
    GUARD,
    MAX_BODY,
    SERVICES,
    THROTTLE,
    TOKEN_THROTTLE,
    admin_expect_handler,
    auth_middleware,
    cors_middleware,
    errors_middleware,
    headers_middleware,
    json_response,
)
from provisiond.frontends.admin_params import actor as _actor
from provisiond.frontends.admin_params import bool_param as _bool
from provisiond.frontends.admin_params import int_param as _int
from provisiond.frontends.admin_params import json_body as _json
from provisiond.frontends.admin_params import new_primary as _new_primary
from provisiond.frontends.admin_params import path_id as _path_id
from provisiond.frontends.admin_params import reply as _reply
from provisiond.frontends.admin_params import services as _services
from provisiond.frontends.console_routes import add_console_routes
from provisiond.frontends.keys_api import add_keys_routes
from provisiond.frontends.openapi import openapi_document
from provisiond.frontends.rules_api import add_rules_routes
from provisiond.provisioning.bans import Ban, EnumerationGuard
from provisiond.services import Services
from provisiond.services.commands import (
    AccountPut,
    DeviceCreate,
    DevicePatch,
    PrimaryDevice,
    ResyncMany,
    ResyncOne,
    UserCreate,
    UserPatch,
    parse,
)
from provisiond.services.fleet import ImportRefused
from provisiond.services.sites import SiteCreate, SitePatch

routes = web.RouteTableDef()


@routes.get("/api/v1/openapi.json")
async def get_openapi(request: web.Request) -> web.Response:
    """The OpenAPI 3.1 document of this API."""
    return json_response(openapi_document())


@routes.get("/api/v1/users")
async def list_users(request: web.Request) -> web.Response:
    """Users, with ?search=, ?limit=, ?offset=."""
    result = await _services(request).users.list(
        request.query.get("search"),
        _int(request, "limit", query=True),
        _int(request, "offset", query=True),
    )
    return _reply(request, result)


@routes.post("/api/v1/users")
async def create_user(request: web.Request) -> web.Response:
    """Create a user."""
    cmd = parse(UserCreate, await _json(request))
    return _reply(request, await _services(request).users.create(cmd, _actor(request)))


@routes.get("/api/v1/users/{id}")
async def get_user(request: web.Request) -> web.Response:
    """One user."""
    return _reply(request, await _services(request).users.get(_path_id(request, "id")))


@routes.patch("/api/v1/users/{id}")
async def patch_user(request: web.Request) -> web.Response:
    """Change a user."""
    cmd = parse(UserPatch, await _json(request))
    result = await _services(request).users.update(_path_id(request, "id"), cmd, _actor(request))
    return _reply(request, result)


@routes.delete("/api/v1/users/{id}")
async def delete_user(request: web.Request) -> web.Response:
    """Delete a user (devices stay, unassigned)."""
    await _services(request).users.delete(_path_id(request, "id"), _actor(request))
    return web.Response(status=204)


@routes.put("/api/v1/users/{id}/devices/{device_id}")
async def assign_device(request: web.Request) -> web.Response:
    """Assign a device; ?move=true takes it from another user."""
    result = await _services(request).assignments.assign(
        _path_id(request, "id"),
        _path_id(request, "device_id"),
        move=_bool(request, "move"),
        actor=_actor(request),
    )
    return _reply(request, result)


@routes.delete("/api/v1/users/{id}/devices/{device_id}")
async def unassign_device(request: web.Request) -> web.Response:
    """Unassign a device; ?new_primary=ID when it is the primary and others remain."""
    result = await _services(request).assignments.unassign(
        _path_id(request, "id"),
        _path_id(request, "device_id"),
        new_primary=_new_primary(request),
        actor=_actor(request),
    )
    return _reply(request, result)


@routes.put("/api/v1/users/{id}/primary-device")
async def set_primary(request: web.Request) -> web.Response:
    """Choose the primary device (rule 2)."""
    cmd = parse(PrimaryDevice, await _json(request))
    result = await _services(request).assignments.set_primary(
        _path_id(request, "id"), cmd.device_id, slot=cmd.slot, actor=_actor(request)
    )
    return _reply(request, result)


@routes.get("/api/v1/devices")
async def list_devices(request: web.Request) -> web.Response:
    """Devices; ?extension_prefix= autocomplete, ?mac=, ?user_id=, paging."""
    result = await _services(request).devices.list(
        extension_prefix=request.query.get("extension_prefix"),
        mac=request.query.get("mac"),
        user_id=_int(request, "user_id", query=True),
        limit=_int(request, "limit", query=True),
        offset=_int(request, "offset", query=True),
    )
    return _reply(request, result)


@routes.post("/api/v1/devices")
async def create_device(request: web.Request) -> web.Response:
    """Create a device (optionally straight onto a user)."""
    cmd = parse(DeviceCreate, await _json(request))
    return _reply(request, await _services(request).devices.create(cmd, _actor(request)))


@routes.get("/api/v1/devices/{id}")
async def get_device(request: web.Request) -> web.Response:
    """One device."""
    return _reply(request, await _services(request).devices.get(_path_id(request, "id")))


@routes.patch("/api/v1/devices/{id}")
async def patch_device(request: web.Request) -> web.Response:
    """Change a device."""
    cmd = parse(DevicePatch, await _json(request))
    result = await _services(request).devices.update(_path_id(request, "id"), cmd, _actor(request))
    return _reply(request, result)


@routes.delete("/api/v1/devices/{id}")
async def delete_device(request: web.Request) -> web.Response:
    """Delete a device; ?new_primary=ID when it is a user's primary and others remain."""
    await _services(request).devices.delete(
        _path_id(request, "id"),
        new_primary=_new_primary(request),
        actor=_actor(request),
    )
    return web.Response(status=204)


@routes.get("/api/v1/devices/{id}/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    """A device's accounts, slot 1 first."""
    return _reply(request, await _services(request).accounts.list(_path_id(request, "id")))


@routes.put("/api/v1/devices/{id}/accounts/{slot}")
async def put_account(request: web.Request) -> web.Response:
    """Create or replace an account; ?move=true takes it from another user, and
    ?new_primary=&new_primary_slot= names its owner's new primary when it was theirs."""
    cmd = parse(AccountPut, await _json(request))
    result = await _services(request).accounts.put(
        _path_id(request, "id"),
        _path_id(request, "slot"),
        cmd,
        move=_bool(request, "move"),
        new_primary=_new_primary(request),
        actor=_actor(request),
    )
    return _reply(request, result)


@routes.delete("/api/v1/devices/{id}/accounts/{slot}")
async def delete_account(request: web.Request) -> web.Response:
    """Remove an account; ?new_primary=&new_primary_slot= when it is its owner's primary line
    and they have others."""
    result = await _services(request).accounts.delete(
        _path_id(request, "id"),
        _path_id(request, "slot"),
        new_primary=_new_primary(request),
        actor=_actor(request),
    )
    return _reply(request, result)


@routes.get("/api/v1/unprovisioned")
async def list_unprovisioned(request: web.Request) -> web.Response:
    """MACs that asked for a configuration and are not known devices."""
    result = await _services(request).catalogue.unprovisioned(
        _int(request, "limit", query=True), _int(request, "offset", query=True)
    )
    return _reply(request, result)


@routes.get("/api/v1/models")
async def list_models(request: web.Request) -> web.Response:
    """The model catalogue; ?vendor= and ?series= filter."""
    result = await _services(request).catalogue.models(
        request.query.get("vendor"), request.query.get("series")
    )
    return _reply(request, result)


@routes.get("/api/v1/licences")
async def get_licences(request: web.Request) -> web.Response:
    """Licence modules: count and used."""
    return _reply(request, await _services(request).platform.get_licences())


@routes.put("/api/v1/licences")
async def put_licences(request: web.Request) -> web.Response:
    """Set licence counts."""
    result = await _services(request).platform.put_licences(await _json(request), _actor(request))
    return _reply(request, result)


@routes.get("/api/v1/settings")
async def get_settings(request: web.Request) -> web.Response:
    """Effective platform settings."""
    return _reply(request, await _services(request).platform.get_settings())


@routes.put("/api/v1/settings")
async def put_settings(request: web.Request) -> web.Response:
    """Change platform settings (partial, nested)."""
    result = await _services(request).platform.put_settings(await _json(request), _actor(request))
    return _reply(request, result)


@routes.get("/api/v1/directory/{number}")
async def directory(request: web.Request) -> web.Response:
    """Who answers a number."""
    return _reply(request, await _services(request).directory.lookup(request.match_info["number"]))


@routes.get("/api/v1/sites")
async def list_sites(request: web.Request) -> web.Response:
    """Sites and their policies."""
    return _reply(request, await _services(request).sites.list())


@routes.post("/api/v1/sites")
async def create_site(request: web.Request) -> web.Response:
    """Create a site."""
    cmd = parse(SiteCreate, await _json(request))
    return _reply(request, await _services(request).sites.create(cmd, _actor(request)))


@routes.get("/api/v1/sites/{id}")
async def get_site(request: web.Request) -> web.Response:
    """One site."""
    return _reply(request, await _services(request).sites.get(_path_id(request, "id")))


@routes.patch("/api/v1/sites/{id}")
async def patch_site(request: web.Request) -> web.Response:
    """Change a site."""
    cmd = parse(SitePatch, await _json(request))
    result = await _services(request).sites.update(_path_id(request, "id"), cmd, _actor(request))
    return _reply(request, result)


@routes.delete("/api/v1/sites/{id}")
async def delete_site(request: web.Request) -> web.Response:
    """Delete a site (devices locked to it are released)."""
    await _services(request).sites.delete(_path_id(request, "id"), _actor(request))
    return web.Response(status=204)


@routes.post("/api/v1/devices/{id}/release-lock")
async def release_lock(request: web.Request) -> web.Response:
    """Release a device locked to the site of its first boot."""
    result = await _services(request).sites.release_lock(_path_id(request, "id"), _actor(request))
    return _reply(request, result)


@routes.post("/api/v1/devices/{id}/reveal-password")
async def reveal_password(request: web.Request) -> web.Response:
    """The device's SIP and provisioning passwords (admin tokens only; audited)."""
    result = await _services(request).devices.reveal_password(
        _path_id(request, "id"), _actor(request)
    )
    return _reply(request, result)


def _ban_view(ban: Ban) -> dict[str, Any]:
    return {
        "target": ban.target,
        "reason": ban.reason,
        "since": ban.since.isoformat(),
        "until": ban.until.isoformat(),
        "hits": ban.hits,
    }


@routes.get("/api/v1/bans")
async def list_bans(request: web.Request) -> web.Response:
    """Sources banned by the enumeration defence (this process)."""
    return _reply(request, [_ban_view(ban) for ban in request.app[GUARD].bans()])


@routes.delete("/api/v1/bans/{target:.+}")
async def lift_ban(request: web.Request) -> web.Response:
    """Lift a ban on an address or network (e.g. 192.0.2.7 or 192.0.2.0/24)."""
    target = request.match_info["target"]
    guard = request.app[GUARD]
    before = [_ban_view(b) for b in guard.bans() if b.target == target]
    if not guard.lift(target):
        raise NotFound(f"no active ban on {target}", field="target")
    await _services(request).catalogue.record(_actor(request), "ban.lift", "ban", target, before)
    return web.Response(status=204)


@routes.post("/api/v1/devices/{id}/resync")
async def resync_device(request: web.Request) -> web.Response:
    """Send the device its vendor's resync NOTIFY ({"reboot": true} to reboot it)."""
    cmd = parse(ResyncOne, await _json(request) if request.can_read_body else {})
    result = await _services(request).resync.resync(
        _path_id(request, "id"), reboot=cmd.reboot, actor=_actor(request)
    )
    return _reply(request, result)


@routes.post("/api/v1/resync")
async def resync_many(request: web.Request) -> web.Response:
    """Resync every device of a user, of a model, or last seen inside a site."""
    cmd = parse(ResyncMany, await _json(request))
    results = await _services(request).resync.resync_many(
        user_id=cmd.user_id,
        model=cmd.model,
        site=cmd.site,
        reboot=cmd.reboot,
        actor=_actor(request),
    )
    return _reply(request, results)


@routes.get("/api/v1/audit")
async def audit_log(request: web.Request) -> web.Response:
    """The audit log, newest first."""
    result = await _services(request).catalogue.audit(
        _int(request, "limit", query=True), _int(request, "offset", query=True)
    )
    return _reply(request, result)


@routes.post("/api/v1/import")
async def import_fleet(request: web.Request) -> web.Response:
    """Create devices and users from CSV (text/csv) or JSON rows: all or nothing."""
    fleet, actor = _services(request).fleet, _actor(request)
    try:
        if request.content_type == "text/csv":
            try:
                text = (await request.read()).decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise InvalidInput("the body is not UTF-8 text", field="body") from exc
            result = await fleet.import_csv(text, actor)
        else:
            result = await fleet.import_json(await _json(request), actor)
    except ImportRefused as exc:
        return _reply(request, exc.as_json(), refused=True)
    return _reply(request, result)


@routes.get("/api/v1/export")
async def export_fleet(request: web.Request) -> web.Response:
    """Every device with its user, as import rows: ?format=csv (default) or json."""
    fleet = _services(request).fleet
    fmt = request.query.get("format", "csv")
    if fmt == "json":
        return _reply(request, await fleet.export_rows())
    if fmt != "csv":
        raise InvalidInput("format must be csv or json", field="format")
    response = web.Response(text=await fleet.export_csv(), content_type="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="provisiond-devices.csv"'
    return response


def create_admin_app(
    services: Services,
    *,
    max_body_bytes: int = 1 << 20,
    cors_origins: tuple[str, ...] = (),
    guard: EnumerationGuard | None = None,
) -> web.Application:
    """The admin application: API routes, middlewares, body size limit.

    CORS is closed unless `cors_origins` names the origins allowed to call the API from a
    browser (the web console is served from the same origin and needs none).
    """
    app = web.Application(
        middlewares=[headers_middleware, errors_middleware, cors_middleware, auth_middleware],
        client_max_size=max_body_bytes,
    )
    app[SERVICES] = services
    app[MAX_BODY] = max_body_bytes
    app[CORS_ORIGINS] = frozenset(cors_origins)
    app[GUARD] = guard or EnumerationGuard()
    app[THROTTLE] = EnumerationGuard(TOKEN_THROTTLE)
    for route in routes:  # our Expect handler: aiohttp's echoes the value (a 500 on bad bytes)
        assert isinstance(route, web.RouteDef)
        add = (
            app.router.add_get
            if route.method == "GET"
            else functools.partial(app.router.add_route, route.method)
        )  # add_get also answers HEAD, as RouteTableDef.get did
        add(route.path, route.handler, expect_handler=admin_expect_handler, **route.kwargs)
    add_console_routes(app)
    add_rules_routes(app, services)
    add_keys_routes(app)
    return app
