"""Bulk import planning: each user's lines planned with the domain rules
(provisiond.domain.rules) over the database facts (provisiond.services.fleet_facts).

`plan_all` applies, per user in file order, the same rules the single-object services apply:
main extension free, a line's extension never another user's main extension, rule 1
(`primary_after_assign`) and rule 2 (`select_primary`). A line is a device (slot 1) or a
further account (slot 2 and up): the rules hold per line (DESIGN.md, "Accounts"), so an account
may become its user's primary line and its extension the main extension. Every refusal becomes
a `LineError` on the line that caused it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, DomainError, InvalidInput
from provisiond.services.fleet_facts import Facts
from provisiond.services.fleet_rows import ImportRow, LineError, group_by_user

# The planner's name for a user's stored primary line (a device or an account, not a line of
# the file): lines of the file are their negated line numbers.
_STORED = 0


@dataclass
class UserPlan:
    """What the import does to one user."""

    username: str
    user_id: int | None  # None: created
    display_name: str
    main_extension: str
    order: list[ImportRow]  # assignment order
    primary_line: int | None = None  # the line (device or account) that ends up primary
    old_main: str | None = None  # set when rule 2 changed the main extension


class _Refusal(Exception):
    """A rule refused one line of a user's group."""

    def __init__(self, line: int, error: DomainError) -> None:
        super().__init__(error.detail)
        self.line = line
        self.error = error


class _Planner:
    """Applies the domain rules to each user's lines, in file order, over the facts."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        # Both updated as users are planned, so later users see earlier ones.
        self.mains = dict(facts.mains)
        self.owners = {ext: holder.owner for ext, holder in facts.by_extension.items()}
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
            primary: int | None = _STORED if existing.has_primary else None
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
            # A line of the file is its negated line number (None: no primary; _STORED).
            primary = rules.primary_after_assign(current_primary_id=primary, device_id=-row.line)
        plan = UserPlan(name, existing.id if existing else None, display or "", main, order)
        plan.primary_line = -primary if primary is not None and primary < 0 else None
        if flagged is not None and plan.primary_line != flagged.line:
            self._select(plan, uid, flagged)
        return plan

    def _select(self, plan: UserPlan, uid: int, row: ImportRow) -> None:
        """Rule 2 for a user that already had a primary (a device or an account)."""
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
