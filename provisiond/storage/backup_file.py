"""The backup file format: gzip-compressed JSON Lines, one section per table (version 1).

    {"format": "provisiond-backup", "version": 1, "schema_revision": "0002",
     "created_at": "2026-...+00:00", "source_dialect": "sqlite", "tables": [...]}   header
    {"table": "users", "columns": ["id", "username", ...]}                          a table
    [1, "mrossi", ...]                                                              one row
    {"end_table": "users", "rows": 12}
    ...                                                                             every table
    {"end": true, "rows": 1234}                                                     trailer

Tables come in foreign-key order (`Base.metadata.sorted_tables`). Values are dialect-neutral:
timestamps ISO 8601 UTC, MACs 12 hex digits, JSON columns their stored JSON text (so a SQL NULL
and a JSON ``null`` stay apart), everything else as JSON scalars; so a file written from
SQLite restores into PostgreSQL and back. Secret columns hold what the database holds: the
``enc1:`` ciphertext. The reader checks everything (structure, each value against its column,
per-table and total row counts, gzip's CRC) and reports the first problem as one BackupError.
provisiond.storage.backup reads and writes the database.
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import netaddr
from sqlalchemy import JSON, Boolean, Column, Integer, String, Table

from provisiond.domain.errors import DomainError
from provisiond.domain.mac import mac_compact
from provisiond.storage.models import Base, MacType, UtcDateTime

FORMAT = "provisiond-backup"
VERSION = 1
BATCH = 1000
TABLES: tuple[Table, ...] = tuple(Base.metadata.sorted_tables)

Rows = list[dict[str, Any]]


class BackupError(DomainError):
    """A backup file is unusable, or a restore would lose or mismatch data."""

    code = "backup"


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup file holds: its header and the row count of each table."""

    path: Path
    schema_revision: str
    created_at: str
    source_dialect: str
    rows: Mapping[str, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for the command line."""
        return {
            "file": str(self.path),
            "schema_revision": self.schema_revision,
            "created_at": self.created_at,
            "source_dialect": self.source_dialect,
            "rows": dict(self.rows),
        }


# -- values ----------------------------------------------------------------------------------


def kind(column: Column[Any]) -> str:
    """How a column's values travel: "time", "mac", "json" (stored text) or "plain"."""
    if isinstance(column.type, UtcDateTime):
        return "time"
    if isinstance(column.type, MacType):
        return "mac"
    if isinstance(column.type, JSON):
        return "json"
    return "plain"


def encode(column_kind: str, value: Any) -> Any:
    """A value as read from the database (JSON columns as text), for the file."""
    if value is None or column_kind in ("plain", "json"):
        return value
    if column_kind == "time":
        return value.astimezone(UTC).isoformat()
    return mac_compact(value)


def decode(column: Column[Any], value: Any) -> Any:
    """The bind value for `column` from the file; ValueError/TypeError when it cannot be."""
    if value is None:
        if not column.nullable:
            raise ValueError("null in a NOT NULL column")
        return None
    column_kind = kind(column)
    if column_kind == "time":
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ValueError("timestamp without a time zone")
        return moment
    if column_kind == "mac":
        if not (isinstance(value, str) and len(value) == 12):
            raise ValueError("not 12 hex digits")
        return netaddr.EUI(int(value, 16), version=48)
    if column_kind == "json":
        json.loads(value)  # TypeError unless text, ValueError unless JSON
        return value
    _check_plain(column, value)
    return value


def _check_plain(column: Column[Any], value: Any) -> None:
    # SQLite would store a string in an integer column: check here, not there.
    expected: type = object
    if isinstance(column.type, Boolean):
        expected = bool
    elif isinstance(column.type, Integer):
        expected = int
    elif isinstance(column.type, String):  # Text is a String
        expected = str
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TypeError(f"{type(value).__name__} where {column.type} belongs")


# -- writing ---------------------------------------------------------------------------------


def write_line(out: IO[bytes], item: Any) -> None:
    """One JSON line."""
    out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode() + b"\n")


def header(schema_revision: str, source_dialect: str) -> dict[str, Any]:
    """The first line of a new backup."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "schema_revision": schema_revision,
        "created_at": datetime.now(UTC).isoformat(),
        "source_dialect": source_dialect,
        "tables": [t.name for t in TABLES],
    }


# -- reading ---------------------------------------------------------------------------------


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each line; any damage becomes one BackupError."""
    if not path.is_file():
        raise BackupError(f"{path}: no such file")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            for number, text in enumerate(handle, 1):
                try:
                    item = json.loads(text)
                except ValueError:
                    raise BackupError(f"{path}: line {number} is not JSON (damaged?)") from None
                yield number, item
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise BackupError(f"{path} is truncated or corrupt ({exc})") from exc


def _check_header(path: Path, item: Any) -> dict[str, Any]:
    if not isinstance(item, dict) or item.get("format") != FORMAT:
        raise BackupError(f"{path} is not a provisiond backup")
    if item.get("version") != VERSION:
        raise BackupError(f"{path} is format {item.get('version')!r}; this release reads {VERSION}")
    for key in ("schema_revision", "created_at", "source_dialect"):
        if not isinstance(item.get(key), str):
            raise BackupError(f"{path}: the header lacks {key}")
    return item


def read_header(path: Path) -> dict[str, Any]:
    """The header of a backup file (its first line), checked."""
    for _number, item in _lines(path):
        return _check_header(path, item)
    raise BackupError(f"{path} is empty")


@dataclass
class Reader:
    """Walks a backup file once, checking it as it goes; yields decoded rows per table."""

    path: Path
    header: dict[str, Any] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    def batches(self) -> Iterator[tuple[Table, Rows]]:
        """(table, up to BATCH rows keyed by column name), tables in foreign-key order."""
        lines = _lines(self.path)
        self.header = _check_header(self.path, self._next(lines)[1])
        if self.header.get("tables") != [t.name for t in TABLES]:
            raise self._fail(1, "the table list does not match this release's schema")
        self.rows = {}
        for table in TABLES:
            yield from self._section(table, lines)
        number, item = self._next(lines)
        if item != {"end": True, "rows": sum(self.rows.values())}:
            raise self._fail(number, "expected the end marker with the total row count")
        extra = next(lines, None)  # reading to the end also makes gzip check CRC and length
        if extra is not None:
            raise self._fail(extra[0], "data after the end marker")

    def summary(self) -> BackupSummary:
        """The header and counts (after `batches` ran to its end)."""
        head = self.header
        return BackupSummary(
            self.path,
            head["schema_revision"],
            head["created_at"],
            head["source_dialect"],
            self.rows,
        )

    def _section(
        self, table: Table, lines: Iterator[tuple[int, Any]]
    ) -> Iterator[tuple[Table, Rows]]:
        number, item = self._next(lines)
        names = item.get("columns") if isinstance(item, dict) else None
        if not isinstance(names, list) or item.get("table") != table.name:
            raise self._fail(number, f"expected the start of table {table.name}")
        if sorted(map(str, names)) != sorted(c.name for c in table.columns):
            raise self._fail(number, f"the columns of {table.name} do not match the schema")
        columns = [table.columns[name] for name in names]
        batch: Rows = []
        count = 0
        while True:
            number, item = self._next(lines)
            if not isinstance(item, list):
                break
            batch.append(self._row(number, table, columns, item))
            count += 1
            if len(batch) == BATCH:
                yield table, batch
                batch = []
        if item != {"end_table": table.name, "rows": count}:
            raise self._fail(number, f"table {table.name} ends badly (after {count} rows)")
        if batch:
            yield table, batch
        self.rows[table.name] = count

    def _row(
        self, number: int, table: Table, columns: list[Column[Any]], item: list[Any]
    ) -> dict[str, Any]:
        if len(item) != len(columns):
            raise self._fail(number, f"a row of {table.name} has {len(item)} values")
        row: dict[str, Any] = {}
        for column, value in zip(columns, item, strict=True):
            try:
                row[column.name] = decode(column, value)
            except (TypeError, ValueError) as exc:
                raise self._fail(number, f"{table.name}.{column.name}: {exc}") from None
        return row

    def _next(self, lines: Iterator[tuple[int, Any]]) -> tuple[int, Any]:
        found = next(lines, None)
        if found is None:
            raise BackupError(f"{self.path} is truncated (it ends before its end marker)")
        return found

    def _fail(self, number: int, problem: str) -> BackupError:
        return BackupError(f"{self.path}: line {number}: {problem}")


def verify(path: Path) -> BackupSummary:
    """Read the whole file and check it; raises BackupError naming the first problem."""
    reader = Reader(path)
    for _batch in reader.batches():
        pass
    return reader.summary()
