"""The keyring file: its format, validation, and private, atomic, locked writes.

The keyring lives outside the database (default ``<data_dir>/keys/secrets.json``)::

    {"version": 1, "keys": [{"id": "k2", "created": "2026-...Z", "key": "<urlsafe b64>"},
                            {"id": "k1", ...}]}                       newest first

Every write goes to a 0600 temporary file in the same directory, is fsynced, then renamed (or
hard-linked, which refuses to overwrite) into place, and the directory is fsynced: a crash or a
full disk leaves the old keyring or the new one, never half of one. Read-modify-write cycles
(`rotate_keyring`, `retire_keys`) hold an exclusive lock file, so two commands cannot lose each
other's key. Every problem raises `SecretError` with the path and what to do.
provisiond.storage.secrets encrypts with these keys.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import secrets as random_source
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from provisiond.storage.durable import fsync_directory

log = logging.getLogger("provisiond.storage.secrets")

KEYRING_VERSION = 1
KEY_BYTES = 32
KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
# What an administrator can do about a keyring that cannot be used, in every such message.
RESTORE_HINT = (
    "restore the keyring file from your copy (it is in no database backup), or point "
    "PROVISIOND_KEYRING / `keyring` in the settings at it"
)


class SecretError(Exception):
    """A keyring or stored secret is missing, malformed, tampered with or under an unknown key."""


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of the keyring; `key` is kept out of repr so it never reaches a log."""

    id: str
    created: str
    key: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class Keyring:
    """The parsed keyring file: keys newest first (never empty)."""

    keys: tuple[KeyEntry, ...]

    @property
    def newest(self) -> KeyEntry:
        """The key new values are encrypted with."""
        return self.keys[0]


def _parse_entry(raw: Any) -> KeyEntry:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise SecretError("keyring entry without an id")
    key_id, text = raw["id"], raw.get("key")
    if not KEY_ID.fullmatch(key_id) or not isinstance(text, str):
        raise SecretError(f"keyring entry {key_id!r} is malformed")
    try:
        key = base64.urlsafe_b64decode(text.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise SecretError(f"key {key_id} is not base64") from exc
    if len(key) != KEY_BYTES:
        raise SecretError(f"key {key_id} is not {KEY_BYTES} bytes")
    return KeyEntry(key_id, str(raw.get("created", "")), key)


def parse_keyring(data: bytes) -> Keyring:
    """The keyring in `data` (the file's bytes); SecretError saying what is wrong with it."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SecretError("keyring file is not JSON") from exc
    if not isinstance(doc, dict) or doc.get("version") != KEYRING_VERSION:
        raise SecretError(f"keyring file is not version {KEYRING_VERSION}")
    raw_keys = doc.get("keys")
    if not isinstance(raw_keys, list) or not raw_keys:
        raise SecretError("keyring file holds no keys")
    keys = tuple(_parse_entry(raw) for raw in raw_keys)
    if len({entry.id for entry in keys}) != len(keys):
        raise SecretError("keyring file repeats a key id")
    return Keyring(keys)


def load_keyring(path: Path) -> Keyring:
    """Read and validate the keyring file; warns (log) when others may read it.

    Raises SecretError naming the file, the problem and what to do: missing, not a regular
    file (a directory in its place), unreadable, or not a keyring (damaged, truncated).
    """
    try:
        with path.open("rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            data = handle.read()
    except FileNotFoundError as exc:
        raise SecretError(f"keyring {path} is missing: {RESTORE_HINT}") from exc
    except OSError as exc:
        raise SecretError(
            f"keyring {path} cannot be read ({exc.strerror}): {RESTORE_HINT}"
        ) from exc
    if mode & 0o077:
        log.warning("keyring %s is accessible to group/others (mode %o)", path, mode & 0o777)
    try:
        return parse_keyring(data)
    except SecretError as exc:
        raise SecretError(f"keyring {path} is damaged ({exc}): {RESTORE_HINT}") from exc


def _serialise(ring: Keyring) -> bytes:
    keys = [
        {"id": e.id, "created": e.created, "key": base64.urlsafe_b64encode(e.key).decode()}
        for e in ring.keys
    ]
    return json.dumps({"version": KEYRING_VERSION, "keys": keys}, indent=2).encode() + b"\n"


def _ensure_directory(directory: Path) -> None:
    if directory.is_dir():
        if directory.stat().st_mode & 0o077:
            log.warning("keyring directory %s is accessible to group/others", directory)
        return
    directory.mkdir(parents=True, mode=0o700)
    os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask


def _write_keyring(path: Path, ring: Keyring, *, exclusive: bool) -> None:
    """Write via a 0600 temp file, fsync, then rename (or link, which refuses to overwrite)."""
    _ensure_directory(path.parent)
    temp = path.with_name(f".{path.name}.{random_source.token_hex(6)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)
            handle.write(_serialise(ring))
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            os.link(temp, path)
        else:
            os.replace(temp, path)
        # Losing the keyring loses every secret: make the rename itself durable.
        fsync_directory(path.parent)
    except FileExistsError as exc:
        raise SecretError(f"keyring {path} already exists; refusing to overwrite it") from exc
    except OSError as exc:
        full = " (the disk is full: free space and run the command again)"
        hint = full if exc.errno in (errno.ENOSPC, errno.EDQUOT) else ""
        raise SecretError(
            f"cannot write keyring {path}: {exc.strerror}{hint}; the previous file is unchanged"
        ) from exc
    finally:
        temp.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise read-modify-write of the keyring across processes (two `keys rotate`)."""
    _ensure_directory(path.parent)
    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _new_entry(existing: Sequence[KeyEntry]) -> KeyEntry:
    numbers = [int(e.id[1:]) for e in existing if re.fullmatch(r"k\d{1,9}", e.id)]
    created = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return KeyEntry(f"k{max(numbers, default=0) + 1}", created, AESGCM.generate_key(256))


def init_keyring(path: Path) -> str:
    """Create the keyring file with one new key; returns its id. Refuses if the file exists."""
    with _locked(path):
        entry = _new_entry(())
        _write_keyring(path, Keyring((entry,)), exclusive=True)
    return entry.id


def rotate_keyring(path: Path) -> str:
    """Prepend a new key (old keys stay, so stored values still decrypt); returns its id."""
    with _locked(path):
        ring = load_keyring(path)
        entry = _new_entry(ring.keys)
        _write_keyring(path, Keyring((entry, *ring.keys)), exclusive=False)
    return entry.id


def retire_keys(path: Path, keep: set[str]) -> tuple[str, ...]:
    """Drop every key not in `keep` (the newest is always kept); returns the ids dropped.

    Call it only with the ids `census` found in use after `reencrypt`: a dropped key's values
    can never be decrypted again.
    """
    with _locked(path):
        ring = load_keyring(path)
        kept = tuple(e for e in ring.keys if e.id in keep or e is ring.newest)
        dropped = tuple(e.id for e in ring.keys if e not in kept)
        if dropped:
            _write_keyring(path, Keyring(kept), exclusive=False)
    return dropped
