"""Typed answers of the admin API: one pydantic model per JSON shape the routes return.

The services build plain dictionaries; the handlers pass each one through the model the
operation table (provisiond.frontends.openapi) gives for its route, with `dump`. Models are
strict and refuse unknown keys, so a service whose answer drifts from its model fails loudly
(a 500 in a test) instead of drifting silently, and the same models generate the OpenAPI
document's schemas. Class names end in ``Out``; the document names each schema without it.

A field typed ``X | Absent = absent()`` is left out of the answer when the service leaves it out
(`dump` drops unset fields), and the schema shows it as an optional ``X``, never null.
Timestamps stay the services' ISO 8601 text, so the wire is exactly what they wrote.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import SkipJsonSchema

from provisiond.domain.policy import POLICIES
from provisiond.settings import PlatformSettings

Absent = SkipJsonSchema[None]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)  # the field is left out, never null: no `"default": null`


def absent() -> Any:
    """The default of an ``X | Absent`` field: unset, so `dump` leaves it out of the answer."""
    return Field(default=None, json_schema_extra=_no_default)


Timestamp = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


class Out(BaseModel):
    """Base of every answer: strict types, no key the model does not name."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        model_title_generator=lambda model: model.__name__.removesuffix("Out"),
    )


@functools.cache
def adapter(kind: Any) -> TypeAdapter[Any]:
    """The (cached) validator and serializer of a type such as `UserOut` or `list[SiteOut]`."""
    return TypeAdapter(kind)


def dump(kind: Any, data: Any) -> Any:
    """`data` checked against `kind` and turned into JSON-ready values (raises on drift)."""
    typed = adapter(kind)
    return typed.dump_python(typed.validate_python(data), mode="json", exclude_unset=True)


class ErrorOut(Out):
    """Every error answer; `field` names the input at fault, `module` a refused licence."""

    error: str
    detail: str
    field: str | Absent = absent()
    module: str | Absent = absent()


# -- devices and users -------------------------------------------------------------------------


class LastSeenOut(Out):
    """When and from where a device last asked for its files."""

    at: Timestamp
    ip: str | None
    user_agent: str | None
    firmware: str | None


class AccountOut(Out):
    """A further SIP account of a device (slot 2 and up; slot 1 is the device itself, listed
    with id null by GET /devices/{id}/accounts). Its SIP password is write-only."""

    id: int | None
    device_id: int
    slot: int
    extension: str
    user_id: int | None
    sip_username: str
    label: str | None
    active: bool


class AccountListOut(Out):
    """Every account of a device, slot 1 first, and how many the model carries."""

    items: list[AccountOut]
    slots: int


class DeviceOut(Out):
    """A device; its SIP password is write-only and never part of an answer."""

    id: int
    extension: str
    model: str
    mac: str = Field(description="00:15:65:aa:bb:cc notation")
    active: bool
    user_id: int | None
    sip_username: str
    label: str | None
    site_id: int | None
    last_seen: LastSeenOut | None
    accounts: list[AccountOut] = Field(description="further accounts, slot 2 and up")


class TeamAppOut(Out):
    """The Team App panel; timeout and callback are effective values, `*_inherited` their source."""

    enabled: bool
    smart_working: bool
    gsm_mode: bool
    gsm_number: str | None
    fallback_timeout_s: int
    callback_enabled: bool
    fallback_timeout_inherited: bool
    callback_inherited: bool


class ClientOut(Out):
    """The Client (desktop softphone) panel."""

    enabled: bool
    smart_working: bool
    web_phone: bool
    video_calls: bool


class ExtensionChangeOut(Out):
    """The main extension before and after a primary-device change (rule 2)."""

    old: str
    new: str


class UserOut(Out):
    """A user with its devices; `main_extension_changed` only when the request changed it."""

    id: int
    username: str
    display_name: str
    main_extension: str
    cli_custom: str | None
    presented_cli: str
    team_app: TeamAppOut
    client: ClientOut
    devices: list[DeviceOut]
    accounts: list[AccountOut] = Field(description="further accounts the user owns, any device")
    primary_device_id: int | None = Field(description="the device of the primary line")
    primary_slot: int | None = Field(description="the primary line's slot on that device")
    main_extension_changed: ExtensionChangeOut | Absent = absent()


class PageOut(Out):
    """The envelope of every list answer (each subclass types its `items`, which keep their
    place first, as the services send them)."""

    items: list[Any]
    total: int
    limit: int
    offset: int


class UserPageOut(PageOut):
    """A page of users."""

    items: list[UserOut]


class DevicePageOut(PageOut):
    """A page of devices."""

    items: list[DeviceOut]


class RevealedPasswordOut(Out):
    """A device's passwords in clear (admin tokens only; audited)."""

    id: int
    sip_username: str
    sip_password: str
    provisioning_username: str
    provisioning_password: str | None


# -- catalogue, unprovisioned, audit ------------------------------------------------------------


class ModelOut(Out):
    """A catalogue entry (phone_templates/<vendor>/models.toml; docs/templates.md)."""

    id: str
    vendor: str
    name: str
    family: str = Field(description="what the vendor's file names carry for the model")
    series: str = Field(description="the product family")
    boot: list[str] = Field(description="the boot sequence, path templates in request order")
    protocols: list[str]
    auth: list[str] = Field(description="digest, certificate")
    accounts: int = Field(description="SIP accounts the model carries")
    line_keys: int
    expansion_modules: int
    module_keys: int
    handsets: int
    dect: bool
    ata: bool
    user_agent: str
    in_catalogue: bool = Field(description="false: left the catalogue, kept for its devices")


class UnprovisionedOut(Out):
    """A MAC that asked for a configuration and is not a known device."""

    mac: str
    vendor: str | None
    model_guess: str | None
    first_seen: Timestamp
    last_seen: Timestamp
    ip: str | None
    user_agent: str | None
    path: str | None
    requests: int


class UnprovisionedPageOut(PageOut):
    """A page of unprovisioned MACs."""

    items: list[UnprovisionedOut]


class AuditEntryOut(Out):
    """One audit-log row; `before` and `after` are the object's views around the change."""

    id: int
    at: Timestamp
    actor: str
    action: str
    object_type: str
    object_id: str | None
    before: Any
    after: Any


class AuditPageOut(PageOut):
    """A page of the audit log."""

    items: list[AuditEntryOut]


# -- platform ----------------------------------------------------------------------------------


class LicenceOut(Out):
    """One licence module: seats installed and in use."""

    count: int
    used: int


Licences = dict[str, LicenceOut]


class SettingsOut(PlatformSettings):
    """The effective platform settings (the same model the settings file is read with)."""

    model_config = ConfigDict(strict=True)


# -- directory ---------------------------------------------------------------------------------


class DirectoryUserOut(Out):
    """The user a number reaches."""

    id: int
    username: str
    display_name: str
    main_extension: str


class DeviceTargetOut(Out):
    """An active line of the user (a device, or account `slot` of one), primary first."""

    type: Literal["device"]
    device_id: int
    slot: int
    extension: str
    model: str
    primary: bool


class GsmOut(Out):
    """The Team App's GSM fallback, when `gsm_mode` is on."""

    number: str | None
    fallback_timeout_s: int
    callback_enabled: bool


class TeamAppTargetOut(Out):
    """The Team App rings too."""

    type: Literal["team_app"]
    smart_working: bool
    gsm: GsmOut | Absent = absent()


class WebPhoneTargetOut(Out):
    """The Client's web phone rings too."""

    type: Literal["web_phone"]
    video_calls: bool


RingTarget = Annotated[
    DeviceTargetOut | TeamAppTargetOut | WebPhoneTargetOut, Field(discriminator="type")
]


class DirectoryOut(Out):
    """Who answers a number: the user, the presented CLI and what rings."""

    number: str
    matched: Literal["main_extension", "device_extension"]
    user: DirectoryUserOut
    presented_cli: str
    ring_targets: list[RingTarget]


# -- sites, bans, resync -----------------------------------------------------------------------


class SiteOut(Out):
    """A site: its networks (canonical CIDRs) and the policy for its devices' files."""

    id: int
    name: str
    networks: list[str]
    policy: str = Field(json_schema_extra={"enum": list(POLICIES)})
    lock_on_first_boot: bool


class BanOut(Out):
    """A source banned by the enumeration defence (this process)."""

    target: str = Field(description="an address or a network")
    reason: str
    since: Timestamp
    until: Timestamp
    hits: int


class ResyncResultOut(Out):
    """One SIP NOTIFY and the phone's answer (`status` null: no answer, or nothing sent)."""

    device_id: int
    address: str
    event: str
    reboot: bool
    status: int | None
    reason: str
    attempts: int
    elapsed_s: float
