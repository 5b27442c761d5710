"""Bulk import: the programmable keys of the file (columns ``keys`` and ``device_keys``).

What an import does with them keeps its contract (provisiond.services.fleet): it creates and
never edits, and it is all or nothing.

``keys``, the user's keys (they follow the user onto every device whose slot 1 they own), on
any line with a username:
- a user the import creates gets the list (an empty cell, or no column: no keys);
- a user that exists keeps theirs: an empty cell leaves them as they are, and a list must be
  the stored one (as an existing user's display name may be repeated, not changed), else the
  line is refused naming the way to change them (PUT /api/v1/users/{id}/keys,
  ``provisiond phone-keys set``). ``[]`` is a list: "this user has no keys";
- lines of one user that give a list must give the same one (compared as checked, so a missing
  position and its explicit number are the same key); else the later line is refused naming
  the earlier.

``device_keys``, the device's own keys (they replace the user's position by position), on the
device's slot-1 line: the device is new (an import only creates devices), so it gets the list;
an empty cell: none. On an account line (slot 2 and up) it is refused.

Every list is checked as the keys API checks it (provisiond.domain.keys.check_keys, and
provisiond.services.keys' limits with their messages): a BLF watches an extension of this
system (stored, or an extension or main extension of a line of the file) or an outside number
of 6+ digits; a line key names a slot of the phone; a device key fits its model's positions and
is of a type its vendor's templates write; a new user's key fits the widest of the devices the
file gives them (none: no limit, as for a user without devices). Every problem is a
`LineError` on the line, named by the key at fault: ``keys[2].position``.

`write_keys` then inserts the lists with the import's other rows, and the import writes one
audit row per list, "user.keys_set" (object "user") and "device.keys_set" (object "device"),
as provisiond.services.keys.KeyService does: the phone directory re-reads those devices.
`follow_main_extensions` makes BLF keys follow a main extension the import moved (rule 2),
as provisiond.services.key_follow does for the single-object services.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from provisiond.domain.errors import InvalidInput
from provisiond.domain.keys import PhoneKey, check_keys
from provisiond.services.fleet_facts import Facts
from provisiond.services.fleet_rows import MAX_SLOT, ImportRow, LineError, group_by_user
from provisiond.services.key_follow import move_main_extension
from provisiond.services.keys import device_key_problems, line_slots, user_key_problems
from provisiond.storage.models import DeviceKey, User, UserKey

__all__ = ["KeyChange", "KeyPlan", "follow_main_extensions", "key_lists", "plan_keys", "write_keys"]

_CHUNK = 500  # ids per IN (...) list


@dataclass
class KeyPlan:
    """The key lists the import writes."""

    users: dict[str, tuple[PhoneKey, ...]] = field(default_factory=dict)  # by username
    devices: dict[str, tuple[PhoneKey, ...]] = field(default_factory=dict)  # by MAC, 12 hex


# A key change to audit: action, object type, object id, before, after.
KeyChange = tuple[str, str, int, list[dict[str, Any]], list[dict[str, Any]]]


def _as_given(raw: object) -> tuple[PhoneKey, ...]:
    """A list that fleet_rows checked alone, in its checked form (positions filled in, values
    and labels trimmed): what lines and stored keys are compared by."""
    return check_keys(raw, accounts=MAX_SLOT, is_extension=lambda _: True)


def _difference(first: Sequence[PhoneKey], other: Sequence[PhoneKey], field: str) -> str:
    """Where two lists part: the first key that differs, or their lengths."""
    for index, (a, b) in enumerate(zip(first, other, strict=False)):
        if a != b:
            return f"{field}[{index}] differs"
    return f"{len(first)} keys there, {len(other)} here"


class _KeyChecker:
    """The checks of one file's key lists against the file and the facts."""

    def __init__(
        self,
        facts: Facts,
        extensions: set[str],
        types_of: Callable[[str], Sequence[str]],
        errors: list[LineError],
    ) -> None:
        self.facts = facts
        known = set(facts.by_extension) | set(facts.mains) | extensions
        self.is_extension = known.__contains__
        self.types_of = types_of
        self.errors = errors

    def _checked(
        self, row: ImportRow, raw: object, column: str, accounts: int
    ) -> tuple[PhoneKey, ...] | None:
        try:
            return check_keys(raw, field=column, accounts=accounts, is_extension=self.is_extension)
        except InvalidInput as exc:
            self.errors.append(LineError(row.line, exc.field or column, exc.detail))
            return None

    def _refuse(self, row: ImportRow, problems: list[InvalidInput], column: str) -> bool:
        self.errors.extend(LineError(row.line, p.field or column, p.detail) for p in problems)
        return bool(problems)

    def device(self, row: ImportRow) -> tuple[PhoneKey, ...] | None:
        """A slot-1 line's device keys, within its model and its vendor's key types."""
        model = self.facts.catalogue[row.model]
        keys = self._checked(row, row.device_keys, "device_keys", model.accounts)
        if keys is None:
            return None
        types = self.types_of(model.vendor)
        if self._refuse(row, device_key_problems(keys, model, types, field="device_keys"), ""):
            return None
        return keys

    def user(
        self, name: str, group: list[ImportRow], stored: Mapping[int, tuple[PhoneKey, ...]]
    ) -> tuple[PhoneKey, ...] | None:
        """The keys a user's lines give (None: none, or refused): one list for all lines; an
        existing user's must be theirs; a new user's are checked for the devices the file
        gives them."""
        given = [(row, _as_given(row.keys)) for row in group if row.keys is not None]
        if not given:
            return None
        first, keys = given[0]
        agree = True
        for row, other in given[1:]:
            if other != keys:
                detail = (
                    f"user {name} has other keys on line {first.line} "
                    f"({_difference(keys, other, 'keys')}); give the same list on every line "
                    "of a user, or leave the cell empty"
                )
                self.errors.append(LineError(row.line, "keys", detail))
                agree = False
        existing = self.facts.users.get(name)
        if existing is not None:
            theirs = stored.get(existing.id, ())
            if keys != theirs:
                detail = (
                    f"user {name} exists with other keys ({_difference(theirs, keys, 'keys')}); "
                    "an import does not change a user's keys: leave the cell empty or give the "
                    f"stored list (PUT /api/v1/users/{existing.id}/keys changes them)"
                )
                self.errors.append(LineError(first.line, "keys", detail))
            return None  # theirs already, or refused
        models = [self.facts.catalogue[row.model] for row in group if not row.is_account]
        checked = self._checked(first, first.keys, "keys", line_slots(models))
        if checked is None:
            return None
        if self._refuse(first, user_key_problems(checked, models, f"user {name}"), "keys"):
            return None
        return checked if agree else None


async def _stored_user_keys(
    session: AsyncSession, user_ids: list[int]
) -> dict[int, tuple[PhoneKey, ...]]:
    found: dict[int, list[PhoneKey]] = {}
    for chunk in _chunks(user_ids):
        rows = await session.scalars(
            select(UserKey)
            .where(UserKey.user_id.in_(chunk))
            .order_by(UserKey.user_id, UserKey.position)
        )
        for r in rows:
            found.setdefault(r.user_id, []).append(PhoneKey(r.position, r.type, r.value, r.label))
    return {user_id: tuple(keys) for user_id, keys in found.items()}


async def plan_keys(
    session: AsyncSession,
    rows: list[ImportRow],
    facts: Facts,
    extensions: set[str],
    types_of: Callable[[str], Sequence[str]],
    errors: list[LineError],
) -> KeyPlan:
    """Check every key list of the valid lines (`extensions`: those the file names, see
    fleet_facts.FactChecker); problems go to `errors`; the lists to write come back."""
    checker = _KeyChecker(facts, extensions, types_of, errors)
    plan = KeyPlan()
    for row in rows:
        if row.device_keys is not None and not row.is_account:
            keys = checker.device(row)
            if keys:
                plan.devices[row.mac_key] = keys
    groups = group_by_user(rows)
    known = [
        facts.users[name].id
        for name, group in groups.items()
        if name in facts.users and any(row.keys is not None for row in group)
    ]
    stored = await _stored_user_keys(session, known)
    for name, group in groups.items():
        keys = checker.user(name, group, stored)
        if keys:
            plan.users[name] = keys
    return plan


async def write_keys(
    session: AsyncSession,
    plan: KeyPlan,
    user_ids: Mapping[str, int],
    device_ids: Mapping[str, int],
) -> list[KeyChange]:
    """Insert the planned lists (the users and devices are new: they had none); the changes to
    audit, as KeyService writes them."""
    changes: list[KeyChange] = []
    user_rows: list[dict[str, Any]] = []
    for name, keys in plan.users.items():
        after = [key.as_dict() for key in keys]
        user_rows += [{"user_id": user_ids[name], **row} for row in after]
        changes.append(("user.keys_set", "user", user_ids[name], [], after))
    device_rows: list[dict[str, Any]] = []
    for mac, keys in plan.devices.items():
        after = [key.as_dict() for key in keys]
        device_rows += [{"device_id": device_ids[mac], **row} for row in after]
        changes.append(("device.keys_set", "device", device_ids[mac], [], after))
    if user_rows:
        await session.execute(insert(UserKey), user_rows)
    if device_rows:
        await session.execute(insert(DeviceKey), device_rows)
    return changes


async def follow_main_extensions(
    session: AsyncSession, moves: Sequence[tuple[int, str, str]]
) -> None:
    """BLF keys on a main extension the import moved (user id, old, new) follow it, with
    key_follow's audit row. The import has already written the new main extension in bulk,
    so each user is read back as it was (`old`, not flagged as a change) and moved again."""
    for user_id, old, new in moves:
        user = await session.get(User, user_id, populate_existing=True)
        assert user is not None  # just updated
        set_committed_value(user, "main_extension", old)
        await move_main_extension(session, user, new)
    await session.flush()


async def key_lists(
    session: AsyncSession,
) -> tuple[dict[int, list[dict[str, Any]]], dict[int, list[dict[str, Any]]]]:
    """For the export: every user's and every device's keys in the API's form, by position
    (user id -> list, device id -> list)."""
    return await _lists(session, UserKey.user_id, UserKey), await _lists(
        session, DeviceKey.device_id, DeviceKey
    )


async def _lists(
    session: AsyncSession, owner: Any, table: type[UserKey] | type[DeviceKey]
) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    rows = await session.execute(
        select(owner, table.position, table.type, table.value, table.label).order_by(
            owner, table.position
        )
    )
    for owner_id, position, kind, value, label in rows:
        found.setdefault(owner_id, []).append(PhoneKey(position, kind, value, label).as_dict())
    return found


def _chunks(items: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
