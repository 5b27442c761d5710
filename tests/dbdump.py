"""Whole-database snapshots for "a refused request changes nothing" (DESIGN.md rule 7).

`dump` reads every table of the models' metadata, in name order, rows in primary-key order, as
plain JSON-ready values, so two dumps compare with `==` and can be searched as JSON text.
`unchanged` and `refused` wrap a service call that must fail and assert the dump is identical
before and after.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, TypeVar

import netaddr
import pytest
from sqlalchemy import select

from provisiond.storage.database import Database
from provisiond.storage.models import Base

_Error = TypeVar("_Error", bound=BaseException)


def _plain(value: Any) -> Any:
    """JSON-ready form of a column value (MACs and timestamps become text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, netaddr.EUI):
        return f"{int(value):012x}"
    return value


async def dump(db: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of Base.metadata, in a stable order (table name, primary key)."""
    snapshot: dict[str, list[dict[str, Any]]] = {}
    async with db.read() as session:
        for name in sorted(Base.metadata.tables):
            table = Base.metadata.tables[name]
            query = select(table).order_by(*table.primary_key.columns)
            rows = (await session.execute(query)).mappings().all()
            snapshot[name] = [{key: _plain(value) for key, value in row.items()} for row in rows]
    return snapshot


@asynccontextmanager
async def unchanged(db: Database) -> AsyncIterator[None]:
    """Assert that the body leaves every table exactly as it found it."""
    before = await dump(db)
    yield
    after = await dump(db)
    # Plain assert in a helper module gets no pytest rewriting: say which tables differ.
    changed = {name: (before[name], after[name]) for name in before if before[name] != after[name]}
    assert not changed, f"a refused request changed the database (before, after): {changed}"


@asynccontextmanager
async def refused(db: Database, error: type[_Error]) -> AsyncIterator[pytest.ExceptionInfo[_Error]]:
    """The body must raise `error` and leave the database unchanged; yields the ExceptionInfo."""
    async with unchanged(db):
        with pytest.raises(error) as info:
            yield info
