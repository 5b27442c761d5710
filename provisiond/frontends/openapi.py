"""The OpenAPI 3.1 document of the admin API, generated from one table of operations.

Each `Operation` of `OPERATIONS` names a route's method, path, summary, request type (the
pydantic commands the services take) and answer type (provisiond.frontends.api_models); every
schema is pydantic's, so nothing here is written twice. The handlers of
provisiond.frontends.admin_api validate each answer against the same entry (`operation`), and
tests/integration/test_openapi.py compares the document with the routes aiohttp registered
and checks real answers against it.

Error statuses follow from an operation's shape (`_error_codes`): reads answer 401 and 429,
404 with a path parameter and 422 with any parameter; writes add 403 (read-only token), 404,
409, 413 with a body, and 422; `never` drops the ones an operation cannot answer.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from provisiond import __version__
from provisiond.frontends import api_models as out
from provisiond.frontends.api_models import adapter
from provisiond.frontends.api_models_fleet import (
    ExportRowOut,
    ImportBody,
    ImportRefusedOut,
    ImportResultOut,
)
from provisiond.frontends.api_models_keys import DeviceKeysOut, KeysPut, UserKeysOut
from provisiond.frontends.rules_api import RULES_PATH, RulesOut
from provisiond.services.commands import (
    AccountPut,
    DeviceCreate,
    DevicePatch,
    PrimaryDevice,
    ResyncMany,
    ResyncOne,
    UserCreate,
    UserPatch,
)
from provisiond.services.sites import SiteCreate, SitePatch
from provisiond.settings import PlatformSettings

REF = "#/components/schemas/"
DOC = "/api/v1/openapi.json"


@dataclass(frozen=True)
class Param:
    """A query parameter: name, type (its schema comes from pydantic) and description."""

    name: str
    kind: Any
    description: str


@dataclass(frozen=True)
class Operation:
    """One route of the admin API, as documented and as its handler answers.

    `answer` is the type of the success body (None: no body), `body` the type of the JSON
    request body, `refusal` the type of a 422 body that is not the common error; `csv_body`
    and `csv_answer` say that the request (import) or the answer (export) may be CSV text.
    """

    method: str
    path: str
    summary: str
    answer: Any = None
    status: int = 200
    body: Any = None
    query: tuple[Param, ...] = ()
    never: tuple[int, ...] = ()
    refusal: Any = None
    csv_body: bool = False
    csv_answer: bool = False
    body_optional: bool = False
    public: bool = False

    def path_params(self) -> list[str]:
        """The names in the path template, in order."""
        return re.findall(r"{(\w+)}", self.path)


_PATH_PARAMS: dict[str, tuple[Any, str]] = {
    "id": (int, "object id"),
    "device_id": (int, "device id"),
    "slot": (int, "account slot, 1 up to the model's accounts"),
    "number": (str, "an extension"),
    "target": (str, "an address or a network (192.0.2.7, 192.0.2.0/24)"),
}
PAGING = (
    Param("limit", Annotated[int, Field(ge=1, le=500)], "page size"),
    Param("offset", Annotated[int, Field(ge=0)], "items to skip"),
)
NEW_PRIMARY = (
    Param(
        "new_primary", int, "the new primary: required to remove the primary while others remain"
    ),
    Param("new_primary_slot", int, "its slot when the new primary is an account (default 1)"),
)
LicenceCounts = dict[str, Annotated[int, Field(ge=0)]]
USER_DEVICE = "/api/v1/users/{id}/devices/{device_id}"
DEVICE_ACCOUNT = "/api/v1/devices/{id}/accounts/{slot}"

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", DOC, "This document", dict[str, Any], public=True),
    Operation("GET", RULES_PATH, "The domain rules as data: licences, dependencies", RulesOut),
    Operation(
        "GET",
        "/api/v1/users",
        "List users",
        out.UserPageOut,
        query=(Param("search", str, "username, name or extension"), *PAGING),
    ),
    Operation("POST", "/api/v1/users", "Create a user", out.UserOut, 201, UserCreate, never=(404,)),
    Operation("GET", "/api/v1/users/{id}", "Get a user", out.UserOut),
    Operation("PATCH", "/api/v1/users/{id}", "Change a user", out.UserOut, body=UserPatch),
    Operation(
        "DELETE",
        "/api/v1/users/{id}",
        "Delete a user (devices stay, unassigned)",
        status=204,
        never=(409,),
    ),
    Operation(
        "PUT",
        USER_DEVICE,
        "Assign a device",
        out.UserOut,
        query=(Param("move", bool, "take the device from another user"),),
    ),
    Operation("DELETE", USER_DEVICE, "Unassign a device", out.UserOut, query=NEW_PRIMARY),
    Operation(
        "PUT",
        "/api/v1/users/{id}/primary-device",
        "Choose the primary device; its extension becomes the main extension",
        out.UserOut,
        body=PrimaryDevice,
    ),
    Operation(
        "GET",
        "/api/v1/devices",
        "List devices",
        out.DevicePageOut,
        query=(
            Param(
                "extension_prefix",
                Annotated[str, Field(pattern="^[0-9]{1,16}$")],
                "autocomplete: devices whose extension starts with this (max 20)",
            ),
            Param("mac", str, "exact MAC, any notation"),
            Param("user_id", int, "devices of one user"),
            *PAGING,
        ),
    ),
    Operation("POST", "/api/v1/devices", "Create a device", out.DeviceOut, 201, DeviceCreate),
    Operation("GET", "/api/v1/devices/{id}", "Get a device", out.DeviceOut),
    Operation("PATCH", "/api/v1/devices/{id}", "Change a device", out.DeviceOut, body=DevicePatch),
    Operation("DELETE", "/api/v1/devices/{id}", "Delete a device", status=204, query=NEW_PRIMARY),
    Operation(
        "GET",
        "/api/v1/devices/{id}/accounts",
        "A device's SIP accounts, slot 1 (the device) first",
        out.AccountListOut,
        never=(409,),
    ),
    Operation(
        "PUT",
        DEVICE_ACCOUNT,
        "Create or replace account `slot` (2 up to the model's accounts) of a device",
        out.DeviceOut,
        body=AccountPut,
        query=(Param("move", bool, "take the account from another user"), *NEW_PRIMARY),
    ),
    Operation(
        "DELETE",
        DEVICE_ACCOUNT,
        "Remove account `slot` of a device",
        out.DeviceOut,
        query=NEW_PRIMARY,
    ),
    Operation(
        "GET",
        "/api/v1/devices/{id}/keys",
        "A device's own keys, the keys its phone shows and its model's limit",
        DeviceKeysOut,
        never=(409,),
    ),
    Operation(
        "PUT",
        "/api/v1/devices/{id}/keys",
        "Replace a device's own keys (they replace its user's at the same positions)",
        DeviceKeysOut,
        body=KeysPut,
        never=(409,),
    ),
    Operation(
        "GET",
        "/api/v1/users/{id}/keys",
        "A user's keys (they follow the user onto every device they own)",
        UserKeysOut,
        never=(409,),
    ),
    Operation(
        "PUT",
        "/api/v1/users/{id}/keys",
        "Replace a user's keys",
        UserKeysOut,
        body=KeysPut,
        never=(409,),
    ),
    Operation(
        "POST",
        "/api/v1/devices/{id}/release-lock",
        "Release a device locked to the site of its first boot",
        out.DeviceOut,
        never=(409,),
    ),
    Operation(
        "POST",
        "/api/v1/devices/{id}/reveal-password",
        "The device's SIP and provisioning passwords (admin scope; audited)",
        out.RevealedPasswordOut,
        never=(409,),
    ),
    Operation(
        "POST",
        "/api/v1/devices/{id}/resync",
        "Send the device its vendor's resync NOTIFY (reboot optional)",
        out.ResyncResultOut,
        body=ResyncOne,
        body_optional=True,
    ),
    Operation(
        "POST",
        "/api/v1/resync",
        "Resync every device of a user, of a model, or last seen inside a site",
        list[out.ResyncResultOut],
        body=ResyncMany,
    ),
    Operation(
        "GET",
        "/api/v1/unprovisioned",
        "MACs that asked for a configuration",
        out.UnprovisionedPageOut,
        query=PAGING,
    ),
    Operation(
        "GET",
        "/api/v1/models",
        "The model catalogue",
        list[out.ModelOut],
        query=(
            Param("vendor", str, "only this vendor"),
            Param("series", str, "only this product family"),
        ),
    ),
    Operation("GET", "/api/v1/licences", "Licence counts and seats in use", out.Licences),
    Operation(
        "PUT",
        "/api/v1/licences",
        "Set licence counts",
        out.Licences,
        body=LicenceCounts,
        never=(404,),
    ),
    Operation("GET", "/api/v1/settings", "Platform settings", out.SettingsOut),
    Operation(
        "PUT",
        "/api/v1/settings",
        "Change platform settings (partial: what is left out keeps its value)",
        out.SettingsOut,
        body=PlatformSettings,
        never=(404,),
    ),
    Operation("GET", "/api/v1/directory/{number}", "Who answers a number", out.DirectoryOut),
    Operation("GET", "/api/v1/sites", "Sites", list[out.SiteOut]),
    Operation("POST", "/api/v1/sites", "Create a site", out.SiteOut, 201, SiteCreate, never=(404,)),
    Operation("GET", "/api/v1/sites/{id}", "Get a site", out.SiteOut),
    Operation("PATCH", "/api/v1/sites/{id}", "Change a site", out.SiteOut, body=SitePatch),
    Operation("DELETE", "/api/v1/sites/{id}", "Delete a site", status=204, never=(409,)),
    Operation("GET", "/api/v1/bans", "Sources banned by the enumeration defence", list[out.BanOut]),
    Operation(
        "DELETE",
        "/api/v1/bans/{target}",
        "Lift a ban on an address or network",
        status=204,
        never=(409,),
    ),
    Operation(
        "GET", "/api/v1/audit", "The audit log, newest first", out.AuditPageOut, query=PAGING
    ),
    Operation(
        "POST",
        "/api/v1/import",
        "Create devices and users from CSV or JSON rows: all or nothing",
        ImportResultOut,
        body=ImportBody,
        refusal=ImportRefusedOut,
        csv_body=True,
        never=(404, 409),
    ),
    Operation(
        "GET",
        "/api/v1/export",
        "Every device with its user, as import rows",
        list[ExportRowOut],
        query=(Param("format", Literal["csv", "json"], "csv (default) or json"),),
        csv_answer=True,
    ),
)
_BY_ROUTE = {(op.method, op.path): op for op in OPERATIONS}


def operation(method: str, path: str) -> Operation:
    """The table's entry for a route (`path` as aiohttp's canonical template; HEAD is GET)."""
    return _BY_ROUTE["GET" if method == "HEAD" else method, path]


class _SchemaNames(GenerateJsonSchema):
    """pydantic's schemas, named without the ``Out`` of the answer models, no field titles."""

    def normalize_name(self, name: str) -> str:
        """``UserOut`` is the schema ``User``."""
        return super().normalize_name(name).removesuffix("Out")

    def field_title_should_be_set(self, schema: Any) -> bool:
        """Property names say enough; titles only bloat the document."""
        return False


_ERRORS = {
    401: ("Unauthorized", "missing or unknown token"),
    403: ("Forbidden", "read-only token"),
    404: ("NotFound", "no such object"),
    409: ("Conflict", "clashes with current state, or licence refused"),
    413: ("TooLarge", "body over the size limit"),
    422: ("Invalid", "malformed input; `field` names it"),
    429: ("Throttled", "too many failed token attempts from this address"),
}
_DESCRIPTIONS = {200: "OK", 201: "created", 204: "done, no content"}


def _error_codes(op: Operation) -> list[int]:
    """The error statuses an operation can really answer, from its shape."""
    if op.public:
        return []
    has_params = bool(op.query or op.path_params())
    if op.method == "GET":
        codes = [401, 429, *([404] if op.path_params() else []), *([422] if has_params else [])]
    else:
        codes = [401, 429, 403, 404, 409, *([413] if op.body is not None else []), 422]
    return [code for code in codes if code not in op.never]


def _content(schema: Any, csv: bool) -> dict[str, Any]:
    media = {"application/json": {"schema": schema}}
    return {"text/csv": {"schema": {"type": "string"}}, **media} if csv else media


def _parameters(op: Operation) -> list[dict[str, Any]]:
    params = [(name, "path", *_PATH_PARAMS[name]) for name in op.path_params()]
    params += [(p.name, "query", p.kind, p.description) for p in op.query]
    return [
        {
            "name": name,
            "in": where,
            "required": where == "path",
            "schema": adapter(kind).json_schema(),
            "description": description,
        }
        for name, where, kind, description in params
    ]


def _operation(op: Operation, schemas: dict[str, Any], index: int) -> dict[str, Any]:
    """One operation object of the document."""
    success: dict[str, Any] = {"description": _DESCRIPTIONS[op.status]}
    if op.answer is not None:
        success["content"] = _content(schemas[f"{index}:answer"], op.csv_answer)
    responses: dict[str, Any] = {str(op.status): success}
    if op.refusal is not None:
        refusal = {"schema": schemas[f"{index}:refusal"]}
        responses["422"] = {"description": "refused", "content": {"application/json": refusal}}
    for code in _error_codes(op):
        responses.setdefault(str(code), {"$ref": "#/components/responses/" + _ERRORS[code][0]})
    document: dict[str, Any] = {"summary": op.summary, "responses": responses}
    if op.public:
        document["security"] = []
    if params := _parameters(op):
        document["parameters"] = params
    if op.body is not None:
        document["requestBody"] = {
            "required": not op.body_optional,
            "content": _content(schemas[f"{index}:body"], op.csv_body),
        }
    return document


def _schemas(ops: tuple[Operation, ...]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Each operation's body, answer and refusal schemas by key, and the shared components."""
    wanted: list[tuple[str, Any, Any]] = [("error", "serialization", out.ErrorOut)]
    for index, op in enumerate(ops):
        for part, mode, kind in (
            ("body", "validation", op.body),
            ("answer", "serialization", op.answer),
            ("refusal", "serialization", op.refusal),
        ):
            if kind is not None:
                wanted.append((f"{index}:{part}", mode, kind))
    by_key, defs = TypeAdapter.json_schemas(
        [(key, mode, adapter(kind)) for key, mode, kind in wanted],
        ref_template=REF + "{model}",
        schema_generator=_SchemaNames,
    )
    return {key: schema for (key, _mode), schema in by_key.items()}, defs.get("$defs", {})


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The whole document (built once)."""
    schemas, components = _schemas(OPERATIONS)
    paths: dict[str, dict[str, Any]] = {}
    for index, op in enumerate(OPERATIONS):
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas, index)
    error = {"content": {"application/json": {"schema": schemas["error"]}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "provisiond admin API",
            "version": __version__,
            "description": "Users, devices, primary device, licences and settings.",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": components,
            "responses": {
                name: {"description": description, **error}
                for name, description in _ERRORS.values()
            },
        },
    }
