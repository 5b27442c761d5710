"""Bulk import planning: the database facts the rules need, read once, and each user's lines
planned with the domain rules (provisiond.domain.rules) over them.

`read_facts` reads the catalogue, the users and the devices in three queries; `fact_check`
checks a line's model, MAC and extension against them; `plan_all` applies, per user in file
order, the same rules the single-object services apply: main extension free, a device's
extension never another user's main extension, rule 1 (`primary_after_assign`) and rule 2
(`select_primary`). Every refusal becomes a `LineError` on the line that caused it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import device_rules, rules
from provisiond.domain.errors import Conflict, DomainError, InvalidInput
from provisiond.domain.mac import mac_compact
from provisiond.services.fleet_rows import ImportRow, LineError, group_by_user
from provisiond.storage.models import Device, DeviceModel, User


@dataclass(frozen=True, slots=True)
class UserFact:
    """What the planner needs of an existing user."""

    id: int
    display_name: str
    main_extension: str
    primary_device_id: int | None


@dataclass
class Facts:
    """What the rules need to know about the database, read once."""

    models: set[str]
    users: dict[str, UserFact]  # by username
    mains: dict[str, int]  # main extension -> user id
    by_mac: dict[str, tuple[int, int | None]]  # mac -> (device id, owner)
    by_extension: dict[str, tuple[int, int | None]]


@dataclass
class UserPlan:
    """What the import does to one user."""

    username: str
    user_id: int | None  # None: created
    display_name: str
    main_extension: str
    order: list[ImportRow]  # assignment order
    primary_line: int | None = None  # the line whose device ends up primary (None: keep)
    old_main: str | None = None  # set when rule 2 changed the main extension


class _Refusal(Exception):
    """A rule refused one line of a user's group."""

    def __init__(self, line: int, error: DomainError) -> None:
        super().__init__(error.detail)
        self.line = line
        self.error = error


async def read_facts(session: AsyncSession) -> Facts:
    """Catalogue ids, users and devices: three queries."""
    models = set((await session.scalars(select(DeviceModel.id))).all())
    users = (
        await session.execute(
            select(
                User.id,
                User.username,
                User.display_name,
                User.main_extension,
                User.primary_device_id,
            )
        )
    ).all()
    devices = (
        await session.execute(
            select(Device.id, type_coerce(Device.mac, String), Device.extension, Device.user_id)
        )
    ).all()
    return Facts(
        models=models,
        users={
            u.username: UserFact(u.id, u.display_name, u.main_extension, u.primary_device_id)
            for u in users
        },
        mains={u.main_extension: u.id for u in users},
        by_mac={d[1]: (d.id, d.user_id) for d in devices},
        by_extension={d.extension: (d.id, d.user_id) for d in devices},
    )


def _holder(index: Mapping[str, tuple[int, int | None]], key: str) -> int | None:
    """The id of the device indexed under `key`, or None."""
    found = index.get(key)
    return None if found is None else found[0]


def fact_check(facts: Facts) -> Callable[[int, Mapping[str, Any]], list[LineError]]:
    """The catalogue, and MAC and extension uniqueness: the checks of
    provisiond.domain.device_rules that DeviceService.create makes, over the facts."""

    def check(line: int, values: Mapping[str, Any]) -> list[LineError]:
        found: list[LineError] = []

        def run(rule: Callable[..., object], *args: Any, **kwargs: Any) -> None:
            try:
                rule(*args, **kwargs)
            except DomainError as exc:
                found.append(LineError(line, exc.field or "row", exc.detail))

        model, mac, extension = values.get("model"), values.get("mac"), values.get("extension")
        if model is not None:
            run(device_rules.check_model_known, model, facts.models)
        if mac is not None:
            holder = _holder(facts.by_mac, mac_compact(mac))
            run(device_rules.check_mac_free, mac, holder=holder, device_id=None)
        if extension is not None:
            holder = _holder(facts.by_extension, extension)
            run(device_rules.check_extension_free, extension, holder=holder, device_id=None)
        return found

    return check


class _Planner:
    """Applies the domain rules to each user's lines, in file order, over the facts."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        # Both updated as users are planned, so later users see earlier ones.
        self.mains = dict(facts.mains)
        self.owners = {ext: owner for ext, (_, owner) in facts.by_extension.items()}
        self._new_ids: Iterator[int] = itertools.count(-1, -1)  # placeholders for new users

    def _main_users(self, extension: str) -> list[int]:
        return [self.mains[extension]] if extension in self.mains else []

    def plan(self, name: str, rows: list[ImportRow]) -> UserPlan:
        """Plan one user's lines; a refusal raises `_Refusal` naming the line."""
        existing = self.facts.users.get(name)
        flagged = next((r for r in rows if r.primary), None)
        given_main = next((r.main_extension for r in rows if r.main_extension), None)
        display = next((r.display_name for r in rows if r.display_name), None)
        if existing is not None:
            _same(existing.display_name, display, "display_name", name, rows)
            _same(existing.main_extension, given_main, "main_extension", name, rows)
            uid, main = existing.id, existing.main_extension
            primary: int | None = existing.primary_device_id
        else:
            if display is None:
                detail = f"display_name is required to create user {name}"
                raise _Refusal(rows[0].line, InvalidInput(detail, field="display_name"))
            main_row = flagged or rows[0]
            uid, main, primary = next(self._new_ids), given_main or main_row.extension, None
            # A main extension taken from a line's extension is reported on that column.
            column = "main_extension" if given_main else "extension"
            self._main_free(main, uid, main_row, creating=True, column=column)
            self.mains[main] = uid
        order = rows
        if primary is None and flagged is not None:
            order = [flagged, *(r for r in rows if r is not flagged)]
        for row in order:
            try:
                rules.check_device_extension_for_owner(
                    row.extension,
                    owner_id=uid,
                    main_extension_user_ids=self._main_users(row.extension),
                )
            except DomainError as exc:
                raise _Refusal(row.line, exc) from exc
            self.owners[row.extension] = uid
            # Placeholder device ids are the negated line numbers (real ids are positive).
            primary = rules.primary_after_assign(current_primary_id=primary, device_id=-row.line)
        plan = UserPlan(name, existing.id if existing else None, display or "", main, order)
        plan.primary_line = -primary if primary is not None and primary < 0 else None
        if flagged is not None and plan.primary_line != flagged.line:
            self._select(plan, uid, flagged)
        return plan

    def _select(self, plan: UserPlan, uid: int, row: ImportRow) -> None:
        """Rule 2 for a user that already had a primary."""
        change = rules.select_primary(
            device_id=-row.line, device_extension=row.extension, main_extension=plan.main_extension
        )
        if change.changed:
            self._main_free(change.main_extension, uid, row, creating=False, column="primary")
            if self.mains.get(plan.main_extension) == uid:
                del self.mains[plan.main_extension]
            self.mains[change.main_extension] = uid
            plan.old_main, plan.main_extension = plan.main_extension, change.main_extension
        plan.primary_line = row.line

    def _main_free(
        self, extension: str, uid: int, row: ImportRow, *, creating: bool, column: str
    ) -> None:
        try:
            rules.check_main_extension_free(
                extension,
                user_id=None if creating else uid,
                user_ids_with_main=self._main_users(extension),
                device_owner_ids=[self.owners[extension]] if extension in self.owners else [],
            )
        except DomainError as exc:
            raise _Refusal(row.line, Conflict(exc.detail, field=column)) from exc


def _same(stored: str, given: str | None, name: str, user: str, rows: list[ImportRow]) -> None:
    """An existing user's display name or main extension may be repeated, not changed."""
    if given is not None and given != stored:
        row = next(r for r in rows if getattr(r, name) == given)
        detail = f"user {user} exists with {name} {stored!r}; leave the column empty or match it"
        raise _Refusal(row.line, Conflict(detail, field=name))


def plan_all(rows: list[ImportRow], facts: Facts, errors: list[LineError]) -> list[UserPlan]:
    """Plan every user whose lines are all valid so far; refusals go to `errors`."""
    planner = _Planner(facts)
    failed = {e.line for e in errors}
    plans = []
    for name, group in group_by_user(rows).items():
        if any(r.line in failed for r in group):
            continue  # its lines are already reported; planning it would add noise
        try:
            plans.append(planner.plan(name, group))
        except _Refusal as refusal:
            error = refusal.error
            errors.append(LineError(refusal.line, error.field or "username", error.detail))
    return plans
