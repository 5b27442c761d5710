"""Bulk-import input: CSV text or JSON rows in, validated `ImportRow`s and per-line errors out.

Columns (CSV header names, JSON keys): ``mac, model, extension, username, display_name,
primary`` (required in a CSV header; ``display name`` is accepted for ``display_name``), and
the optional ``main_extension, active, label, slot, keys, device_keys``. Every value goes
through the same checks as the single-object API (provisiond.domain.rules and device_rules,
parse_mac, provisiond.domain.keys.check_keys); nothing here touches the database.

``slot`` (default 1) says which account of the device at ``mac`` a line describes
(DESIGN.md, "Accounts"): slot 1 is the device itself, slots 2 and up its further accounts
(a DECT base's handsets, an ATA's ports). A MAC with the same slot twice is refused here; the
checks that need the device (it exists, its model, the model's count of accounts, slots taken
in the database) are provisiond.services.fleet_facts'.

``keys`` (the user's programmable keys, on a line with a username) and ``device_keys`` (the
device's own keys, on its slot-1 line) hold a key list as PUT /api/v1/users/{id}/keys takes it:
in JSON rows the list itself (or null), in CSV the list's JSON text
(``[{"type":"blf","value":"202","label":"Anna"}]``, quoted as CSV quotes any cell with commas).
An empty cell, a missing column, an absent key and null all mean "no list on this line"
(provisiond.services.fleet_keys says what the import then does). Here each list is checked on
its own, with every extension taken as known and every account slot as possible; the checks
that need the file and the database (a BLF's extension, a line key's slot, the model's key
positions, the vendor's key types, lines of one user that disagree) are fleet_keys'. A bad key
is reported on the column's key: ``keys[2].position``.

Every problem is collected with its line number instead of stopping at the first, so an admin
fixes a file in one pass: `LineError(line, field, detail)`. Line numbers are the file's own
(the header is line 1); for JSON rows, ``line`` is the row's position counting from 1.

Spreadsheet formulas (CSV injection): a cell the export writes that a spreadsheet would run as
a formula (it starts, after any spaces and quotes, with ``= + - @``, a tab or a carriage
return: OWASP's list) gets a single quote in front (`csv_cell`), so ``=HYPERLINK(...)`` is
shown as text. The CSV import removes exactly that quote again (`csv_value`), so an export
re-imports to the same values; a cell of a hand-written file that starts with ``'=`` is
therefore read as ``=``, as a spreadsheet shows it. JSON rows are never changed either way.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import netaddr

from provisiond.domain import device_rules, rules
from provisiond.domain.errors import DomainError, InvalidInput
from provisiond.domain.keys import check_keys
from provisiond.domain.mac import mac_colon, mac_compact, parse_mac

REQUIRED = ("mac", "model", "extension", "username", "display_name", "primary")
OPTIONAL = ("main_extension", "active", "label", "slot", "keys", "device_keys")
KEY_COLUMNS = ("keys", "device_keys")  # key lists: JSON text in CSV cells
COLUMNS = REQUIRED + OPTIONAL
_ALIASES = {"display name": "display_name", "main extension": "main_extension"}
MAX_ROWS = 100_000
MAX_SLOT = 1000  # the highest slot a line may name; the model's `accounts` is the real limit
# A cell a spreadsheet would evaluate: '=', '+', '-', '@', tab or CR first, after any run of
# whitespace and single quotes (so that quoting is reversible: see csv_cell and csv_value).
_FORMULA = re.compile(r"[\s']*[=+\-@\t\r]")
_TRUE = frozenset({"1", "true", "yes", "y", "x"})
_FALSE = frozenset({"0", "false", "no", "n", ""})

RawRow = tuple[int, Mapping[str, Any]]
# Checks that need the database's facts, given the fields of one line that parsed.
FactCheck = Callable[[int, Mapping[str, Any]], list["LineError"]]


@dataclass(frozen=True, slots=True)
class LineError:
    """One problem of an import file: where, which column, what."""

    line: int
    field: str
    detail: str

    def as_json(self) -> dict[str, Any]:
        """The API's and the CLI's form."""
        return {"line": self.line, "field": self.field, "detail": self.detail}


def _column_order(error: LineError) -> tuple[int, int]:
    """Errors by line, then in column order (``keys[2].position`` is a ``keys`` problem)."""
    column = re.split(r"[\[.]", error.field, maxsplit=1)[0]
    return error.line, COLUMNS.index(column) if column in COLUMNS else len(COLUMNS)


class ImportRefused(InvalidInput):
    """An import with at least one bad line: nothing was imported; `lines` says why."""

    code = "import_refused"

    def __init__(self, lines: Iterable[LineError]) -> None:
        self.lines = sorted(lines, key=_column_order)
        count = len({e.line for e in self.lines})
        super().__init__(
            f"{len(self.lines)} problem(s) on {count} line(s); nothing was imported",
            field="lines",
        )

    def as_json(self) -> dict[str, Any]:
        """The 422 body: the error envelope plus every line's problems."""
        return {
            "error": self.code,
            "detail": self.detail,
            "lines": [e.as_json() for e in self.lines],
        }


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One valid line: a device to create (slot 1) or a further account of one (slot 2 and
    up), optionally for a user."""

    line: int
    mac: netaddr.EUI
    model: str
    extension: str
    username: str | None
    display_name: str | None
    primary: bool
    main_extension: str | None
    active: bool
    label: str | None
    slot: int = 1
    # Key lists as given (checked alone; None: no list on the line); fleet_keys checks them
    # against the file and the database. Not compared: lists are not hashable.
    keys: object = dataclasses.field(default=None, compare=False)
    device_keys: object = dataclasses.field(default=None, compare=False)

    @property
    def mac_key(self) -> str:
        """12 lowercase hex digits (the storage form)."""
        return mac_compact(self.mac)

    @property
    def is_account(self) -> bool:
        """True for a further account (slot 2 and up), False for a device (slot 1)."""
        return self.slot > 1


def csv_rows(text: str) -> list[RawRow]:
    """Parse CSV text (comma, semicolon or tab separated; an Excel BOM is fine) into rows."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportRefused([LineError(1, "header", "the file is empty")])
        names = _header(header)
        rows: list[RawRow] = []
        start = reader.line_num + 1
        for record in reader:
            if any(cell.strip() for cell in record):
                rows.append((start, _record(names, record, start)))
            start = reader.line_num + 1
            _check_count(len(rows))
    except csv.Error as exc:
        raise ImportRefused(
            [LineError(reader.line_num, "header", f"malformed CSV: {exc}")]
        ) from exc
    return rows


def csv_cell(value: str) -> str:
    """A text cell as the CSV export writes it: a would-be formula gets a leading quote."""
    return "'" + value if _FORMULA.match(value) else value


def csv_value(cell: str) -> str:
    """The inverse of `csv_cell`, applied to every cell the CSV import reads."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell, 1) else cell


def _header(header: list[str]) -> list[str]:
    names = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in header]
    problems = [
        LineError(1, "header", f"unknown column {n!r}; columns are {', '.join(COLUMNS)}")
        for n in names
        if n not in COLUMNS
    ]
    problems += [
        LineError(1, "header", f"column {n!r} appears twice")
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    problems += [
        LineError(1, "header", f"missing column {n!r}") for n in REQUIRED if n not in names
    ]
    if problems:
        raise ImportRefused(problems)
    return names


def _record(names: list[str], record: list[str], line: int) -> dict[str, Any]:
    if len(record) != len(names):
        # Reported by parse_rows as a problem of this line, not of the whole file.
        return {"__cells__": f"{len(record)} values for {len(names)} columns"}
    cells: dict[str, Any] = dict(zip(names, map(csv_value, record), strict=True))
    for name in KEY_COLUMNS:
        if name in cells:
            cells[name] = _json_cell(name, cells[name])
    return cells


@dataclass(frozen=True, slots=True)
class _Unreadable:
    """A CSV key cell that is not JSON: reported by parse_row as a problem of its column."""

    detail: str


def _json_cell(name: str, cell: str) -> object:
    """A key column's cell: its JSON (a list, when right); None when empty."""
    text = cell.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "nested too deeply"
        return _Unreadable(
            f"{name} must be a JSON list of keys such as "
            f'[{{"type":"blf","value":"202","label":"Anna"}}] ({reason})'
        )


def _check_count(count: int) -> None:
    if count > MAX_ROWS:
        raise ImportRefused([LineError(0, "rows", f"more than {MAX_ROWS} rows; split the file")])


def json_rows(data: Any) -> list[RawRow]:
    """JSON rows: a list of objects, or ``{"rows": [...]}``; keys are the CSV column names."""
    if isinstance(data, dict) and set(data) == {"rows"}:
        data = data["rows"]
    if not isinstance(data, list):
        raise InvalidInput('expected a list of rows or {"rows": [...]}', field="body")
    _check_count(len(data))
    return [
        (n, item if isinstance(item, dict) else {"__row__": item}) for n, item in enumerate(data, 1)
    ]


# -- one row ----------------------------------------------------------------------------------


def _text(raw: Mapping[str, Any], name: str) -> str | None:
    """A string cell, stripped; None when absent or empty."""
    value = raw.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f"{name} must be a string", field=name)
    return value.strip() or None


def _flag(raw: Mapping[str, Any], name: str, default: bool) -> bool:
    value = raw.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    word = value.strip().lower() if isinstance(value, str) else None
    if word in _TRUE:
        return True
    if word in _FALSE:
        return default if word == "" else False
    raise InvalidInput(f"{name} must be 1/0, true/false or yes/no", field=name)


def _slot(raw: Mapping[str, Any]) -> int:
    """The account slot: a whole number from 1 to MAX_SLOT (JSON: a number or a string of
    digits); absent or empty is 1."""
    value = raw.get("slot")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 1
        if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_SLOT)):
            value = int(text)
    if value is None:
        return 1
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SLOT:
        return value
    raise InvalidInput(
        f"slot must be a whole number from 1 to {MAX_SLOT}, got {value!r}", field="slot"
    )


def _key_list(raw: Mapping[str, Any], name: str) -> object:
    """A key list checked alone (every extension known, every slot possible), as given; None
    when the line has none. The checks that need the file and the database: fleet_keys."""
    value = raw.get(name)
    if isinstance(value, _Unreadable):
        raise InvalidInput(value.detail, field=name)
    if value is None:
        return None
    check_keys(value, field=name, accounts=MAX_SLOT, is_extension=lambda _: True)
    return value


def _required(raw: Mapping[str, Any], name: str) -> str:
    value = _text(raw, name)
    if value is None:
        raise InvalidInput(f"{name} is required", field=name)
    return value


_CHECKS: dict[str, Callable[[Mapping[str, Any]], Any]] = {
    "mac": lambda r: parse_mac(_required(r, "mac")),
    "model": lambda r: _required(r, "model"),
    "extension": lambda r: rules.check_extension(_required(r, "extension"), "extension"),
    "username": lambda r: _optional(r, "username", rules.check_username),
    "display_name": lambda r: _optional(
        r, "display_name", lambda v: rules.check_text(v, "display_name", allow_empty=False)
    ),
    "primary": lambda r: _flag(r, "primary", False),
    "main_extension": lambda r: _optional(
        r, "main_extension", lambda v: rules.check_extension(v, "main_extension")
    ),
    "active": lambda r: _flag(r, "active", True),
    "label": lambda r: device_rules.check_label(_text(r, "label")),
    "slot": _slot,
    "keys": lambda r: _key_list(r, "keys"),
    "device_keys": lambda r: _key_list(r, "device_keys"),
}


def _optional(raw: Mapping[str, Any], name: str, check: Callable[[str], str]) -> str | None:
    value = _text(raw, name)
    return None if value is None else check(value)


def parse_row(
    line: int, raw: Mapping[str, Any], errors: list[LineError], facts: FactCheck | None = None
) -> ImportRow | None:
    """One row checked field by field; every bad field is reported, None when any was bad.

    `facts` also sees the fields that parsed on a line with bad ones, so a line reports all
    of its problems at once.
    """
    if "__cells__" in raw or "__row__" in raw:
        detail = raw.get("__cells__") or "each row must be an object"
        errors.append(LineError(line, "row", str(detail)))
        return None
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        errors.append(LineError(line, "row", f"unknown field(s): {', '.join(unknown)}"))
        return None
    values: dict[str, Any] = {}
    before = len(errors)
    for name, check in _CHECKS.items():
        try:
            values[name] = check(raw)
        except DomainError as exc:
            # A key list names the key at fault (keys[2].position); other columns themselves.
            where = exc.field if name in KEY_COLUMNS and exc.field else name
            errors.append(LineError(line, where, exc.detail))
    if facts is not None:
        errors.extend(facts(line, values))
    if len(errors) > before:
        return None
    row = ImportRow(line=line, **values)
    if row.username is None:
        for name in ("display_name", "main_extension", "primary"):
            if values[name]:
                errors.append(LineError(line, name, f"{name} needs a username on the same line"))
        if row.keys is not None:
            detail = "keys are a user's: they need a username on the same line (device_keys "
            detail += "are the device's own)"
            errors.append(LineError(line, "keys", detail))
    if row.device_keys is not None and row.is_account:
        detail = f"device_keys go on the device's own line (slot 1), not on account {row.slot}"
        errors.append(LineError(line, "device_keys", detail))
    return row if len(errors) == before else None


def parse_rows(
    raw: list[RawRow], errors: list[LineError], facts: FactCheck | None = None
) -> list[ImportRow]:
    """Every row checked alone (and against `facts`), then against the others."""
    rows = [r for line, item in raw if (r := parse_row(line, item, errors, facts)) is not None]
    return check_file(rows, errors)


def check_file(rows: list[ImportRow], errors: list[LineError]) -> list[ImportRow]:
    """Problems between lines: a device (a MAC in slot 1) or an account (a MAC and a slot)
    twice, an extension twice (devices and accounts share one set of extensions), a user
    described two ways."""
    bad: set[int] = set()
    slots: dict[tuple[str, int], int] = {}
    extensions: dict[str, int] = {}
    for row in rows:
        seen = slots.setdefault((row.mac_key, row.slot), row.line)
        if seen != row.line:
            shown = mac_colon(row.mac)
            if row.is_account:
                detail = f"account {row.slot} of {shown} is also on line {seen}"
                errors.append(LineError(row.line, "slot", detail))
            else:
                errors.append(LineError(row.line, "mac", f"{shown} is also on line {seen}"))
            bad.add(row.line)
        seen = extensions.setdefault(row.extension, row.line)
        if seen != row.line:
            detail = f"{row.extension} is also on line {seen}"
            errors.append(LineError(row.line, "extension", detail))
            bad.add(row.line)
    for name, group in group_by_user(rows).items():
        bad |= _check_user_lines(name, group, errors)
    return [row for row in rows if row.line not in bad]


def group_by_user(rows: Iterable[ImportRow]) -> dict[str, list[ImportRow]]:
    """Rows per username, in order of first appearance (unassigned rows are left out)."""
    groups: dict[str, list[ImportRow]] = {}
    for row in rows:
        if row.username is not None:
            groups.setdefault(row.username, []).append(row)
    return groups


def _check_user_lines(name: str, group: list[ImportRow], errors: list[LineError]) -> set[int]:
    bad: set[int] = set()
    for field in ("display_name", "main_extension"):
        first: ImportRow | None = None
        for row in group:
            value = getattr(row, field)
            if value is None:
                continue
            if first is None:
                first = row
            elif value != getattr(first, field):
                errors.append(
                    LineError(
                        row.line,
                        field,
                        f"user {name} has {field} {getattr(first, field)!r} on line {first.line}",
                    )
                )
                bad.add(row.line)
    primaries = [row for row in group if row.primary]
    for row in primaries[1:]:
        errors.append(
            LineError(row.line, "primary", f"user {name} already has line {primaries[0].line}")
        )
        bad.add(row.line)
    return bad
