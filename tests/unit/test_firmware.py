"""The firmware store: adding images, the manifest, verification and what may be served."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import threading
from pathlib import Path

import pytest

from provisiond.domain.errors import Conflict, InvalidInput, NotFound
from provisiond.provisioning import firmware
from provisiond.provisioning.firmware import MANIFEST, FirmwareStore

MODEL = "yealink-t46s"
NAME = "T46S-66.86.0.160.rom"


def image_file(tmp_path: Path, name: str = NAME, content: bytes | None = None) -> Path:
    """An image to add, outside the store."""
    source = tmp_path / "incoming" / name
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content if content is not None else os.urandom(70_000))
    return source


@pytest.fixture
def store(tmp_path: Path) -> FirmwareStore:
    return FirmwareStore(tmp_path / "firmware")


def listing(root: Path) -> dict[str, bytes]:
    """Every file in the store (hidden ones too: nothing temporary may be left behind)."""
    return {p.name: p.read_bytes() for p in sorted(root.iterdir()) if p.name != ".manifest.lock"}


def test_add_copies_and_records(store: FirmwareStore, tmp_path: Path) -> None:
    source = image_file(tmp_path)
    image = store.add(source, MODEL, "66.86.0.160")
    stored = store.root / NAME
    assert stored.read_bytes() == source.read_bytes()
    assert image.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert image.size == source.stat().st_size
    manifest = json.loads((store.root / MANIFEST).read_text())
    assert manifest == {"images": [image.as_json()], "targets": {}}
    assert stat.S_IMODE(stored.stat().st_mode) == 0o644
    assert set(listing(store.root)) == {NAME, MANIFEST}  # no temporary files left


def test_add_checks_the_published_checksum(store: FirmwareStore, tmp_path: Path) -> None:
    source = image_file(tmp_path)
    store.root.mkdir()
    with pytest.raises(Conflict):
        store.add(source, MODEL, "66.86.0.160", sha256="0" * 64)
    assert listing(store.root) == {}
    good = hashlib.sha256(source.read_bytes()).hexdigest().upper()
    assert store.add(source, MODEL, "66.86.0.160", sha256=good).sha256 == good.lower()
    with pytest.raises(InvalidInput):
        store.add(source, MODEL, "66.86.0.161", sha256="not-hex")


def test_duplicates_and_mismatches_are_refused(store: FirmwareStore, tmp_path: Path) -> None:
    source = image_file(tmp_path)
    store.add(source, MODEL, "66.86.0.160")
    before = listing(store.root)
    with pytest.raises(Conflict, match="already recorded"):
        store.add(source, MODEL, "66.86.0.160")
    other = image_file(tmp_path / "x", content=b"another image entirely")
    with pytest.raises(Conflict):
        store.add(other, MODEL, "66.86.0.161")  # same file name, other bytes
    assert listing(store.root) == before
    # The same bytes may serve a second model (one file, two entries).
    store.add(source, "yealink-t48s", "66.86.0.160")
    assert [i.model for i in store.images()] == [MODEL, "yealink-t48s"]
    assert set(listing(store.root)) == {NAME, MANIFEST}


@pytest.mark.parametrize(
    ("name", "model", "version", "field"),
    [
        (NAME, "Yealink T46S", "1", "model"),
        (NAME, MODEL, "1 2", "version"),
        (NAME, MODEL, "", "version"),
        ("manifest.json", MODEL, "1", "file"),
        (".hidden.rom", MODEL, "1", "file"),
        ("a b.rom", MODEL, "1", "file"),
    ],
)
def test_bad_names_are_refused(
    store: FirmwareStore, tmp_path: Path, name: str, model: str, version: str, field: str
) -> None:
    source = image_file(tmp_path, name)
    with pytest.raises(InvalidInput) as info:
        store.add(source, model, version)
    assert info.value.field == field
    assert not (store.root / MANIFEST).exists()


def test_a_missing_source_is_not_found(store: FirmwareStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.add(tmp_path / NAME, MODEL, "1")


def test_verified_images_are_served_and_targeted(store: FirmwareStore, tmp_path: Path) -> None:
    image = store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    store.set_target(MODEL, "66.86.0.160")
    assert store.target_for(MODEL) is None  # nothing is offered before verification
    assert not store.is_servable(NAME)
    assert store.verify() == []
    assert store.is_servable(NAME)
    assert store.target_for(MODEL) == image
    assert store.target_for("yealink-t48s") is None
    assert not store.is_servable(MANIFEST)
    assert not store.is_servable(".manifest.lock")


@pytest.mark.parametrize(
    ("damage", "kind"),
    [
        (lambda p: p.write_bytes(bytes([p.read_bytes()[0] ^ 1]) + p.read_bytes()[1:]), "checksum"),
        (lambda p: p.write_bytes(p.read_bytes()[:-1]), "size"),
        (lambda p: p.unlink(), "missing"),
    ],
    ids=["flipped-bit", "truncated", "missing"],
)
def test_a_bad_image_is_reported_and_never_served(
    store: FirmwareStore, tmp_path: Path, damage: object, kind: str
) -> None:
    store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    store.set_target(MODEL, "66.86.0.160")
    damage(store.root / NAME)  # type: ignore[operator]
    opened = FirmwareStore.open(store.root)
    problems = {(p.kind, p.file) for p in opened.problems}
    assert problems == {(kind, NAME), ("target", NAME)}
    assert not opened.is_servable(NAME)
    assert opened.target_for(MODEL) is None
    with pytest.raises(Conflict):
        opened.set_target(MODEL, "66.86.0.160")


def test_unlisted_files_are_served_and_named(store: FirmwareStore, tmp_path: Path) -> None:
    store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    (store.root / "lang_it.txt").write_text("ciao")
    assert store.unlisted() == ["lang_it.txt"]
    assert store.verify() == []
    assert store.is_servable("lang_it.txt")


def test_an_unreadable_manifest_stops_all_serving(store: FirmwareStore, tmp_path: Path) -> None:
    store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    (store.root / "other.rom").write_bytes(b"x")
    (store.root / MANIFEST).write_text('{"images": [{"model": "x"}]}')
    problems = store.verify()
    assert [p.kind for p in problems] == ["manifest"]
    assert not store.is_servable(NAME)
    assert not store.is_servable("other.rom")
    with pytest.raises(InvalidInput):
        store.add(image_file(tmp_path, "new.rom"), MODEL, "1")


def test_targets_set_and_clear(store: FirmwareStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.set_target(MODEL, "66.86.0.160")
    store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    assert store.set_target(MODEL, "66.86.0.160") is not None
    assert store.targets() == {MODEL: "66.86.0.160"}
    assert store.set_target(MODEL, None) is None
    assert store.targets() == {}


def test_a_changed_manifest_is_picked_up(
    store: FirmwareStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A serving process sees `firmware target` made by another process, after a poll."""
    monkeypatch.setattr(firmware, "POLL_S", 0.0)
    image = store.add(image_file(tmp_path), MODEL, "66.86.0.160")
    serving = FirmwareStore.open(store.root)
    assert serving.target_for(MODEL) is None
    store.set_target(MODEL, "66.86.0.160")  # "another process"
    serving.poll()
    for thread in threading.enumerate():
        if thread.name == "firmware-verify":
            thread.join(timeout=30)
    assert serving.target_for(MODEL) == image
