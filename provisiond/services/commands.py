"""Typed inputs of the admin use cases, shared by the API, the CLI and the web console.

Pydantic does the type checking (strict: "5" is not a number); the domain rules do the rest.
Fields left out of a patch are unchanged; an explicit null clears an optional value (a user's
Team App timeout then inherits the platform default again).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from provisiond.domain.errors import InvalidInput

_Model = TypeVar("_Model", bound=BaseModel)


class Command(BaseModel):
    """Base: unknown fields are refused, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class TeamAppInput(Command):
    """The Team App panel as sent by a client (all fields optional in a patch)."""

    enabled: StrictBool | None = None
    smart_working: StrictBool | None = None
    gsm_mode: StrictBool | None = None
    gsm_number: StrictStr | None = None
    fallback_timeout_s: StrictInt | None = None
    callback_enabled: StrictBool | None = None


class ClientInput(Command):
    """The Client panel as sent by a client."""

    enabled: StrictBool | None = None
    smart_working: StrictBool | None = None
    web_phone: StrictBool | None = None
    video_calls: StrictBool | None = None


class UserCreate(Command):
    """Create a user."""

    username: StrictStr
    display_name: StrictStr
    main_extension: StrictStr
    cli_custom: StrictStr | None = None
    team_app: TeamAppInput = TeamAppInput()
    client: ClientInput = ClientInput()


class UserPatch(Command):
    """Change a user; only the fields present are touched."""

    username: StrictStr | None = None
    display_name: StrictStr | None = None
    main_extension: StrictStr | None = None
    cli_custom: StrictStr | None = None
    team_app: TeamAppInput | None = None
    client: ClientInput | None = None


class DeviceCreate(Command):
    """Create a device; with `user_id` it is assigned at once (rule 1 applies)."""

    extension: StrictStr
    model: StrictStr
    mac: StrictStr
    active: StrictBool = True
    user_id: StrictInt | None = None
    sip_username: StrictStr | None = None
    sip_password: StrictStr | None = None
    label: StrictStr | None = None
    site_id: StrictInt | None = None  # the site it belongs to (else its first boot may bind it)


class DevicePatch(Command):
    """Change a device; ownership changes go through assign/unassign, not here."""

    extension: StrictStr | None = None
    model: StrictStr | None = None
    mac: StrictStr | None = None
    active: StrictBool | None = None
    sip_username: StrictStr | None = None
    sip_password: StrictStr | None = None
    label: StrictStr | None = None
    site_id: StrictInt | None = None  # null: belongs to no site (the first-boot lock may bind it)


class PrimaryDevice(Command):
    """Body of PUT /users/{id}/primary-device: a device, or slot 2.. of one (an account)."""

    device_id: StrictInt
    slot: StrictInt = 1


class AccountPut(Command):
    """Body of PUT /devices/{id}/accounts/{slot}: the whole account (slot 2 and up)."""

    extension: StrictStr
    user_id: StrictInt | None = None
    sip_username: StrictStr | None = None
    sip_password: StrictStr | None = None  # kept when the account exists and none is sent
    label: StrictStr | None = None
    active: StrictBool = True


class ResyncOne(Command):
    """Body of POST /devices/{id}/resync (optional)."""

    reboot: StrictBool = False


class ResyncMany(Command):
    """Body of POST /resync: exactly one of user_id, model, site."""

    user_id: StrictInt | None = None
    model: StrictStr | None = None
    site: StrictInt | None = None
    reboot: StrictBool = False


class TokenCreate(Command):
    """Create an API token."""

    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    scope: Literal["admin", "read"] = "admin"


def parse(model: type[_Model], data: Any) -> _Model:
    """Validate `data` into `model`; the first problem becomes InvalidInput naming the field."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object", field="body")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(part) for part in err["loc"]) or "body"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise InvalidInput(f"{field}: {message}", field=field) from exc
