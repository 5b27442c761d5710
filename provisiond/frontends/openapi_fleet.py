"""The OpenAPI paths and schemas of bulk import and export (merged by provisiond.frontends.openapi).

Kept apart so the main document module stays readable; plain dictionaries, no helpers shared.
"""

from __future__ import annotations

from typing import Any

from provisiond.services.fleet_rows import COLUMNS

REF = "#/components/schemas/"
IMPORT = "/api/v1/import"
EXPORT = "/api/v1/export"
_S, _I, _B = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}
_NS = {"type": ["string", "null"]}
_FLAG = {"type": ["boolean", "string", "null"], "description": "true/false, 1/0, yes/no"}


def _rows() -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": REF + "ImportRow"}}


def fleet_paths() -> dict[str, Any]:
    """POST /api/v1/import and GET /api/v1/export."""
    return {
        IMPORT: {
            "post": {
                "summary": "Create devices and users from CSV or JSON rows: all or nothing",
                "requestBody": {
                    "required": True,
                    "content": {
                        "text/csv": {
                            "schema": _S,
                            "example": "mac,model,extension,username,display_name,primary\n"
                            "00:15:65:aa:bb:cc,yealink-t46s,201,mrossi,Mario Rossi,1\n",
                        },
                        "application/json": {
                            "schema": {
                                "oneOf": [
                                    _rows(),
                                    {
                                        "type": "object",
                                        "properties": {"rows": _rows()},
                                        "required": ["rows"],
                                    },
                                ]
                            }
                        },
                    },
                },
                "responses": {
                    "200": _json_of("ImportResult", "imported"),
                    "422": _json_of("ImportRefused", "bad lines (all listed); nothing imported"),
                },
            }
        },
        EXPORT: {
            "get": {
                "summary": "Every device with its user, as import rows",
                "parameters": [
                    {
                        "name": "format",
                        "in": "query",
                        "required": False,
                        "schema": {"enum": ["csv", "json"]},
                        "description": "csv (default) or json",
                    }
                ],
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {
                            "text/csv": {"schema": _S},
                            "application/json": {"schema": _rows()},
                        },
                    }
                },
            }
        },
    }


def _json_of(name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF + name}}},
    }


def fleet_schemas() -> dict[str, Any]:
    """ImportRow, ImportResult and ImportRefused."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS, _NS)
    row.update({"primary": _FLAG, "active": _FLAG})
    changed = {
        "type": "object",
        "properties": {"username": _S, "old": _S, "new": _S},
        "required": ["username", "old", "new"],
    }
    line = {
        "type": "object",
        "properties": {"line": _I, "field": _S, "detail": _S},
        "required": ["line", "field", "detail"],
    }
    return {
        "ImportRow": {
            "type": "object",
            "properties": row,
            "required": ["mac", "model", "extension"],
            "additionalProperties": False,
        },
        "ImportResult": {
            "type": "object",
            "properties": {
                "lines": _I,
                "devices_created": _I,
                "users_created": _I,
                "users_updated": _I,
                "main_extension_changed": {"type": "array", "items": changed},
            },
            "required": [
                "lines",
                "devices_created",
                "users_created",
                "users_updated",
                "main_extension_changed",
            ],
        },
        "ImportRefused": {
            "type": "object",
            "properties": {
                "error": {"const": "import_refused"},
                "detail": _S,
                "lines": {"type": "array", "items": line},
            },
            "required": ["error", "detail", "lines"],
        },
    }
