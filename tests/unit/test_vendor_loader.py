"""The vendor description loader: what it accepts, the defaults it fills, what it refuses."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from provisiond.domain.identify import FileKind
from provisiond.provisioning.vendors import (
    DEFAULT_MAX_UPLOAD,
    VendorError,
    default_templates_root,
    load_vendor,
    load_vendors,
)

VALID = """
id = "{id}"
title = "Acme"
dhcp_options = [66]
resync_event = "check-sync"
reboot_event = "check-sync;reboot=true"
user_agents = ['^Acme (?P<model>\\w+) (?P<firmware>[\\d.]+) (?P<mac>[0-9a-f]{{12}})']

[[files]]
pattern = '(?P<mac>[0-9a-f]{{12}})\\.cfg'
kind = "device"
template = "mac.cfg.j2"

[[files]]
pattern = '(?P<mac>[0-9a-f]{{12}})-log\\.txt'
kind = "upload"

[[files]]
pattern = '(?P<file>[\\w.-]+\\.bin)'
kind = "firmware"
"""


def write_vendor(root: Path, vendor_id: str, text: str, templates: tuple[str, ...] = ()) -> Path:
    """Create root/<vendor_id>/vendor.toml (and empty templates); return the toml path."""
    directory = root / vendor_id
    directory.mkdir(parents=True)
    for name in ("mac.cfg.j2", *templates):
        (directory / name).write_text("x\n", encoding="utf-8")
    path = directory / "vendor.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_vendor_and_defaults(tmp_path: Path) -> None:
    vendor = load_vendor(write_vendor(tmp_path, "acme", VALID.format(id="acme")))
    assert (vendor.id, vendor.title, vendor.dhcp_options) == ("acme", "Acme", (66,))
    device, upload, firmware = vendor.files
    assert device.kind is FileKind.DEVICE
    assert device.template == "mac.cfg.j2"
    assert device.content_type == "text/plain; charset=utf-8"
    assert (device.line_ending, device.max_upload) == ("lf", None)
    assert (upload.kind, upload.template, upload.max_upload) == (
        FileKind.UPLOAD,
        None,
        DEFAULT_MAX_UPLOAD,
    )
    assert firmware.content_type == "application/octet-stream"
    # File names are matched case-insensitively whatever the pattern says.
    assert device.pattern.flags & re.IGNORECASE
    assert device.pattern.fullmatch("001565AABBCC.cfg")


def test_load_vendors_sorts_by_id(tmp_path: Path) -> None:
    for vendor_id in ("zeta", "alpha", "mid"):
        write_vendor(tmp_path, vendor_id, VALID.format(id=vendor_id))
    assert [v.id for v in load_vendors(tmp_path)] == ["alpha", "mid", "zeta"]


def test_empty_root_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(VendorError, match=r"no \*/vendor\.toml"):
        load_vendors(tmp_path)


BROKEN = [
    # (replace this, with that, error names this field, and says this)
    ('id = "acme"', 'id = "other"', "id", "directory name"),
    ('title = "Acme"', "title = 3", "title", "non-empty string"),
    ("dhcp_options = [66]", "dhcp_options = [300]", "dhcp_options", "1..254"),
    ("user_agents = ['^Acme", "user_agents = ['^Acme (", "user_agents[0]", "invalid regular"),
    ("(?P<model>", "(?P<modelx>", "user_agents[0]", "modelx"),
    ('kind = "device"', 'kind = "devcie"', "files[0].kind", "'devcie' is not one of"),
    ('template = "mac.cfg.j2"', 'template = "missing.cfg.j2"', "files[0].template", "not exist"),
    ('template = "mac.cfg.j2"', 'template = "../mac.cfg.j2"', "files[0].template", "inside"),
    ('template = "mac.cfg.j2"', "", "files[0].template", "non-empty string"),
    ("'(?P<mac>[0-9a-f]{12})\\.cfg'", "'[0-9a-f]{12}\\.cfg'", "files[0].pattern", "mac"),
    ("'(?P<mac>[0-9a-f]{12})\\.cfg'", "'(?P<family>x)(?P<mac>[0-9a-f]{12})\\.cfg'",
     "files[0].pattern", "family"),
    ("'(?P<mac>[0-9a-f]{12})\\.cfg'", "'(?P<mac>[0-9a-f]{12}\\.cfg'", "files[0].pattern",
     "invalid regular"),
    ('kind = "upload"', 'kind = "upload"\nmax_upload = 0', "files[1].max_upload", "positive"),
    ('kind = "firmware"', 'kind = "firmware"\nmax_upload = 10', "files[2].max_upload",
     "only kind upload"),
    ('kind = "firmware"', 'kind = "firmware"\ntemplate = "mac.cfg.j2"', "files[2].template",
     "renders nothing"),
    ("(?P<file>[\\w.-]+\\.bin)", "[\\w.-]+\\.bin", "files[2].pattern", "file"),
    ('kind = "device"', 'kind = "device"\nline_ending = "cr"', "files[0].line_ending", "'cr'"),
    ('kind = "device"', 'kind = "device"\ncolour = "red"', "files[0]", "colour"),
    ('title = "Acme"', 'title = "Acme"\nfiels = []', "top level", "fiels"),
    ('resync_event = "check-sync"', 'resync_event = "check-sync"\n[oops', "cannot read", ""),
    ('reboot_event = "check-sync;reboot=true"\n', "", "reboot_event", "must be a string"),
    ('reboot_event = "check-sync;reboot=true"', 'reboot_event = 1', "reboot_event", "string"),
]  # fmt: skip


def test_an_event_the_vendor_lacks_is_empty_but_never_both(tmp_path: Path) -> None:
    """A phone whose only NOTIFY reboots it has no resync event (a resync must never reboot)."""
    text = VALID.format(id="acme")
    no_resync = text.replace('resync_event = "check-sync"', 'resync_event = ""', 1)
    vendor = load_vendor(write_vendor(tmp_path, "acme", no_resync))
    assert (vendor.resync_event, vendor.reboot_event) == ("", "check-sync;reboot=true")
    neither = no_resync.replace('reboot_event = "check-sync;reboot=true"', 'reboot_event = ""')
    with pytest.raises(VendorError, match="cannot both be empty"):
        load_vendor(write_vendor(tmp_path / "second", "acme", neither))


@pytest.mark.parametrize(("old", "new", "field", "problem"), BROKEN)
def test_errors_name_file_and_field(
    tmp_path: Path, old: str, new: str, field: str, problem: str
) -> None:
    text = VALID.format(id="acme")
    assert old in text
    path = write_vendor(tmp_path, "acme", text.replace(old, new, 1))
    with pytest.raises(VendorError) as caught:
        load_vendor(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {field}")
    assert problem in message


ZONES = """
source = "Acme admin guide 1.0, section 3"
[zones]
"Europe/Rome" = "ROME+1"
"""


def test_a_zone_table_is_loaded_beside_the_description(tmp_path: Path) -> None:
    path = write_vendor(tmp_path, "acme", VALID.format(id="acme"))
    assert load_vendor(path).timezones == {}
    (path.parent / "timezones.toml").write_text(ZONES, encoding="utf-8")
    assert load_vendor(path).timezones == {"Europe/Rome": "ROME+1"}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (ZONES.replace("Europe/Rome", "Europe/Rom"), "zones.Europe/Rom: is not an IANA"),
        (ZONES.replace('"ROME+1"', '""'), "zones.Europe/Rome: must be a non-empty string"),
        (ZONES.replace('source = "Acme admin guide 1.0, section 3"', ""), "source: must be"),
        (ZONES + "extra = 1\n", "zones.extra: must be a non-empty string"),
        ("source = 'x'\n", "zones: must be a non-empty table"),
        (ZONES.replace("[zones]", "[zone]"), "unknown key(s) zone"),
    ],
)
def test_a_bad_zone_table_names_the_entry(tmp_path: Path, text: str, problem: str) -> None:
    path = write_vendor(tmp_path, "acme", VALID.format(id="acme"))
    (path.parent / "timezones.toml").write_text(text, encoding="utf-8")
    with pytest.raises(VendorError) as caught:
        load_vendor(path)
    assert problem in str(caught.value)


def test_family_events_override_the_vendor_events(tmp_path: Path) -> None:
    table = '[family_events.old]\nresync_event = ""\nreboot_event = "check-sync"\n'
    vendor = load_vendor(write_vendor(tmp_path, "acme", VALID.format(id="acme") + table))
    assert vendor.events("old") == ("", "check-sync")
    assert vendor.events("new") == ("check-sync", "check-sync;reboot=true")


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ('resync_event = ""\nreboot_event = ""', "not both empty"),
        ('resync_event = "x"', "needs resync_event and reboot_event"),
        ('resync_event = ""\nreboot_event = "y"\nextra = 1', "unknown key(s) extra"),
    ],
)
def test_bad_family_events_are_refused(tmp_path: Path, table: str, problem: str) -> None:
    text = VALID.format(id="acme") + f"\n[family_events.old]\n{table}\n"
    with pytest.raises(VendorError, match=re.escape(problem)):
        load_vendor(write_vendor(tmp_path, "acme", text))


def test_files_must_be_present(tmp_path: Path) -> None:
    text = VALID.format(id="acme").split("[[files]]")[0]
    with pytest.raises(VendorError, match="files: must be a non-empty array"):
        load_vendor(write_vendor(tmp_path, "acme", text))


def test_default_templates_root_is_the_checkout() -> None:
    root = default_templates_root()
    assert root.name == "phone_templates"
    assert (root / "yealink" / "vendor.toml").is_file()


def test_default_templates_root_honours_an_explicit_path(tmp_path: Path) -> None:
    assert default_templates_root(tmp_path) == tmp_path
    assert default_templates_root(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match="not found"):
        default_templates_root(tmp_path / "missing")
