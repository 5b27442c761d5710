"""The fleet subcommands of `provisiond`: firmware store, bulk import, export.

`TABLE` declares them for the command table that provisiond.cli builds its parser from; like
every admin subcommand they call the services (import/export) or the firmware store, print JSON
and report refusals as DomainErrors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from provisiond.cli_ops import actor
from provisiond.cli_table import Entry, Group, admin, arg
from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.domain.identify import FileKind, match_path
from provisiond.frontends.admin_http import load_json
from provisiond.provisioning.firmware import FirmwareStore
from provisiond.provisioning.vendors import load_vendors
from provisiond.services import Services
from provisiond.services.asterisk import write_config
from provisiond.services.fleet import ImportRefused

FORMATS = ("csv", "json", "asterisk")


def read_text(name: str) -> str:
    """The text of file `name` ("-": stdin), UTF-8 with or without a BOM."""
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InvalidInput(f"cannot read {name}: {exc.strerror}", field="file") from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name} is not UTF-8 text", field="file") from exc


async def run_import(s: Services, a: argparse.Namespace, actor: str) -> Any:
    """`import FILE`: every bad line goes to stderr, one per line, then exit 1."""
    text = read_text(a.file)
    fmt = a.format or ("json" if a.file.lower().endswith(".json") else "csv")
    try:
        if fmt == "csv":
            return await s.fleet.import_csv(text, actor)
        return await s.fleet.import_json(load_json(text, field="file"), actor)
    except ImportRefused as exc:
        for error in exc.lines:
            print(f"line {error.line}: {error.field}: {error.detail}", file=sys.stderr)
        raise


async def run_export(s: Services, a: argparse.Namespace, actor: str) -> Any:
    """`export`: CSV or JSON to stdout or --output; Asterisk files (0600) into --output."""
    if a.format == "asterisk":
        if a.output is None:
            raise InvalidInput(
                "the Asterisk export holds SIP passwords: name a directory with --output",
                field="output",
            )
        config = await s.fleet.asterisk(actor)
        written = write_config(config, a.output)
        return {"written": [str(p) for p in written], "endpoints": config.endpoints}
    if a.format == "csv":
        text = await s.fleet.export_csv()
    else:
        text = json.dumps(await s.fleet.export_rows(), indent=2, ensure_ascii=False) + "\n"
    if a.output is None:
        sys.stdout.write(text)
        return None
    a.output.write_text(text, encoding="utf-8")
    return {"written": [str(a.output)]}


async def firmware_add(s: Services, a: argparse.Namespace) -> Any:
    """Check the model and the file name before the store copies and records the image."""
    settings = s.ctx.settings
    if a.model not in {m["id"] for m in await s.catalogue.models()}:
        raise InvalidInput(f"unknown model {a.model!r}; see `provisiond models`", field="model")
    matches = match_path(load_vendors(settings.templates_dir), a.file.name)
    if not any(m.spec.kind is FileKind.FIRMWARE for m in matches):
        raise InvalidInput(
            f"no phone asks for firmware named {a.file.name!r}: use the vendor's file name "
            "(e.g. .rom for Yealink, .ld for Polycom)",
            field="file",
        )
    image = FirmwareStore(settings.firmware_dir).add(a.file, a.model, a.version, a.sha256)
    return {**image.as_json(), "path": str(settings.firmware_dir / image.file)}


async def firmware_list(s: Services, a: argparse.Namespace) -> Any:
    """The manifest as it is on disk, and the files it does not list."""
    store = FirmwareStore(s.ctx.settings.firmware_dir)
    return {
        "root": str(store.root),
        "images": [image.as_json() for image in store.images()],
        "targets": store.targets(),
        "unlisted": store.unlisted(),
    }


async def firmware_target(s: Services, a: argparse.Namespace) -> Any:
    """Set or clear a model's target version."""
    if a.clear == (a.version is not None):
        raise InvalidInput("give either a VERSION or --clear", field="version")
    image = FirmwareStore(s.ctx.settings.firmware_dir).set_target(a.model, a.version)
    return {"model": a.model, "target": None if image is None else image.as_json()}


async def firmware_verify(s: Services, a: argparse.Namespace) -> Any:
    """Hash every listed image (what `serve` does at start-up); problems make it exit 1."""
    store = FirmwareStore(s.ctx.settings.firmware_dir)
    problems = store.verify()
    report = {"images": len(store.listed), "problems": [p.as_json() for p in problems]}
    if problems:
        print(json.dumps(report, indent=2))
        raise Conflict(f"{len(problems)} firmware problem(s); those images are not served")
    return report


TABLE: tuple[Entry, ...] = (
    Group("firmware", "firmware images and target versions"),
    admin(
        "firmware add",
        "copy an image into the store and record its checksum",
        firmware_add,
        arg("file", type=Path),
        arg("--model", required=True, help="catalogue id, see `provisiond models`"),
        arg("--version", required=True, help="as the phone reports it (User-Agent)"),
        arg("--sha256", help="the vendor's published checksum, checked before recording"),
    ),
    admin("firmware list", "images, targets and unlisted files (nothing is hashed)", firmware_list),
    admin(
        "firmware target",
        "the version phones of MODEL should run",
        firmware_target,
        arg("model"),
        arg("version", nargs="?"),
        arg("--clear", action="store_true", help="stop offering firmware to MODEL"),
    ),
    admin(
        "firmware verify",
        "hash every image; exit 1 when one is missing or corrupt",
        firmware_verify,
    ),
    admin(
        "import",
        "create devices (and users) from CSV or JSON, all or nothing",
        lambda s, a: run_import(s, a, actor()),
        arg("file", help="a .csv or .json file, or - for standard input"),
        arg("--format", choices=("csv", "json"), help="default: from the file name"),
    ),
    admin(
        "export",
        "devices with their users (csv, json) or Asterisk files",
        lambda s, a: run_export(s, a, actor()),
        arg("--format", choices=FORMATS, default="csv"),
        arg("--output", type=Path, help="file (csv, json) or directory (asterisk; required there)"),
    ),
)
