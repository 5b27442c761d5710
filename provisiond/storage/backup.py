"""`provisiond backup FILE` and `provisiond restore FILE`: the whole database in one file.

The file (provisiond.storage.backup_file) holds every table of the models, the audit log
included, in foreign-key order, with dialect-neutral values: a backup of SQLite restores into
PostgreSQL and back.

Consistency while serving: every row is read in ONE read transaction, REPEATABLE READ READ
ONLY on PostgreSQL (one snapshot for every table) and a read transaction on SQLite, whose WAL
gives it a snapshot from its first read. Servers keep serving and writing meanwhile; the file
is one instant. It is written to a 0600 temporary file, fsynced, then renamed into place, so
there is never half a backup under the final name. A target that cannot take the file (full
disk, quota, I/O error) raises BackupError saying so; the temporary file is removed and a
previous backup under the same name is left as it was.

Secrets: columns marked secret are copied as stored, i.e. encrypted (``enc1:...``). The
keyring file is NOT in the backup — a backup together with its keyring would be every SIP
password in one place — so keep a copy of the keyring apart: without it, restored secrets
cannot be decrypted.

Restore refuses a file of another schema revision than this release's head, a database not
migrated to it, and (unless forced) a database that holds anything beyond the catalogue the
migrations seed. The whole file is checked before the database is touched; then every table
loads in one transaction (any problem rolls all of it back): the users <-> devices cycle is
loaded with users' primary device empty and set once the devices exist; PostgreSQL sequences
then continue after the restored ids. Restart running servers afterwards: their in-memory
directories and change-feed positions describe the old contents.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import os
import secrets as random_source
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import IO, Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import (
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    literal,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from provisiond.storage import migrate
from provisiond.storage.backup_file import (
    BATCH,
    TABLES,
    BackupError,
    BackupSummary,
    Reader,
    encode,
    header,
    kind,
    read_header,
    verify,
    write_line,
)
from provisiond.storage.database import Database
from provisiond.storage.durable import fsync_directory
from provisiond.storage.models import Base
from provisiond.storage.secrets import SecretError, census, load_keyring

__all__ = [
    "BackupError",
    "BackupSummary",
    "backup",
    "backup_report",
    "keys_missing",
    "restore",
    "restore_report",
    "verify",
]

# Filled by the migrations themselves: a database holding only these counts as empty.
SEEDED = frozenset({"device_models"})

Progress = Callable[[str, int], Awaitable[None]]


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# -- backup ----------------------------------------------------------------------------------


@asynccontextmanager
async def _snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """One read transaction that sees a single instant of the whole database."""
    async with db.engine.connect() as conn:
        if not db.is_sqlite:
            await conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        async with conn.begin():
            yield conn


def _select(table: Table) -> Select[Any]:
    # JSON as its stored text: typed reading would turn SQL NULL and JSON null both into None.
    columns = [cast(c, Text).label(c.name) if kind(c) == "json" else c for c in table.columns]
    return select(*columns).order_by(*table.primary_key.columns)


async def _write_table(conn: AsyncConnection, table: Table, out: IO[bytes]) -> int:
    write_line(out, {"table": table.name, "columns": [c.name for c in table.columns]})
    kinds = [kind(c) for c in table.columns]
    result = await conn.stream(_select(table))
    count = 0
    async for batch in result.partitions(BATCH):
        for row in batch:
            write_line(out, [encode(k, v) for k, v in zip(kinds, row, strict=True)])
        count += len(batch)
    write_line(out, {"end_table": table.name, "rows": count})
    return count


async def _write(
    db: Database, out: IO[bytes], path: Path, progress: Progress | None
) -> BackupSummary:
    async with _snapshot(db) as conn:
        revision = await conn.run_sync(_current_revision)
        if revision is None:
            raise BackupError("the database was never migrated: nothing to back up")
        head = header(revision, conn.dialect.name)
        write_line(out, head)
        rows: dict[str, int] = {}
        for table in TABLES:
            rows[table.name] = await _write_table(conn, table, out)
            if progress is not None:
                await progress(table.name, rows[table.name])
    write_line(out, {"end": True, "rows": sum(rows.values())})
    return BackupSummary(path, revision, head["created_at"], head["source_dialect"], rows)


async def backup(db: Database, path: Path, *, progress: Progress | None = None) -> BackupSummary:
    """Write every table to `path` from one consistent snapshot (atomically, mode 0600).

    `progress(table, rows)` is awaited after each table, inside the read transaction.
    Secrets stay encrypted; the keyring is not included. BackupError when the file cannot be
    written (nothing is left under `path` or beside it then).
    """
    temp = path.with_name(f".{path.name}.{random_source.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise _not_written(path, exc) from exc
    try:
        with os.fdopen(fd, "wb") as raw:
            # GzipFile is a binary file object; typeshed does not call it IO[bytes].
            packed: Any = gzip.GzipFile(fileobj=raw, mode="wb")
            with packed:
                summary = await _write(db, packed, path, progress)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, path)
        fsync_directory(path.parent)
    except OSError as exc:
        raise _not_written(path, exc) from exc
    finally:
        temp.unlink(missing_ok=True)
    return summary


def _not_written(path: Path, exc: OSError) -> BackupError:
    """The administrator's message for a backup file that could not be written."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = "the disk is full; free space there or write the backup elsewhere"
    else:
        cause = exc.strerror or str(exc)
    return BackupError(f"cannot write {path}: {cause}; no backup was written")


# -- restore ---------------------------------------------------------------------------------


def _check_revision(path: Path, head: dict[str, Any]) -> None:
    ours = migrate.head_revision()
    if head["schema_revision"] != ours:
        raise BackupError(
            f"{path} was written at schema revision {head['schema_revision']}, this release is "
            f"at {ours}: restore it with the release that wrote it, upgrade that installation "
            "(`provisiond db upgrade`) and back it up again"
        )


def _deferred(table: Table) -> tuple[str, ...]:
    """Columns of a cyclic foreign key (users.primary_device_id): loaded NULL, set at the end."""
    names = {
        column.name
        for constraint in table.foreign_key_constraints
        if constraint.use_alter
        for column in constraint.columns
        if not column.primary_key
    }
    return tuple(sorted(names))


def _keep_onupdate(table: Table) -> dict[str, Any]:
    # Setting the deferred keys is not a change of the row: keep updated_at as restored.
    return {c.name: c for c in table.columns if c.onupdate is not None}


async def _check_target(conn: AsyncConnection, force: bool) -> None:
    head = migrate.head_revision()
    current = await conn.run_sync(_current_revision)
    if current != head:
        raise BackupError(
            f"the database is at schema revision {current}, this release at {head}: "
            "run `provisiond db upgrade` first"
        )
    if force:
        return
    for table in TABLES:
        if table.name in SEEDED:
            continue
        query = select(literal(1)).select_from(table).limit(1)
        if table.name == "audit_log":
            # Start-up's own catalogue sync (services/catalogue_sync.py) is not content.
            query = query.where(table.c.object_type != "catalogue")
        if await conn.scalar(query) is not None:
            raise BackupError(
                f"the database is not empty ({table.name} has rows): restore into an empty "
                "database, or pass --force to replace everything it holds"
            )


async def _clear(conn: AsyncConnection) -> None:
    for table in TABLES:
        columns = _deferred(table)
        if columns:
            cleared: dict[str, Any] = dict.fromkeys(columns)
            await conn.execute(update(table).values({**cleared, **_keep_onupdate(table)}))
    for table in reversed(TABLES):
        await conn.execute(delete(table))


def _insert(table: Table, sqlite: bool) -> Any:
    values: dict[str, Any] = {}
    for column in table.columns:
        name = f"v_{column.name}"
        if kind(column) != "json":
            values[column.name] = bindparam(name, type_=column.type)
        elif sqlite:  # SQLite keeps JSON as its text already
            values[column.name] = bindparam(name, type_=Text())
        else:
            values[column.name] = cast(bindparam(name, type_=Text()), column.type)
    return table.insert().values(values)


def _set_deferred(table: Table, columns: tuple[str, ...]) -> Any:
    keys = table.primary_key.columns
    where = and_(*(c == bindparam(f"k_{c.name}", type_=c.type) for c in keys))
    values: dict[str, Any] = {c: bindparam(f"v_{c}", type_=table.columns[c].type) for c in columns}
    return update(table).where(where).values({**values, **_keep_onupdate(table)})


async def _load(conn: AsyncConnection, reader: Reader, sqlite: bool) -> None:
    later: dict[str, list[dict[str, Any]]] = {}
    for table, batch in reader.batches():
        deferred = _deferred(table)
        params = []
        for row in batch:
            if any(row[c] is not None for c in deferred):
                keys = {f"k_{c.name}": row[c.name] for c in table.primary_key.columns}
                later.setdefault(table.name, []).append(
                    {**keys, **{f"v_{c}": row[c] for c in deferred}}
                )
            params.append({f"v_{k}": None if k in deferred else v for k, v in row.items()})
        await conn.execute(_insert(table, sqlite), params)
    for name, pending in later.items():
        table = Base.metadata.tables[name]
        statement = _set_deferred(table, _deferred(table))
        for start in range(0, len(pending), BATCH):
            await conn.execute(statement, pending[start : start + BATCH])


async def _reset_sequences(conn: AsyncConnection) -> None:
    """PostgreSQL: the next generated id follows the restored ones (SQLite derives it)."""
    for table in TABLES:
        column = table.autoincrement_column
        if column is None:
            continue
        following = select(func.coalesce(func.max(column), 0) + 1).scalar_subquery()
        sequence = func.pg_get_serial_sequence(table.name, column.name)
        await conn.execute(select(func.setval(sequence, following, False)))


async def restore(db: Database, path: Path, *, force: bool = False) -> BackupSummary:
    """Load a backup into `db` in one transaction; `force` replaces what the database holds.

    Raises BackupError, having written nothing, for a damaged file, another schema revision,
    a database not at head, or a non-empty database without `force`.
    """
    _check_revision(path, await asyncio.to_thread(read_header, path))
    summary = await asyncio.to_thread(verify, path)  # sound before the database is touched
    try:
        async with db.write() as session:
            conn = await session.connection()
            await _check_target(conn, force)
            await _clear(conn)
            await _load(conn, Reader(path), db.is_sqlite)
            if not db.is_sqlite:
                await _reset_sequences(conn)  # last: setval is not undone by a rollback
    except DBAPIError as exc:  # e.g. a hand-edited file breaking a unique key: all rolled back
        raise BackupError(f"{path} does not load, nothing was restored: {exc.orig}") from exc
    return summary


async def keys_missing(db: Database, keyring: Path) -> list[str]:
    """Key ids the stored secrets name that the keyring file lacks (all, if it is missing)."""
    used = set((await census(db)).by_key)
    try:
        ring = await asyncio.to_thread(load_keyring, keyring)
        present = {entry.id for entry in ring.keys}
    except SecretError:  # a missing or unreadable keyring holds no keys
        present = set()
    return sorted(used - present)


async def backup_report(db: Database, path: Path, keyring: Path) -> dict[str, Any]:
    """`provisiond backup`: back up, and say where the secrets' key is (not in the file)."""
    result = (await backup(db, path)).as_dict()
    result["note"] = (
        f"SIP secrets are in the file encrypted; the keyring {keyring} is NOT: keep a copy of "
        "it apart from the backup, without it they cannot be decrypted"
    )
    return result


async def restore_report(db: Database, path: Path, keyring: Path, *, force: bool) -> dict[str, Any]:
    """`provisiond restore`: restore, then check the keyring holds the secrets' keys."""
    result = (await restore(db, path, force=force)).as_dict()
    result["note"] = "restart every running `provisiond serve` on this database"
    missing = await keys_missing(db, keyring)
    if missing:
        result["note"] += (
            f"; the keyring {keyring} lacks keys {', '.join(missing)}: copy the backed-up "
            "installation's keyring there, or its SIP secrets cannot be decrypted"
        )
    return result
