"""Platform settings and licences: the global state the user rules depend on.

Seats in use are counted in SQL generated from the licence table (rules.LICENCE_SEATS) and the
switches each feature needs (rules.DEPENDENCIES), so the count and the rules cannot disagree.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import rules
from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.services.context import ServiceContext, audit
from provisiond.settings import PlatformSettings
from provisiond.storage.models import Licence, Setting, User

log = logging.getLogger(__name__)
_WARNED: set[str] = set()  # stored settings already reported as ignored


def _merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


async def effective_platform(session: AsyncSession, defaults: PlatformSettings) -> PlatformSettings:
    """The settings file's platform values overlaid with those changed through the API.

    A stored value that the current rules refuse (saved by a version that checked less) is
    left out, with a warning, and the file's value applies until an admin sets a valid one.
    """
    rows = (await session.scalars(select(Setting))).all()
    overrides: dict[str, Any] = {row.key: copy.deepcopy(row.value) for row in rows}
    base = defaults.model_dump()
    while True:
        try:
            return PlatformSettings.model_validate(_merge(base, overrides))
        except ValidationError as exc:
            if not all(_drop(overrides, err["loc"]) for err in exc.errors()):
                raise


def _drop(overrides: dict[str, Any], loc: tuple[int | str, ...]) -> bool:
    """Remove the stored value at `loc` (a validation error's path); False when none is there."""
    node: Any = overrides
    for key in loc[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, dict) or loc[-1] not in node:
        return False
    name = f"{'.'.join(map(str, loc))}={node.pop(loc[-1])!r}"
    if name not in _WARNED:  # once per process and value: this runs on every read
        _WARNED.add(name)
        log.warning("ignoring the stored platform setting %s: no longer valid", name)
    return True


async def licence_counts(session: AsyncSession) -> dict[str, int]:
    """Installed licence modules and their seat counts."""
    rows = (await session.scalars(select(Licence))).all()
    return {row.module: row.count for row in rows}


def feature_is_on(feature: str) -> ColumnElement[bool]:
    """SQL for "this user has `feature` in effect": it and every switch it needs are on.

    The column of feature "panel.flag" is User.panel_flag (see provisiond.domain.rules).
    """
    flags = rules.feature_on_when(feature)
    return and_(*(getattr(User, flag.replace(".", "_")) for flag in flags))


async def licences_used(session: AsyncSession) -> Counter[str]:
    """Seats in use per module, counted from the users' features by the rows of
    rules.LICENCE_SEATS (never stored, so never out of step): one query, a sum per row."""
    seats = rules.LICENCE_SEATS
    sums = [
        func.coalesce(func.sum(case((feature_is_on(seat.feature), 1), else_=0)), 0)
        for seat in seats
    ]
    row = (await session.execute(select(*sums))).one()
    used: Counter[str] = Counter(dict.fromkeys(rules.licence_modules(), 0))
    for seat, count in zip(seats, row, strict=True):
        used[seat.module] += int(count)
    return used


async def users_with_any(session: AsyncSession, features: Sequence[str]) -> int:
    """How many users have at least one of `features` in effect."""
    if not features:
        return 0
    query = select(func.count()).select_from(User).where(or_(*map(feature_is_on, features)))
    return int(await session.scalar(query) or 0)


class PlatformService:
    """GET/PUT /api/v1/settings and /api/v1/licences."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def get_settings(self) -> dict[str, Any]:
        """The effective platform settings."""
        async with self.ctx.db.read() as session:
            current = await effective_platform(session, self.ctx.settings.platform)
        return current.model_dump()

    async def put_settings(self, patch: Any, actor: str) -> dict[str, Any]:
        """Change platform settings (a partial, nested object); validated as a whole."""
        if not isinstance(patch, dict):
            raise InvalidInput("the body must be a JSON object", field="body")
        async with self.ctx.db.write() as session:
            before = await effective_platform(session, self.ctx.settings.platform)
            try:
                # Strict: "yes" is not a boolean here, as nowhere else in the API.
                after = PlatformSettings.model_validate(
                    _merge(before.model_dump(), patch), strict=True
                )
            except ValidationError as exc:
                err = exc.errors()[0]
                field = ".".join(str(p) for p in err["loc"]) or "body"
                raise InvalidInput(f"{field}: {err['msg']}", field=field) from exc
            if not after.mcs_interconnected and before.mcs_interconnected:
                await self._refuse_mcs_off(session)
            old, new = before.model_dump(), after.model_dump()
            for key, value in patch.items():
                # Store only what was set (a section keeps its other values from the file).
                existing = await session.get(Setting, key)
                if existing is None:
                    session.add(Setting(key=key, value=value))
                elif isinstance(value, dict) and isinstance(existing.value, dict):
                    existing.value = _merge(existing.value, value)
                else:
                    existing.value = value
            audit(session, actor, "settings.update", "settings", None, old, new)
        return new

    @staticmethod
    async def _refuse_mcs_off(session: AsyncSession) -> None:
        if await users_with_any(session, rules.features_needing_setting("mcs_interconnected")):
            raise Conflict(
                "users still have smart working enabled; disable it before turning off the MCS "
                "interconnection",
                field="mcs_interconnected",
            )

    @staticmethod
    def rules_table() -> dict[str, Any]:
        """The licence and feature dependency tables (GET /api/v1/rules)."""
        return rules.rules_table()

    async def get_licences(self) -> dict[str, dict[str, int]]:
        """Every known module with its count and seats in use."""
        async with self.ctx.db.read() as session:
            return await self._licences(session)

    @staticmethod
    async def _licences(session: AsyncSession) -> dict[str, dict[str, int]]:
        counts = await licence_counts(session)
        used = await licences_used(session)
        return {
            module: {"count": counts.get(module, 0), "used": used[module]}
            for module in rules.licence_modules()
        }

    async def put_licences(self, counts: Any, actor: str) -> dict[str, dict[str, int]]:
        """Set licence counts; lowering one below the seats in use is refused."""
        if not isinstance(counts, dict):
            raise InvalidInput("the body must be a JSON object of module: count", field="body")
        async with self.ctx.db.write() as session:
            before = await self._licences(session)
            valid = rules.check_licence_counts(counts, await licences_used(session))
            for module, count in valid.items():
                row = await session.get(Licence, module)
                if row is None:
                    session.add(Licence(module=module, count=count))
                else:
                    row.count = count
            await session.flush()
            after = await self._licences(session)
            audit(session, actor, "licences.update", "licences", None, before, after)
        return after
