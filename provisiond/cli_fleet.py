"""The fleet subcommands of `provisiond`: firmware store, bulk import, export.

provisiond.cli registers these parsers and actions; like every admin subcommand they call the
services (import/export) or the firmware store, print JSON and report refusals as DomainErrors.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from provisiond.domain.errors import Conflict, InvalidInput
from provisiond.domain.identify import FileKind, match_path
from provisiond.provisioning.firmware import FirmwareStore
from provisiond.provisioning.vendors import load_vendors
from provisiond.services import Services
from provisiond.services.asterisk import write_config
from provisiond.services.fleet import ImportRefused

FORMATS = ("csv", "json", "asterisk")


def add_parsers(sub: Any) -> None:
    """`firmware add|list|target|verify`, `import FILE`, `export`."""
    fw = sub.add_parser("firmware", help="firmware images and target versions").add_subparsers(
        dest="sub", required=True
    )
    p = fw.add_parser("add", help="copy an image into the store and record its checksum")
    p.add_argument("file", type=Path)
    p.add_argument("--model", required=True, help="catalogue id, see `provisiond models`")
    p.add_argument("--version", required=True, help="as the phone reports it (User-Agent)")
    p.add_argument("--sha256", help="the vendor's published checksum, checked before recording")
    fw.add_parser("list", help="images, targets and unlisted files (nothing is hashed)")
    p = fw.add_parser("target", help="the version phones of MODEL should run")
    p.add_argument("model")
    p.add_argument("version", nargs="?")
    p.add_argument("--clear", action="store_true", help="stop offering firmware to MODEL")
    fw.add_parser("verify", help="hash every image; exit 1 when one is missing or corrupt")
    p = sub.add_parser("import", help="create devices (and users) from CSV or JSON, all or nothing")
    p.add_argument("file", help="a .csv or .json file, or - for standard input")
    p.add_argument("--format", choices=("csv", "json"), help="default: from the file name")
    p = sub.add_parser("export", help="devices with their users (csv, json) or Asterisk files")
    p.add_argument("--format", choices=FORMATS, default="csv")
    p.add_argument(
        "--output", type=Path, help="file (csv, json) or directory (asterisk; required there)"
    )


def _read(name: str) -> str:
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
    text = _read(a.file)
    fmt = a.format or ("json" if a.file.lower().endswith(".json") else "csv")
    try:
        if fmt == "csv":
            return await s.fleet.import_csv(text, actor)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"malformed JSON: {exc.msg} at line {exc.lineno}") from exc
        except RecursionError as exc:  # absurdly deep nesting
            raise InvalidInput("malformed JSON: nested too deeply") from exc
        return await s.fleet.import_json(data, actor)
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
