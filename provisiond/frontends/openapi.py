"""The OpenAPI 3.1 document of the admin API.

Request bodies come from the same pydantic commands the services take, so they cannot drift;
paths and responses are written here, and tests/integration/test_openapi.py compares this
document with the routes aiohttp actually registered.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import BaseModel

from provisiond import __version__
from provisiond.frontends.openapi_fleet import IMPORT, fleet_paths, fleet_schemas
from provisiond.services.commands import (
    DeviceCreate,
    DevicePatch,
    PrimaryDevice,
    ResyncMany,
    ResyncOne,
    UserCreate,
    UserPatch,
)
from provisiond.services.sites import SiteCreate, SitePatch

REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF + name}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_RESPONSES = {
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "409": "Conflict",
    "413": "TooLarge",
    "429": "Throttled",
    "422": "Invalid",
}
# Operations that never clash with current state (everything else that writes may answer 409).
_NO_CONFLICT = {
    ("delete", "/api/v1/users/{id}"),
    ("delete", "/api/v1/sites/{id}"),
    ("put", "/api/v1/settings"),
    ("post", "/api/v1/devices/{id}/release-lock"),
    ("post", "/api/v1/devices/{id}/reveal-password"),
    ("delete", "/api/v1/bans/{target}"),
    ("post", IMPORT),  # every refusal is a line of its 422
}
# Creates whose body names no other object (so they cannot answer 404).
_NO_NOT_FOUND = {
    ("post", "/api/v1/users"),
    ("post", "/api/v1/sites"),
    ("put", "/api/v1/licences"),
    ("put", "/api/v1/settings"),
    ("post", IMPORT),
}


def _error_codes(method: str, path: str, op: dict[str, Any]) -> list[str]:
    """The error statuses an operation can really answer, from its shape."""
    codes = ["401", "429"]
    params = op.get("parameters", [])
    if method != "get":
        codes.append("403")  # read-only token
        if (method, path) not in _NO_NOT_FOUND:
            codes.append("404")
        if (method, path) not in _NO_CONFLICT:
            codes.append("409")
        if "requestBody" in op:
            codes.append("413")
        codes.append("422")
    else:
        if any(p["in"] == "path" for p in params):
            codes.append("404")
        if params:
            codes.append("422")
    return codes


def _with_errors(paths: dict[str, Any]) -> dict[str, Any]:
    for path, operations in paths.items():
        for method, op in operations.items():
            if op.get("security") == []:
                continue
            for code in _error_codes(method, path, op):
                ref = "#/components/responses/" + _ERROR_RESPONSES[code]
                op["responses"].setdefault(code, {"$ref": ref})
    return paths


def _param(name: str, where: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema,
        "description": description,
    }


_ID = _param("id", "path", {"type": "integer"}, "object id")
_DEVICE_ID = _param("device_id", "path", {"type": "integer"}, "device id")
_PAGING = [
    _param("limit", "query", {"type": "integer", "minimum": 1, "maximum": 500}, "page size"),
    _param("offset", "query", {"type": "integer", "minimum": 0}, "items to skip"),
]


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: str | dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": dict(responses)}
    if params:
        op["parameters"] = params
    if body is not None:
        schema = _ref(body) if isinstance(body, str) else body
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
    return op


def _paths() -> dict[str, Any]:
    user, device = _json(_ref("User")), _json(_ref("Device"))
    page_props: dict[str, Any] = {"total": _I, "limit": _I, "offset": _I}

    def page_of(name: str) -> dict[str, Any]:
        props = {**page_props, "items": {"type": "array", "items": _ref(name)}}
        return _json({"type": "object", "required": list(props), "properties": props})

    no_content = {"204": {"description": "deleted"}}
    counts = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 0}}
    return {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "This document",
                "security": [],
                "responses": {"200": _json({"type": "object"})},
            }
        },
        "/api/v1/users": {
            "get": _op(
                "List users",
                {"200": page_of("User")},
                params=[
                    _param("search", "query", {"type": "string"}, "username, name or extension"),
                    *_PAGING,
                ],
            ),
            "post": _op(
                "Create a user",
                {"201": _json(_ref("User"), "created")},
                body="UserCreate",
            ),
        },
        "/api/v1/users/{id}": {
            "get": _op("Get a user", {"200": user}, params=[_ID]),
            "patch": _op("Change a user", {"200": user}, params=[_ID], body="UserPatch"),
            "delete": _op(
                "Delete a user (devices stay, unassigned)",
                no_content,
                params=[_ID],
            ),
        },
        "/api/v1/users/{id}/devices/{device_id}": {
            "put": _op(
                "Assign a device",
                {"200": user},
                params=[
                    _ID,
                    _DEVICE_ID,
                    _param(
                        "move", "query", {"type": "boolean"}, "take the device from another user"
                    ),
                ],
            ),
            "delete": _op(
                "Unassign a device",
                {"200": user},
                params=[
                    _ID,
                    _DEVICE_ID,
                    _param(
                        "new_primary",
                        "query",
                        {"type": "integer"},
                        "new primary, required to remove the primary while others remain",
                    ),
                ],
            ),
        },
        "/api/v1/users/{id}/primary-device": {
            "put": _op(
                "Choose the primary device; its extension becomes the main extension",
                {"200": user},
                params=[_ID],
                body="PrimaryDevice",
            ),
        },
        "/api/v1/devices": {
            "get": _op(
                "List devices",
                {"200": page_of("Device")},
                params=[
                    _param(
                        "extension_prefix",
                        "query",
                        {"type": "string", "pattern": "^[0-9]{1,16}$"},
                        "autocomplete: devices whose extension starts with this (max 20)",
                    ),
                    _param("mac", "query", {"type": "string"}, "exact MAC, any notation"),
                    _param("user_id", "query", {"type": "integer"}, "devices of one user"),
                    *_PAGING,
                ],
            ),
            "post": _op(
                "Create a device",
                {"201": _json(_ref("Device"), "created")},
                body="DeviceCreate",
            ),
        },
        "/api/v1/devices/{id}": {
            "get": _op("Get a device", {"200": device}, params=[_ID]),
            "patch": _op(
                "Change a device",
                {"200": device},
                params=[_ID],
                body="DevicePatch",
            ),
            "delete": _op(
                "Delete a device",
                no_content,
                params=[_ID, _param("new_primary", "query", {"type": "integer"}, "see unassign")],
            ),
        },
        "/api/v1/unprovisioned": {
            "get": _op(
                "MACs that asked for a configuration",
                {"200": page_of("Unprovisioned")},
                params=_PAGING,
            )
        },
        "/api/v1/models": {
            "get": _op(
                "The model catalogue",
                {"200": _json({"type": "array", "items": _ref("Model")})},
                params=[_param("vendor", "query", {"type": "string"}, "only this vendor")],
            )
        },
        "/api/v1/licences": {
            "get": _op("Licence counts and seats in use", {"200": _json(_ref("Licences"))}),
            "put": _op(
                "Set licence counts",
                {"200": _json(_ref("Licences"))},
                body=counts,
            ),
        },
        "/api/v1/settings": {
            "get": _op("Platform settings", {"200": _json(_ref("Settings"))}),
            "put": _op(
                "Change platform settings (partial)",
                {"200": _json(_ref("Settings"))},
                body={"type": "object"},
            ),
        },
        "/api/v1/directory/{number}": {
            "get": _op(
                "Who answers a number",
                {"200": _json(_ref("Directory"))},
                params=[_param("number", "path", {"type": "string"}, "an extension")],
            )
        },
        "/api/v1/sites": {
            "get": _op("Sites", {"200": _json({"type": "array", "items": _ref("Site")})}),
            "post": _op(
                "Create a site",
                {"201": _json(_ref("Site"), "created")},
                body="SiteCreate",
            ),
        },
        "/api/v1/sites/{id}": {
            "get": _op("Get a site", {"200": _json(_ref("Site"))}, params=[_ID]),
            "patch": _op(
                "Change a site",
                {"200": _json(_ref("Site"))},
                params=[_ID],
                body="SitePatch",
            ),
            "delete": _op(
                "Delete a site",
                {"204": {"description": "deleted"}},
                params=[_ID],
            ),
        },
        "/api/v1/devices/{id}/release-lock": {
            "post": _op(
                "Release a device locked to the site of its first boot",
                {"200": _json(_ref("Device"))},
                params=[_ID],
            ),
        },
        "/api/v1/devices/{id}/reveal-password": {
            "post": _op(
                "The device's SIP and provisioning passwords (admin scope; audited)",
                {"200": _json(_ref("RevealedPassword"))},
                params=[_ID],
            ),
        },
        "/api/v1/devices/{id}/resync": {
            "post": _op(
                "Send the device its vendor's resync NOTIFY (reboot optional)",
                {"200": _json(_ref("ResyncResult"))},
                params=[_ID],
                body="ResyncOne",
            ),
        },
        "/api/v1/resync": {
            "post": _op(
                "Resync every device of a user, of a model, or last seen inside a site",
                {"200": _json({"type": "array", "items": _ref("ResyncResult")})},
                body="ResyncMany",
            ),
        },
        "/api/v1/bans": {
            "get": _op(
                "Sources banned by the enumeration defence",
                {"200": _json({"type": "array", "items": _ref("Ban")})},
            ),
        },
        "/api/v1/bans/{target}": {
            "delete": _op(
                "Lift a ban on an address or network",
                {"204": {"description": "lifted"}},
                params=[_param("target", "path", {"type": "string"}, "IP or CIDR")],
            ),
        },
        "/api/v1/audit": {
            "get": _op(
                "The audit log, newest first", {"200": page_of("AuditEntry")}, params=_PAGING
            )
        },
        **fleet_paths(),
    }


def _obj(props: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required or list(props)}


_S, _I, _B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NS, _NI = {"type": ["string", "null"]}, {"type": ["integer", "null"]}


def _schemas() -> dict[str, Any]:
    bodies: dict[str, type[BaseModel]] = {
        "UserCreate": UserCreate,
        "UserPatch": UserPatch,
        "DeviceCreate": DeviceCreate,
        "DevicePatch": DevicePatch,
        "PrimaryDevice": PrimaryDevice,
        "SiteCreate": SiteCreate,
        "SitePatch": SitePatch,
        "ResyncOne": ResyncOne,
        "ResyncMany": ResyncMany,
    }
    schemas: dict[str, Any] = {}
    for name, model in bodies.items():
        schema = model.model_json_schema(ref_template=REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    last_seen = {
        "type": ["object", "null"],
        "properties": {"at": _S, "ip": _NS, "user_agent": _NS, "firmware": _NS},
    }
    schemas.update(
        {
            "Error": _obj(
                {"error": _S, "detail": _S, "field": _S, "module": _S}, ["error", "detail"]
            ),
            "Device": _obj(
                {
                    "id": _I,
                    "extension": _S,
                    "model": _S,
                    "mac": _S,
                    "active": _B,
                    "user_id": _NI,
                    "sip_username": _S,
                    "label": _NS,
                    "site_id": _NI,
                    "last_seen": last_seen,
                }
            ),
            "User": _obj(
                {
                    "id": _I,
                    "username": _S,
                    "display_name": _S,
                    "main_extension": _S,
                    "cli_custom": _NS,
                    "presented_cli": _S,
                    "primary_device_id": _NI,
                    "team_app": _obj(
                        {
                            "enabled": _B,
                            "smart_working": _B,
                            "gsm_mode": _B,
                            "gsm_number": _NS,
                            "fallback_timeout_s": _I,
                            "callback_enabled": _B,
                            "fallback_timeout_inherited": _B,
                            "callback_inherited": _B,
                        }
                    ),
                    "client": _obj(
                        {"enabled": _B, "smart_working": _B, "web_phone": _B, "video_calls": _B}
                    ),
                    "devices": {"type": "array", "items": _ref("Device")},
                    "main_extension_changed": _obj({"old": _S, "new": _S}),
                },
                [
                    "id",
                    "username",
                    "display_name",
                    "main_extension",
                    "cli_custom",
                    "presented_cli",
                    "team_app",
                    "client",
                    "devices",
                    "primary_device_id",
                ],
            ),
            "Site": _obj(
                {
                    "id": _I,
                    "name": _S,
                    "networks": {"type": "array", "items": _S},
                    "policy": {"enum": ["open", "digest", "certificate"]},
                    "lock_on_first_boot": _B,
                }
            ),
            "RevealedPassword": _obj(
                {
                    "id": _I,
                    "sip_username": _S,
                    "sip_password": _S,
                    "provisioning_username": _S,
                    "provisioning_password": _NS,
                }
            ),
            "ResyncResult": _obj(
                {
                    "device_id": _I,
                    "address": _S,
                    "event": _S,
                    "reboot": _B,
                    "status": _NI,
                    "reason": _S,
                    "attempts": _I,
                    "elapsed_s": {"type": "number"},
                }
            ),
            "Ban": _obj({"target": _S, "reason": _S, "since": _S, "until": _S, "hits": _I}),
            "Model": _obj({"id": _S, "vendor": _S, "name": _S, "family": _S}),
            "Unprovisioned": _obj(
                {
                    "mac": _S,
                    "vendor": _NS,
                    "model_guess": _NS,
                    "first_seen": _S,
                    "last_seen": _S,
                    "ip": _NS,
                    "user_agent": _NS,
                    "path": _NS,
                    "requests": _I,
                }
            ),
            "Licences": {"type": "object", "additionalProperties": _obj({"count": _I, "used": _I})},
            "Settings": _obj(
                {
                    "mcs_interconnected": _B,
                    "team_app": _obj({"fallback_timeout_s": _I, "callback_enabled": _B}),
                    "sip": _obj(
                        {
                            "registrar": _S,
                            "port": _I,
                            "transport": {"enum": ["udp", "tcp", "tls"]},
                            "outbound_proxy": _S,
                        }
                    ),
                    "ntp_server": _S,
                    "timezone": _S,
                    "language": _S,
                }
            ),
            "Directory": _obj(
                {
                    "number": _S,
                    "matched": _S,
                    "presented_cli": _S,
                    "user": _obj(
                        {"id": _I, "username": _S, "display_name": _S, "main_extension": _S}
                    ),
                    "ring_targets": {"type": "array", "items": {"type": "object"}},
                }
            ),
            "AuditEntry": _obj(
                {
                    "id": _I,
                    "at": _S,
                    "actor": _S,
                    "action": _S,
                    "object_type": _S,
                    "object_id": _NS,
                    "before": {},
                    "after": {},
                }
            ),
        }
    )
    schemas.update(fleet_schemas())
    return schemas


def _response(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "provisiond admin API",
            "version": __version__,
            "description": "Users, devices, primary device, licences and settings.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": _with_errors(_paths()),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
            "responses": {
                "Unauthorized": _response("missing or unknown token"),
                "Forbidden": _response("read-only token"),
                "NotFound": _response("no such object"),
                "Conflict": _response("clashes with current state, or licence refused"),
                "TooLarge": _response("body over the size limit"),
                "Invalid": _response("malformed input; `field` names it"),
                "Throttled": _response("too many failed token attempts from this address"),
            },
        },
    }
