"""The firmware store: images in one directory, described by ``manifest.json`` next to them.

The manifest lists each image (model, version, file, sha256, size) and a target version per
model::

    {"images": [{"model": "yealink-t46s", "version": "66.86.0.160",
                 "file": "T46S-66.86.0.160.rom", "sha256": "9f2c...", "size": 31457280}],
     "targets": {"yealink-t46s": "66.86.0.160"}}

Contracts:
- `FirmwareStore.add` copies an image in atomically (temporary name, fsync, rename), records its
  checksum and refuses a second image for the same model and version or a different image under
  a name already taken. Writers hold an exclusive lock on ``.manifest.lock``, so two admins
  adding at once never lose an entry.
- `verify` (run at start-up by `open`) hashes every listed image; a missing, truncated or corrupt
  one is reported, is never served and is never offered as a target.
- Files in the directory that the manifest does not list are served as before (their checksum
  is unknown); `unlisted` names them so an operator can `firmware add` them.
- A manifest that cannot be read stops all firmware serving until it is fixed: a store that
  cannot tell good images from bad ones serves none.
- A serving process notices a changed manifest (`poll`, at most every `POLL_S` seconds: one
  stat) and re-verifies in a thread; until that finishes, the previous state keeps serving.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisiond.domain.errors import Conflict, InvalidInput, NotFound
from provisiond.storage.durable import fsync_directory

log = logging.getLogger(__name__)
MANIFEST = "manifest.json"
LOCK = ".manifest.lock"
POLL_S = 2.0
_CHUNK = 1 << 20
_MODEL = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,63}")
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class FirmwareImage:
    """One manifest entry: an image file for one model and version."""

    model: str
    version: str
    file: str
    sha256: str
    size: int

    def as_json(self) -> dict[str, Any]:
        """The manifest form."""
        return {
            "model": self.model,
            "version": self.version,
            "file": self.file,
            "sha256": self.sha256,
            "size": self.size,
        }


@dataclass(frozen=True, slots=True)
class Problem:
    """Something `verify` found wrong; `kind` is missing, size, checksum, manifest or target."""

    kind: str
    file: str
    detail: str

    def as_json(self) -> dict[str, str]:
        """For the CLI's JSON output."""
        return {"kind": self.kind, "file": self.file, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class _Manifest:
    images: tuple[FirmwareImage, ...] = ()
    targets: Mapping[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "images": [image.as_json() for image in self.images],
            "targets": dict(sorted(self.targets.items())),
        }


@dataclass(frozen=True, slots=True)
class _State:
    """What one verification found; replaced whole, never changed (readers need no lock)."""

    manifest: _Manifest
    good: frozenset[str]  # listed files whose size and checksum matched
    problems: tuple[Problem, ...]
    broken: bool  # the manifest itself could not be read: serve nothing
    signature: tuple[int, ...] | None


def check_model(value: str) -> str:
    """A catalogue model id, e.g. ``yealink-t46s``."""
    if not _MODEL.fullmatch(value):
        raise InvalidInput(f"model must be a catalogue id, got {value!r}", field="model")
    return value


def check_version(value: str) -> str:
    """A version as the phone reports it, e.g. ``66.86.0.160``."""
    if not _VERSION.fullmatch(value):
        raise InvalidInput(
            f"version must be letters, digits and . _ + - (at most 64), got {value!r}",
            field="version",
        )
    return value


def check_file_name(value: str) -> str:
    """A plain file name phones can ask for (no directories, no leading dot)."""
    if not _FILE.fullmatch(value) or value == MANIFEST:
        raise InvalidInput(
            f"the image's file name must be letters, digits and . _ + -, got {value!r}",
            field="file",
        )
    return value


def sha256_of(path: Path) -> tuple[str, int]:
    """The hex SHA-256 and size of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _parse_manifest(raw: bytes) -> _Manifest:
    """Strictly: a manifest we half-understand could serve the wrong image."""
    data = json.loads(raw.decode("utf-8"))
    if not isinstance(data, dict) or set(data) - {"images", "targets"}:
        raise ValueError('expected an object with "images" and "targets"')
    images = [_parse_image(item) for item in data.get("images", [])]
    targets = data.get("targets", {})
    if not isinstance(targets, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in targets.items()
    ):
        raise ValueError('"targets" must map model ids to versions')
    return _Manifest(tuple(images), targets)


def _parse_image(item: Any) -> FirmwareImage:
    fields = ("model", "version", "file", "sha256", "size")
    if not isinstance(item, dict) or set(item) != set(fields):
        raise ValueError(f"malformed image entry {item!r}")
    texts = [item[name] for name in fields[:4]]
    if not all(isinstance(t, str) for t in texts) or not _SHA256.fullmatch(item["sha256"]):
        raise ValueError(f"malformed image entry {item!r}")
    if isinstance(item["size"], bool) or not isinstance(item["size"], int) or item["size"] < 0:
        raise ValueError(f"malformed size in {item!r}")
    image = FirmwareImage(**item)
    check_model(image.model)
    check_version(image.version)
    check_file_name(image.file)
    return image


def _write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


class FirmwareStore:
    """Images and their manifest under `root`; see the module docstring for the contracts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # Nothing is served before the first verification.
        self._state = _State(_Manifest(), frozenset(), (), True, None)
        # Fingerprints of images hashed before, so a reload re-hashes only what changed.
        self._seen: dict[tuple[str, str, int, int, int], bool] = {}
        self._next_poll = 0.0
        self._reloading = threading.Lock()

    @classmethod
    def open(cls, root: Path) -> FirmwareStore:
        """A store verified now (start-up); every problem is logged as an error."""
        store = cls(root)
        store.verify()
        return store

    # -- reading --------------------------------------------------------------------------

    def _signature(self) -> tuple[int, ...] | None:
        try:
            st = (self.root / MANIFEST).stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size, st.st_ino)

    def _read(self) -> _Manifest:
        try:
            raw = (self.root / MANIFEST).read_bytes()
        except FileNotFoundError:
            return _Manifest()
        try:
            return _parse_manifest(raw)
        except (ValueError, InvalidInput) as exc:
            raise InvalidInput(f"{self.root / MANIFEST} is not a valid manifest: {exc}") from exc

    def images(self) -> tuple[FirmwareImage, ...]:
        """The listed images, as on disk now."""
        return self._read().images

    def targets(self) -> dict[str, str]:
        """Target version per model, as on disk now."""
        return dict(self._read().targets)

    def unlisted(self) -> list[str]:
        """Files in the directory that the manifest does not list (served unchecked)."""
        listed = {image.file for image in self._read().images}
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.name not in listed | {MANIFEST}
        )

    # -- verification and serving ---------------------------------------------------------

    def verify(self) -> list[Problem]:
        """Re-read the manifest and hash every listed image; returns (and logs) the problems."""
        signature = self._signature()
        try:
            manifest = self._read()
        except InvalidInput as exc:
            broken = Problem("manifest", MANIFEST, f"{exc.detail}; no firmware is served")
            self._state = _State(_Manifest(), frozenset(), (broken,), True, signature)
            log.error("firmware: %s", broken.detail)
            return [broken]
        good: set[str] = set()
        problems: list[Problem] = []
        for image in manifest.images:
            found = self._check(image)
            if found is None:
                good.add(image.file)
            else:
                problems.append(found)
        problems.extend(_target_problems(manifest, good))
        for problem in problems:
            log.error("firmware %s refused: %s", problem.file, problem.detail)
        self._state = _State(manifest, frozenset(good), tuple(problems), False, signature)
        return problems

    def _check(self, image: FirmwareImage) -> Problem | None:
        path = self.root / image.file
        try:
            st = path.stat()
        except FileNotFoundError:
            return Problem("missing", image.file, f"{image.file} is listed but missing")
        if not path.is_file() or path.is_symlink():
            return Problem("missing", image.file, f"{image.file} is not a regular file")
        if st.st_size != image.size:
            return Problem(
                "size", image.file, f"{image.file} has {st.st_size} bytes, {image.size} listed"
            )
        key = (image.file, image.sha256, st.st_size, st.st_mtime_ns, st.st_ino)
        if key not in self._seen:
            self._seen[key] = sha256_of(path)[0] == image.sha256
        if not self._seen[key]:
            return Problem("checksum", image.file, f"{image.file} does not match its sha256")
        return None

    @property
    def listed(self) -> tuple[FirmwareImage, ...]:
        """The images the last verification looked at."""
        return self._state.manifest.images

    @property
    def problems(self) -> tuple[Problem, ...]:
        """What the last verification found."""
        return self._state.problems

    def is_servable(self, name: str) -> bool:
        """May a phone get this file? Not when listed and flagged, nor the manifest itself."""
        state = self._state
        if state.broken or name.startswith(".") or name == MANIFEST:
            return False
        listed = any(image.file == name for image in state.manifest.images)
        return name in state.good or not listed

    def target_for(self, model: str) -> FirmwareImage | None:
        """The image phones of `model` should run, when a target is set and it verified."""
        state = self._state
        version = state.manifest.targets.get(model)
        if version is None:
            return None
        for image in state.manifest.images:
            if image.model == model and image.version == version:
                return image if image.file in state.good else None
        return None

    def poll(self) -> None:
        """Cheap, call often: when the manifest changed, re-verify in a background thread."""
        now = time.monotonic()
        if now < self._next_poll:
            return
        self._next_poll = now + POLL_S
        if self._signature() == self._state.signature or not self._reloading.acquire(False):
            return
        threading.Thread(target=self._reload, name="firmware-verify", daemon=True).start()

    def _reload(self) -> None:
        try:
            self.verify()
        except Exception:  # a thread has no caller to tell: log, keep the previous state
            log.exception("firmware: re-verification failed")
        finally:
            self._reloading.release()

    # -- writing (the CLI) ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_Manifest]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / LOCK).open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield self._read()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _save(self, manifest: _Manifest) -> None:
        text = json.dumps(manifest.as_json(), indent=2, sort_keys=False) + "\n"
        _write_atomically(self.root / MANIFEST, text.encode("utf-8"))

    def add(self, path: Path, model: str, version: str, sha256: str | None = None) -> FirmwareImage:
        """Copy `path` in under its own name and record it; see the module docstring.

        `sha256`, when given (the vendor's published checksum), must match the copied bytes.
        """
        check_model(model), check_version(version)
        name = check_file_name(path.name)
        if sha256 is not None and not _SHA256.fullmatch(sha256.lower()):
            raise InvalidInput("sha256 must be 64 hex digits", field="sha256")
        if not path.is_file():
            raise NotFound(f"{path} is not a file", field="file")
        with self._locked() as manifest:
            for image in manifest.images:
                if (image.model, image.version) == (model, version):
                    raise Conflict(
                        f"{model} {version} is already recorded ({image.file})", field="version"
                    )
            allowed = {i.sha256 for i in manifest.images if i.file == name}
            if sha256 is not None:
                allowed = (allowed or {sha256.lower()}) & {sha256.lower()}
                if not allowed:
                    raise Conflict(f"{name} is recorded with another checksum", field="sha256")
            sha, size = self._bring_in(path, name, allowed)
            recorded = FirmwareImage(model, version, name, sha, size)
            self._save(_Manifest((*manifest.images, recorded), manifest.targets))
        return recorded

    def _bring_in(self, source: Path, name: str, allowed: set[str]) -> tuple[str, int]:
        """Copy `source` to `name` (or hash it in place); refuse content other than `allowed`.

        The copy goes to a temporary name while it is hashed and is renamed only when it is
        acceptable, so a refused or interrupted add leaves the directory as it was.
        """
        final = self.root / name
        if final.exists() and final.resolve() == source.resolve():
            sha, size = sha256_of(final)
            _refuse_unless(sha, allowed, name)
            return sha, size
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{name}.")
        try:
            with source.open("rb") as src, os.fdopen(fd, "wb") as dst:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            sha, size = digest.hexdigest(), os.path.getsize(tmp)
            _refuse_unless(sha, allowed, name)
            if final.exists() and sha256_of(final)[0] != sha:
                raise Conflict(f"a different file named {name} is already stored", field="file")
            os.chmod(tmp, 0o644)
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_directory(self.root)
        return sha, size

    def set_target(self, model: str, version: str | None) -> FirmwareImage | None:
        """Set (or with None clear) the version phones of `model` should run."""
        check_model(model)
        with self._locked() as manifest:
            targets = dict(manifest.targets)
            if version is None:
                targets.pop(model, None)
                self._save(_Manifest(manifest.images, targets))
                return None
            image = next(
                (i for i in manifest.images if (i.model, i.version) == (model, version)), None
            )
            if image is None:
                raise NotFound(f"no image of {model} {version}; add it first", field="version")
            problem = self._check(image)
            if problem is not None:
                raise Conflict(f"cannot target a bad image: {problem.detail}", field="version")
            targets[model] = version
            self._save(_Manifest(manifest.images, targets))
        return image


def _refuse_unless(sha: str, allowed: set[str], name: str) -> None:
    if allowed and sha not in allowed:
        raise Conflict(f"{name} does not match the expected sha256", field="sha256")


def _target_problems(manifest: _Manifest, good: set[str]) -> list[Problem]:
    problems = []
    for model, version in sorted(manifest.targets.items()):
        image = next((i for i in manifest.images if (i.model, i.version) == (model, version)), None)
        if image is None:
            problems.append(
                Problem("target", "", f"target {model} {version} names no listed image")
            )
        elif image.file not in good:
            problems.append(
                Problem(
                    "target",
                    image.file,
                    f"target {model} {version} is not offered: its image is bad",
                )
            )
    return problems
