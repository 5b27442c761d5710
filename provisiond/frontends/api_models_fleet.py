"""Typed bodies of bulk import and export (POST /api/v1/import, GET /api/v1/export).

The import's rows are parsed by provisiond.services.fleet_rows, line by line with every
problem collected, not by pydantic: `ImportRowIn` only describes them for the OpenAPI document
(tests/integration/test_api_responses.py checks that it names exactly the parser's columns).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from provisiond.frontends.api_models import Out
from provisiond.frontends.api_models_keys import KeyIn, KeyOut

Flag = Annotated[bool | str | None, Field(description="true/false, 1/0, yes/no")]
Slot = Annotated[
    int | str | None,
    Field(
        description="which account of the device at `mac` the row is: 1 (the default) the "
        "device itself, 2 up to the model's `accounts` a further account (a DECT handset, an "
        "ATA port); at most 1000"
    ),
]
UserKeys = Annotated[
    list[KeyIn] | None,
    Field(
        description="the user's keys (as PUT /users/{id}/keys takes them), on a line with a "
        "username; a new user gets them, an existing user's must be their stored list, the "
        "user's lines must agree; null or absent: none given (an existing user's stay)"
    ),
]
DeviceKeys = Annotated[
    list[KeyIn] | None,
    Field(
        description="the device's own keys (as PUT /devices/{id}/keys takes them), on its "
        "slot-1 row; null or absent: none"
    ),
]


class ImportRowIn(BaseModel):
    """One row of a JSON import; keys are the CSV columns (fleet_rows.COLUMNS)."""

    model_config = ConfigDict(extra="forbid")

    mac: str
    model: str
    extension: str
    username: str | None = None
    display_name: str | None = None
    primary: Flag = None
    main_extension: str | None = None
    active: Flag = None
    label: str | None = None
    slot: Slot = None
    keys: UserKeys = None
    device_keys: DeviceKeys = None


class ImportRowsIn(BaseModel):
    """A JSON import as an object: ``{"rows": [...]}``."""

    model_config = ConfigDict(extra="forbid")

    rows: list[ImportRowIn]


ImportBody = list[ImportRowIn] | ImportRowsIn


class ExportRowOut(Out):
    """One device (slot 1) or one further account of it (slot 2 and up, after its device's
    row) with its user, as the JSON export writes it (an import row)."""

    mac: str
    model: str
    extension: str
    username: str | None
    display_name: str | None
    primary: bool
    main_extension: str | None
    active: bool
    label: str | None
    slot: int
    keys: list[KeyOut] | None  # the user's, on every row of the user; None: no keys
    device_keys: list[KeyOut] | None  # the device's own, on its slot-1 row; None: none


class ImportedUserOut(Out):
    """A user whose main extension the import changed (rule 2)."""

    username: str
    old: str
    new: str


class ImportResultOut(Out):
    """What an import created."""

    lines: int
    devices_created: int
    accounts_created: int
    users_created: int
    users_updated: int
    main_extension_changed: list[ImportedUserOut]


class LineErrorOut(Out):
    """One problem of an import file: line (the header is line 1), column, what."""

    line: int
    field: str
    detail: str


class ImportRefusedOut(Out):
    """A refused import: nothing was imported; every bad line is listed."""

    error: Literal["import_refused"]
    detail: str
    lines: list[LineErrorOut]
