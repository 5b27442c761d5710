"""Answer and body models of the programmable-key routes (domain/keys.py has the rules)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from provisiond.frontends.api_models import Out

KeyType = Literal["line", "blf", "speed_dial", "park", "dnd", "url"]


class KeyIn(BaseModel):
    """One key; without `position` it takes the one after the previous key (the first: 1)."""

    model_config = ConfigDict(extra="forbid")

    position: int | None = Field(default=None, ge=1, le=1000)
    type: KeyType
    value: str = Field(
        default="",
        description="line: account slot; blf: an extension or an outside number of 6+ digits; "
        "speed_dial: a number; park: the orbit or empty; dnd: empty; url: http(s) URL",
    )
    label: str | None = None


class KeysPut(BaseModel):
    """The whole list: it replaces the keys there were ([] removes them all)."""

    model_config = ConfigDict(extra="forbid")

    keys: list[KeyIn]


class KeyOut(Out):
    """A stored key."""

    position: int
    type: KeyType
    value: str
    label: str | None


class ShownKeyOut(KeyOut):
    """A key as the phone shows it, and whether it is the device's own or its user's."""

    source: Literal["device", "user"]


class KeyCapacityOut(Out):
    """How many key positions a phone of the user has: its own keys, then its modules'."""

    device_id: int
    model: str
    line_keys: int
    expansion_modules: int
    module_keys: int
    capacity: int


class UserKeysOut(Out):
    """A user's keys and the phones they follow onto."""

    user_id: int
    items: list[KeyOut]
    devices: list[KeyCapacityOut]


class DeviceKeysOut(Out):
    """A device's own keys, the keys its phone shows, its model's limit and the key types its
    vendor takes."""

    device_id: int
    user_id: int | None
    items: list[KeyOut]
    effective: list[ShownKeyOut]
    key_types: list[KeyType]
    model: str
    line_keys: int
    expansion_modules: int
    module_keys: int
    capacity: int
