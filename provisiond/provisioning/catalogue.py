"""Load the model catalogue from ``phone_templates/<vendor>/models.toml`` (docs/templates.md).

Each vendor directory holds its models beside its templates: ``[series.<name>]`` tables give
what a product family shares (boot sequence, protocols, accounts, keys...), ``[[models]]``
entries name the models and override what differs. Loading is strict like vendor.toml's:
unknown keys, a model without a series, a duplicate id, a boot path no file pattern of the
vendor matches, a family file whose family is not the model's: each raises `CatalogueError`
naming the file and the field, so a broken catalogue fails at start-up and in the tests.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from provisiond.domain.catalogue import (
    AUTH_METHODS,
    PROTOCOLS,
    CatalogueModel,
    boot_paths,
    model_id,
)
from provisiond.domain.identify import FileKind, VendorSpec, match_path

__all__ = ["CatalogueError", "load_catalogue"]

_SHARED = frozenset(
    {
        "boot",
        "protocols",
        "auth",
        "accounts",
        "line_keys",
        "expansion_modules",
        "module_keys",
        "handsets",
        "user_agent",
        "dect",
        "ata",
    }
)
_SERIES_KEYS = _SHARED | {"title"}
_MODEL_KEYS = _SHARED | {"id", "name", "family", "series"}
_TOP_KEYS = frozenset({"series", "models"})
_PROBE_MAC = "0015650a0b0c"  # fills boot templates for the pattern checks
MAX_ACCOUNTS = 1000  # Gigaset N870 multicell: 250 handsets; well above any documented model


class CatalogueError(ValueError):
    """A models.toml is invalid; the message names the file and the field."""


def load_catalogue(root: Path, vendors: Sequence[VendorSpec]) -> tuple[CatalogueModel, ...]:
    """Every ``<root>/<vendor>/models.toml`` of `vendors`, in vendor then file order."""
    models: list[CatalogueModel] = []
    seen: dict[str, Path] = {}
    for vendor in vendors:
        path = root / vendor.id / "models.toml"
        if not path.exists():
            raise CatalogueError(f"{path}: missing (every vendor lists its models)")
        for model in _load_file(path, vendor):
            if model.id in seen:
                raise CatalogueError(f"{path}: model {model.id!r} also in {seen[model.id]}")
            seen[model.id] = path
            models.append(model)
    return tuple(models)


def _load_file(path: Path, vendor: VendorSpec) -> list[CatalogueModel]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read: {exc}") from exc
    check = _Check(path)
    check.keys(data, _TOP_KEYS, "")
    series = data.get("series")
    if not isinstance(series, dict) or not series:
        check.fail("series", "must be a table of [series.<name>] tables")
    for name, table in series.items():
        if not isinstance(table, dict):
            check.fail(f"series.{name}", "must be a table")
        check.keys(table, _SERIES_KEYS, f"series.{name}")
    entries = data.get("models")
    if not isinstance(entries, list) or not entries:
        check.fail("models", "must be a non-empty array of tables ([[models]])")
    return [_model(check, vendor, series, entry, f"models[{i}]") for i, entry in enumerate(entries)]


def _model(
    check: _Check,
    vendor: VendorSpec,
    series: Mapping[str, Mapping[str, Any]],
    entry: object,
    where: str,
) -> CatalogueModel:
    if not isinstance(entry, dict):
        check.fail(where, "must be a table")
    check.keys(entry, _MODEL_KEYS, where)
    name = check.text(entry, "name", where)
    series_name = check.text(entry, "series", where)
    if series_name not in series:
        check.fail(f"{where}.series", f"{series_name!r} is not a [series.{series_name}] table")
    merged = {**series[series_name], **entry}
    where = f"{where} ({name})"
    model = CatalogueModel(
        id=str(entry.get("id") or model_id(vendor.id, name)),
        vendor=vendor.id,
        name=name,
        family=str(entry.get("family") or name),
        series=series_name,
        boot=check.strings(merged, "boot", where),
        protocols=check.choices(merged, "protocols", PROTOCOLS, where),
        auth=check.choices(merged, "auth", AUTH_METHODS, where, empty=True),
        accounts=check.count(merged, "accounts", where, low=1, high=MAX_ACCOUNTS),
        line_keys=check.count(merged, "line_keys", where),
        expansion_modules=check.count(merged, "expansion_modules", where),
        module_keys=check.count(merged, "module_keys", where),
        handsets=check.count(merged, "handsets", where),
        user_agent=str(merged.get("user_agent", "")),
        dect=check.flag(merged, "dect", where),
        ata=check.flag(merged, "ata", where),
    )
    if len(model.id) > 64 or len(model.name) > 64 or len(model.family) > 32:
        check.fail(where, "id/name longer than 64 or family longer than 32 characters")
    if model.dect != (model.handsets > 0):
        check.fail(f"{where}.handsets", "a DECT base (dect = true) and only it has handsets")
    _check_boot(check, vendor, model, where)
    return model


def _check_boot(check: _Check, vendor: VendorSpec, model: CatalogueModel, where: str) -> None:
    """Every boot path is a file of this vendor; a family file names this model's family;
    the sequence reaches a per-device file."""
    try:
        paths = boot_paths(model, _PROBE_MAC)
    except (KeyError, ValueError, IndexError) as exc:
        check.fail(f"{where}.boot", f"bad placeholder: {exc}")
    kinds = []
    for path in paths:
        matches = match_path((vendor,), path)
        if not matches:
            check.fail(f"{where}.boot", f"{path!r} matches no [[files]] pattern of {vendor.id}")
        match = matches[0]
        if match.family is not None and match.family.lower() != model.family.lower():
            check.fail(f"{where}.boot", f"{path!r} names family {match.family!r}, not the model's")
        kinds.append(match.spec.kind)
    if FileKind.DEVICE not in kinds:
        check.fail(f"{where}.boot", "no per-device file (kind device) in the boot sequence")


class _Check:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> NoReturn:
        raise CatalogueError(f"{self.path}: {field}: {problem}")

    def keys(self, table: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(where or "(top)", f"unknown key(s) {', '.join(unknown)}")

    def text(self, table: Mapping[str, object], key: str, where: str) -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def strings(self, table: Mapping[str, object], key: str, where: str) -> tuple[str, ...]:
        value = table.get(key)
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.fail(f"{where}.{key}", "must be a non-empty list of strings")
        return tuple(value)

    def choices(
        self,
        table: Mapping[str, object],
        key: str,
        allowed: Sequence[str],
        where: str,
        *,
        empty: bool = False,
    ) -> tuple[str, ...]:
        value = table.get(key, [] if empty else None)
        if not isinstance(value, list) or (not value and not empty):
            self.fail(f"{where}.{key}", f"must be a list of {', '.join(allowed)}")
        wrong = [v for v in value if v not in allowed]
        if wrong or len(set(value)) != len(value):
            self.fail(f"{where}.{key}", f"{wrong or value} not distinct values of {allowed}")
        return tuple(value)

    def count(
        self, table: Mapping[str, object], key: str, where: str, *, low: int = 0, high: int = 1000
    ) -> int:
        value = table.get(key, 0 if low == 0 else None)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(f"{where}.{key}", f"must be an integer {low}..{high}")
        return value

    def flag(self, table: Mapping[str, object], key: str, where: str) -> bool:
        value = table.get(key, False)
        if not isinstance(value, bool):
            self.fail(f"{where}.{key}", "must be true or false")
        return value
