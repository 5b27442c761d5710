"""docs/phones.md carries the catalogue table generated from models.toml, never a stale one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_catalogue_table_is_current() -> None:
    spec = importlib.util.spec_from_file_location("phones_table", DOCS / "phones_table.py")
    assert spec is not None
    assert spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    text = (DOCS / "phones.md").read_text(encoding="utf-8")
    assert generator.rewritten(text) == text, "run: .venv/bin/python docs/phones_table.py"
