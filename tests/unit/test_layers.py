"""Imports point one way (docs/DESIGN.md section 2): frontends -> provisioning -> services ->
domain/storage, with app.py, server.py and the CLI above them all as the composition root.

Read from the source with `ast`, so a new module is checked the day it is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "provisiond"

# layer -> the layers (besides itself) its modules may import
ALLOWED: dict[str, frozenset[str]] = {
    "domain": frozenset(),
    "storage": frozenset({"domain"}),
    "settings": frozenset({"domain"}),
    "sip": frozenset({"domain"}),
    "services": frozenset({"domain", "storage", "settings", "sip"}),
    "provisioning": frozenset({"domain", "storage", "settings", "sip", "services"}),
    "frontends": frozenset({"domain", "storage", "settings", "sip", "services", "provisioning"}),
}


def _layer(module: str) -> str:
    """provisiond.services.users -> "services"; top-level modules are their own layer."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "provisiond" or name.startswith("provisiond.")}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        out.append((".".join(relative.parts).removesuffix(".__init__"), path))
    return out


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_inward(layer: str) -> None:
    wrong = []
    for module, path in _modules():
        if _layer(module) != layer:
            continue
        for imported in _imports(path) - {"provisiond"}:  # the package itself: its version
            target = _layer(imported)
            if target != layer and target not in ALLOWED[layer]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "\n".join(wrong)


def test_every_layer_is_known() -> None:
    """A new package under provisiond/ must be placed in ALLOWED (or be a top-level root)."""
    roots = {
        "app",
        "server",
        "cli",
        "cli_ops",
        "cli_fleet",
        "cli_table",
        "cli_accounts",
        "cli_keys",
        "dhcp",
        "dhcp_families",
        "sdnotify",
    }
    roots |= {"__main__", "__init__", "provisiond"}
    unknown = {_layer(m) for m, _ in _modules()} - set(ALLOWED) - roots
    assert not unknown, f"place these in ALLOWED: {sorted(unknown)}"
