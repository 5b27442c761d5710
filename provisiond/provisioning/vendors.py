"""Load and validate the vendor descriptions in ``phone_templates/<vendor>/vendor.toml``.

The file format is specified in docs/templates.md. Loading is strict: any mistake (unknown
key, bad regex, missing template, a per-MAC kind without a ``mac`` group, ...) raises
`VendorError` naming the file and the field, so a broken description fails at start-up and in
the tests instead of at a phone's boot.
"""

from __future__ import annotations

import re
import tomllib
import zoneinfo
from collections.abc import Mapping
from pathlib import Path
from typing import NoReturn

from provisiond.domain.identify import FileKind, FileSpec, VendorSpec
from provisiond.domain.keys import KEY_TYPES

__all__ = ["VendorError", "default_templates_root", "load_vendor", "load_vendors"]

DEFAULT_MAX_UPLOAD = 256 * 1024
_VENDOR_KEYS = frozenset(
    {
        "id",
        "title",
        "dhcp_options",
        "resync_event",
        "reboot_event",
        "family_events",
        "user_agents",
        "files",
        "key_types",
        "phonebook_format",
    }
)
_EVENT_KEYS = frozenset({"resync_event", "reboot_event"})
_ZONE_KEYS = frozenset({"source", "zones"})
_FILE_KEYS = frozenset(
    {"pattern", "kind", "template", "content_type", "line_ending", "max_upload", "path"}
)
_UA_GROUPS = frozenset({"model", "firmware", "mac"})
_LINE_ENDINGS = frozenset({"lf", "crlf"})
_TEMPLATED = frozenset({FileKind.DEVICE, FileKind.DEVICE_BOOT, FileKind.COMMON, FileKind.PHONEBOOK})
_NEEDS_MAC = frozenset({FileKind.DEVICE, FileKind.DEVICE_BOOT, FileKind.UPLOAD, FileKind.PHONEBOOK})
_PROBE_MAC = "0015650a0b0c"
_ID_RE = re.compile(r"[a-z][a-z0-9_]*")


class VendorError(ValueError):
    """A vendor description is invalid; the message names the file and the field."""


def default_templates_root(explicit: Path | str | None = None) -> Path:
    """Return the phone templates directory.

    An `explicit` path (from settings or the command line) wins; otherwise the repository's
    ``phone_templates/`` next to the package (the server runs from a checkout).
    """
    root = Path(explicit) if explicit is not None else _checkout_root() / "phone_templates"
    if not root.is_dir():
        raise FileNotFoundError(f"phone templates directory not found: {root}")
    return root


def _checkout_root() -> Path:
    """The directory holding the ``provisiond`` package (the repository checkout)."""
    return Path(__file__).resolve().parents[2]


def load_vendors(root: Path) -> tuple[VendorSpec, ...]:
    """Load every ``<root>/*/vendor.toml``, sorted by vendor id for deterministic matching."""
    paths = sorted(root.glob("*/vendor.toml"))
    if not paths:
        raise VendorError(f"{root}: no */vendor.toml found")
    return tuple(sorted((load_vendor(path) for path in paths), key=lambda v: v.id))


def load_vendor(path: Path) -> VendorSpec:
    """Load and validate one ``vendor.toml``."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VendorError(f"{path}: cannot read: {exc}") from exc
    check = _Checker(path)
    check.keys(data, _VENDOR_KEYS, "")
    vendor_id = check.string(data, "id")
    if vendor_id != path.parent.name or not _ID_RE.fullmatch(vendor_id):
        check.fail("id", f"{vendor_id!r} must equal the directory name {path.parent.name!r}")
    events = _events(check, data)
    raw_files = data.get("files")
    if not isinstance(raw_files, list) or not raw_files:
        check.fail("files", "must be a non-empty array of tables ([[files]])")
    return VendorSpec(
        id=vendor_id,
        title=check.string(data, "title"),
        dhcp_options=_dhcp_options(check, data.get("dhcp_options", [])),
        resync_event=events[0],
        reboot_event=events[1],
        user_agents=_user_agents(check, data.get("user_agents", [])),
        files=tuple(_file_spec(check, entry, f"files[{i}]") for i, entry in enumerate(raw_files)),
        timezones=_timezones(path.parent / "timezones.toml"),
        family_events=_family_events(check, data.get("family_events", {})),
        key_types=_key_types(check, data.get("key_types", [])),
        phonebook_format=_phonebook_format(check, data, raw_files),
    )


def _key_types(check: _Checker, value: object) -> tuple[str, ...]:
    """The key types (domain/keys.py) the vendor's templates write; [] when none."""
    if not isinstance(value, list) or not all(v in KEY_TYPES for v in value):
        check.fail("key_types", f"must be a list of {', '.join(KEY_TYPES)}")
    if len(set(value)) != len(value):
        check.fail("key_types", "lists a type twice")
    return tuple(str(v) for v in value)


def _phonebook_format(check: _Checker, data: Mapping[str, object], files: list[object]) -> str:
    """What the vendor's phone book file is (docs/phones.md): set exactly when a file of kind
    phonebook is."""
    value = data.get("phonebook_format", "")
    if not isinstance(value, str):
        check.fail("phonebook_format", "must be a string")
    has_file = any(isinstance(f, dict) and f.get("kind") == "phonebook" for f in files)
    if has_file != bool(value):
        check.fail("phonebook_format", "is set exactly when a [[files]] of kind phonebook is")
    return value


def _events(check: _Checker, data: Mapping[str, object]) -> tuple[str, str]:
    """(resync, reboot): both strings, "" where the vendor has no such NOTIFY (a phone whose
    only NOTIFY reboots it has no resync event), never both empty."""
    pair = (data.get("resync_event"), data.get("reboot_event"))
    for key, value in zip(("resync_event", "reboot_event"), pair, strict=True):
        if not isinstance(value, str):
            check.fail(key, 'must be a string ("" when the vendor has no such NOTIFY)')
    if pair == ("", ""):
        check.fail("resync_event", "resync_event and reboot_event cannot both be empty")
    return str(pair[0]), str(pair[1])


def _family_events(check: _Checker, value: object) -> dict[str, tuple[str, str]]:
    """``[family_events.<family>]`` tables: both events, "" for an action the family lacks."""
    if not isinstance(value, dict):
        check.fail("family_events", "must be a table of [family_events.<family>] tables")
    events = {}
    for family, table in value.items():
        where = f"family_events.{family}"
        if not isinstance(table, dict):
            check.fail(where, "must be a table")
        check.keys(table, _EVENT_KEYS, where)
        pair = (table.get("resync_event"), table.get("reboot_event"))
        if not all(isinstance(event, str) for event in pair) or pair == ("", ""):
            check.fail(where, "needs resync_event and reboot_event strings, not both empty")
        events[family] = (str(pair[0]), str(pair[1]))
    return events


def _timezones(path: Path) -> dict[str, str]:
    """The optional IANA zone -> vendor zone name table; every IANA name must exist."""
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise VendorError(f"{path}: cannot read: {exc}") from exc
    check = _Checker(path)
    check.keys(data, _ZONE_KEYS, "")
    check.string(data, "source")  # the vendor document the names come from
    zones = data.get("zones")
    if not isinstance(zones, dict) or not zones:
        check.fail("zones", "must be a non-empty table of IANA name = vendor name")
    for name, value in zones.items():
        if not isinstance(value, str) or not value:
            check.fail(f"zones.{name}", "must be a non-empty string")
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            check.fail(f"zones.{name}", "is not an IANA time zone")
    return dict(zones)


class _Checker:
    """Field accessors that raise `VendorError` with the file and field in the message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, field: str, problem: str) -> NoReturn:
        """Raise a `VendorError` for `field`."""
        raise VendorError(f"{self.path}: {field}: {problem}")

    def keys(self, table: Mapping[str, object], allowed: frozenset[str], where: str) -> None:
        """Refuse unknown keys: a typo would otherwise be silently ignored."""
        unknown = sorted(set(table) - allowed)
        if unknown:
            self.fail(where or "top level", f"unknown key(s) {', '.join(unknown)}")

    def string(self, table: Mapping[str, object], key: str, where: str = "") -> str:
        """A required non-empty string."""
        value = table.get(key)
        if not isinstance(value, str) or not value:
            self.fail(f"{where}{key}", "must be a non-empty string")
        return value

    def regex(self, source: object, field: str) -> re.Pattern[str]:
        """Compile a pattern case-insensitively (MACs and names come in any case)."""
        if not isinstance(source, str) or not source:
            self.fail(field, "must be a non-empty regular expression string")
        try:
            return re.compile(source, re.IGNORECASE)
        except re.error as exc:
            self.fail(field, f"invalid regular expression: {exc}")


def _dhcp_options(check: _Checker, value: object) -> tuple[int, ...]:
    """DHCP option numbers, each 1..254."""
    if not isinstance(value, list) or not all(
        isinstance(o, int) and not isinstance(o, bool) and 1 <= o <= 254 for o in value
    ):
        check.fail("dhcp_options", "must be an array of integers 1..254")
    return tuple(value)


def _user_agents(check: _Checker, value: object) -> tuple[re.Pattern[str], ...]:
    """User-Agent patterns; only the named groups model, firmware and mac are meaningful."""
    if not isinstance(value, list):
        check.fail("user_agents", "must be an array of regular expressions")
    patterns = []
    for i, source in enumerate(value):
        pattern = check.regex(source, f"user_agents[{i}]")
        unknown = sorted(set(pattern.groupindex) - _UA_GROUPS)
        if unknown:
            check.fail(f"user_agents[{i}]", f"unknown named group(s) {', '.join(unknown)}")
        patterns.append(pattern)
    return tuple(patterns)


def _file_spec(check: _Checker, entry: object, where: str) -> FileSpec:
    """One ``[[files]]`` table, validated against its kind."""
    if not isinstance(entry, dict):
        check.fail(where, "must be a table")
    check.keys(entry, _FILE_KEYS, where)
    pattern = check.regex(entry.get("pattern"), f"{where}.pattern")
    kind_name = check.string(entry, "kind", f"{where}.")
    try:
        kind = FileKind(kind_name)
    except ValueError:
        check.fail(f"{where}.kind", f"{kind_name!r} is not one of {', '.join(FileKind)}")
    _check_groups(check, pattern, kind, f"{where}.pattern")
    return FileSpec(
        pattern=pattern,
        kind=kind,
        template=_template(check, entry, kind, where),
        content_type=_content_type(check, entry, kind, where),
        line_ending=_line_ending(check, entry, where),
        max_upload=_max_upload(check, entry, kind, where),
        path=_phonebook_path(check, entry, kind, pattern, where),
    )


def _phonebook_path(
    check: _Checker,
    entry: Mapping[str, object],
    kind: FileKind,
    pattern: re.Pattern[str],
    where: str,
) -> str | None:
    """Kind phonebook names the file it is fetched under (``path``, with ``{mac}`` or
    ``{MAC}``), which the device files carry as its URL: it must be a name the pattern
    matches, for this very MAC."""
    if kind is not FileKind.PHONEBOOK:
        if "path" in entry:
            check.fail(f"{where}.path", "only kind phonebook has a path")
        return None
    path = check.string(entry, "path", f"{where}.")
    try:
        probe = path.format(mac=_PROBE_MAC, MAC=_PROBE_MAC.upper())
    except (KeyError, ValueError, IndexError) as exc:
        check.fail(f"{where}.path", f"bad placeholder: {exc}")
    found = pattern.fullmatch(probe)
    if found is None or found.group("mac").lower().replace(":", "") != _PROBE_MAC:
        check.fail(f"{where}.path", f"{path!r} is not a name the pattern matches for its MAC")
    return path


def _check_groups(check: _Checker, pattern: re.Pattern[str], kind: FileKind, field: str) -> None:
    """The named groups a kind needs (mac, file) or must not have (family off common)."""
    groups = pattern.groupindex
    if kind in _NEEDS_MAC and "mac" not in groups:
        check.fail(field, f"kind {kind} needs a (?P<mac>...) group")
    if kind is FileKind.FIRMWARE and "file" not in groups:
        check.fail(field, "kind firmware needs a (?P<file>...) group")
    if "family" in groups and kind is not FileKind.COMMON:
        check.fail(field, "a (?P<family>...) group is only meaningful in kind common")


def _template(
    check: _Checker, entry: Mapping[str, object], kind: FileKind, where: str
) -> str | None:
    """The template path: required (and must exist) for rendered kinds, refused otherwise."""
    if kind not in _TEMPLATED:
        if "template" in entry:
            check.fail(f"{where}.template", f"kind {kind} renders nothing")
        return None
    name = check.string(entry, "template", f"{where}.")
    vendor_dir = check.path.parent
    target = (vendor_dir / name).resolve()
    if not target.is_relative_to(vendor_dir.resolve()) or not name.endswith(".j2"):
        check.fail(f"{where}.template", f"{name!r} must be a *.j2 file inside {vendor_dir}")
    if not target.is_file():
        check.fail(f"{where}.template", f"{target} does not exist")
    return name


def _content_type(check: _Checker, entry: Mapping[str, object], kind: FileKind, where: str) -> str:
    """Explicit content type, else text for rendered files and octets for the rest."""
    if "content_type" in entry:
        return check.string(entry, "content_type", f"{where}.")
    if kind in _TEMPLATED:
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _line_ending(check: _Checker, entry: Mapping[str, object], where: str) -> str:
    """``lf`` (default) or ``crlf``."""
    value = entry.get("line_ending", "lf")
    if value not in _LINE_ENDINGS:
        check.fail(f"{where}.line_ending", f"{value!r} is not one of lf, crlf")
    return value


def _max_upload(
    check: _Checker, entry: Mapping[str, object], kind: FileKind, where: str
) -> int | None:
    """Upload byte cap: only for kind upload, defaulting to `DEFAULT_MAX_UPLOAD`."""
    value = entry.get("max_upload")
    if kind is not FileKind.UPLOAD:
        if value is not None:
            check.fail(f"{where}.max_upload", f"only kind upload takes max_upload, not {kind}")
        return None
    if value is None:
        return DEFAULT_MAX_UPLOAD
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        check.fail(f"{where}.max_upload", "must be a positive integer (bytes)")
    return value
