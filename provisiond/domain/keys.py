"""Programmable keys: what each key of a phone (and its expansion modules) does.

A user has an ordered list of keys that follows them onto every device they own (slot 1 of the
device); a device may override single positions with keys of its own. Positions count the
phone's own keys first (1..line_keys), then each expansion module's keys in turn. What a
position may hold is checked here; how each vendor writes it is the templates' business
(phone_templates/<vendor>/, docs/phones.md).

    line        value: the account slot ("" = 1); shows the owner's main extension
    blf         value: an existing extension, or an outside number of 6+ digits
    speed_dial  value: a number to dial
    park        value: the park orbit (a number) or "" for the PBX's park key
    dnd         value: "" (do not disturb on/off)
    url         value: an http(s) URL the phone opens
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from provisiond.domain.device_rules import LABEL_MAX_LENGTH
from provisiond.domain.errors import InvalidInput
from provisiond.domain.rules import check_text, has_control

__all__ = [
    "KEY_TYPES",
    "MAX_KEYS",
    "PhoneKey",
    "check_keys",
    "effective_keys",
    "key_capacity",
    "key_place",
    "keys_beyond",
]

KEY_TYPES = ("line", "blf", "speed_dial", "park", "dnd", "url")
MAX_KEYS = 1000  # far above any phone with its modules (Yealink T48U + 3 EXP50: 29 + 180)
MAX_VALUE_LENGTH = 255
_DIAL = re.compile(r"\+?[0-9*#]{1,32}")
_OUTSIDE_NUMBER = re.compile(r"\+?[0-9]{6,32}")
_URL = re.compile(r"https?://[^\s\"'<>\\]{1,240}")
_ITEM_KEYS = frozenset({"position", "type", "value", "label"})


@dataclass(frozen=True, slots=True)
class PhoneKey:
    """One programmed key: `position` from 1, `type` one of KEY_TYPES."""

    position: int
    type: str
    value: str
    label: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The API and audit form."""
        return {
            "position": self.position,
            "type": self.type,
            "value": self.value,
            "label": self.label,
        }


def key_capacity(line_keys: int, expansion_modules: int, module_keys: int) -> int:
    """How many positions a model has: its own keys, then every module's."""
    return line_keys + expansion_modules * module_keys


def key_place(position: int, line_keys: int, module_keys: int) -> tuple[int, int]:
    """(module, index): module 0 is the phone itself; index counts from 1 on that module."""
    if position <= line_keys or module_keys <= 0:
        return 0, position
    beyond = position - line_keys - 1
    return beyond // module_keys + 1, beyond % module_keys + 1


def effective_keys(
    user_keys: Sequence[PhoneKey], device_keys: Sequence[PhoneKey]
) -> tuple[PhoneKey, ...]:
    """The user's keys with the device's own keys replacing theirs position by position."""
    if not device_keys:
        return tuple(user_keys)
    merged = {key.position: key for key in user_keys}
    merged.update((key.position, key) for key in device_keys)
    return tuple(merged[position] for position in sorted(merged))


def keys_beyond(keys: Iterable[PhoneKey], capacity: int) -> list[int]:
    """Positions a model of `capacity` positions cannot show."""
    return [key.position for key in keys if key.position > capacity]


def check_keys(
    raw: object,
    *,
    field: str = "keys",
    accounts: int = 1,
    is_extension: Callable[[str], bool] = lambda _: False,
) -> tuple[PhoneKey, ...]:
    """A key list from the API/CLI/import: items ``{type, value, label, position?}``.

    A missing position is the one after the previous key (the first: 1), so a plain ordered
    list fills positions 1, 2, 3...; positions must increase. `is_extension` says whether a
    BLF value is an extension of this system; `accounts` bounds a line key's slot. Nothing is
    checked against a model here (a user's keys follow them onto several): see `keys_beyond`.
    """
    if not isinstance(raw, list):
        raise InvalidInput(f"{field} must be a list of keys", field=field)
    if len(raw) > MAX_KEYS:
        raise InvalidInput(f"{field}: at most {MAX_KEYS} keys", field=field)
    keys: list[PhoneKey] = []
    previous = 0
    for index, item in enumerate(raw):
        where = f"{field}[{index}]"
        key = _key(item, where, previous + 1, accounts, is_extension)
        if key.position <= previous:
            raise InvalidInput(
                f"{where}.position {key.position} must come after position {previous}",
                field=f"{where}.position",
            )
        previous = key.position
        keys.append(key)
    return tuple(keys)


def _key(
    item: object,
    where: str,
    next_position: int,
    accounts: int,
    is_extension: Callable[[str], bool],
) -> PhoneKey:
    if not isinstance(item, Mapping):
        raise InvalidInput(f"{where} must be an object {{type, value, label}}", field=where)
    unknown = sorted(set(map(str, item)) - _ITEM_KEYS)
    if unknown:
        raise InvalidInput(f"{where}: unknown field {unknown[0]!r}", field=f"{where}.{unknown[0]}")
    position = item.get("position", next_position)
    if isinstance(position, bool) or not isinstance(position, int) or not 1 <= position <= MAX_KEYS:
        raise InvalidInput(
            f"{where}.position must be a whole number from 1 to {MAX_KEYS}",
            field=f"{where}.position",
        )
    kind = item.get("type")
    if kind not in KEY_TYPES:
        raise InvalidInput(
            f"{where}.type must be one of {', '.join(KEY_TYPES)}, got {kind!r}",
            field=f"{where}.type",
        )
    value = item.get("value", "")
    value = "" if value is None else value
    if not isinstance(value, str) or len(value) > MAX_VALUE_LENGTH:
        raise InvalidInput(
            f"{where}.value must be a string of at most {MAX_VALUE_LENGTH} characters",
            field=f"{where}.value",
        )
    if has_control(value):
        raise InvalidInput(
            f"{where}.value must not contain control characters", field=f"{where}.value"
        )
    value = _value(str(kind), value.strip(), f"{where}.value", accounts, is_extension)
    label = item.get("label")
    if label is not None:
        label = check_text(label, f"{where}.label", max_len=LABEL_MAX_LENGTH).strip() or None
    return PhoneKey(position, str(kind), value, label)


def _value(
    kind: str, value: str, field: str, accounts: int, is_extension: Callable[[str], bool]
) -> str:
    if kind == "line":
        if value == "":
            return "1"
        if not value.isdigit() or not 1 <= int(value) <= accounts:
            raise InvalidInput(
                f"{field}: a line key names an account slot from 1 to {accounts}", field=field
            )
        return str(int(value))
    if kind == "blf":
        if is_extension(value) or _OUTSIDE_NUMBER.fullmatch(value):
            return value
        raise InvalidInput(
            f"{field}: {value!r} is no extension of this system (an outside number needs "
            "at least 6 digits)",
            field=field,
        )
    if kind == "speed_dial":
        if not _DIAL.fullmatch(value):
            raise InvalidInput(
                f"{field}: a speed dial is a number (digits, *, #, a leading +)", field=field
            )
        return value
    if kind == "park":
        if value and not _DIAL.fullmatch(value):
            raise InvalidInput(
                f"{field}: a park key's value is a park orbit number or empty", field=field
            )
        return value
    if kind == "dnd":
        if value:
            raise InvalidInput(f"{field}: a DND key takes no value", field=field)
        return value
    if not _URL.fullmatch(value):
        raise InvalidInput(f"{field}: a URL key needs an http:// or https:// URL", field=field)
    return value
