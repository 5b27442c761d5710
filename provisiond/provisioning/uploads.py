"""Files that phones upload (local overrides, logs, reports), kept per device on disk.

Layout: ``<data_dir>/uploads/<mac>/<name>``; names come from the vendors' upload patterns and
were checked by the resolver, and are checked again here so nothing escapes the folder.
Writes go to a temporary file, fsynced, then renamed into place, so a phone never reads half
an upload and a crash never leaves one under its name. A file system that cannot take the
upload (full disk, quota, I/O error) leaves no temporary file behind and raises
`UploadNotStored`, which names the folder and the cause and is logged once.

Names are stored **lower-case, whole** (vendor patterns match case-insensitively, so
``001565AABBCC-Local.CFG`` and ``001565aabbcc-local.cfg`` are one file, not 2^n variants);
a legacy variant in another case is removed when the name is next written. Every upload is
held to the global ceiling (`max_bytes`, settings.max_upload_bytes) on top of its name's own
cap, and the files of one device together to `quota` bytes (settings.phone_limits
.upload_quota_bytes). Saves of one device are serialised in this process, so two concurrent
uploads cannot both squeeze under the quota (across `--workers` processes the quota may be
exceeded by at most one ceiling per extra process).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import re
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,254}")
_MAC = re.compile(r"[0-9a-f]{12}")
DEFAULT_MAX_BYTES = 256 << 10
DEFAULT_QUOTA = 4 << 20


class UploadNotStored(OSError):
    """The data directory could not take an upload (full disk, quota, I/O): nothing was stored.

    An OSError with the original errno (ENOSPC for a full disk), and a message for the log.
    """


def _not_stored(folder: Path, exc: OSError) -> UploadNotStored:
    full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
    cause = "the disk is full: free space there" if full else exc.strerror or str(exc)
    message = f"upload not stored in {folder}: {cause}"
    log.error("%s (the phone is answered with an error and may retry later)", message)
    return UploadNotStored(exc.errno or errno.EIO, message)


class _CountedLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class UploadStore:
    """Per-device upload folder."""

    def __init__(
        self, root: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, quota: int = DEFAULT_QUOTA
    ) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.quota = quota
        self._locks: dict[str, _CountedLock] = {}

    def cap(self, name_cap: int | None) -> int:
        """The most bytes one upload may have: its name's cap, never over the ceiling."""
        return min(name_cap or 0, self.max_bytes)

    @staticmethod
    def canonical(name: str) -> str:
        """The stored form of an upload name (lower-case)."""
        return name.lower()

    def _path(self, mac: str, name: str) -> Path:
        name = self.canonical(name)
        if not _MAC.fullmatch(mac) or not _NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"unsafe upload name {name!r}")
        return self.root / mac / name

    async def save(self, mac: str, name: str, body: bytes) -> bool:
        """Store an upload atomically: True; False (nothing written) when it would take the
        device over its quota; ValueError for an unsafe name or a body over the ceiling."""
        path = self._path(mac, name)
        if len(body) > self.max_bytes:
            raise ValueError(f"upload over the {self.max_bytes}-byte ceiling")
        lock = self._locks.get(mac)
        if lock is None:
            lock = self._locks[mac] = _CountedLock()
        lock.users += 1
        try:
            async with lock.lock:
                return await asyncio.to_thread(self._save, path, body, self.quota)
        finally:
            lock.users -= 1
            if not lock.users:  # bounded: only devices with a save in progress keep a lock
                del self._locks[mac]

    @staticmethod
    def _save(path: Path, body: bytes, quota: int) -> bool:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _not_stored(folder, exc) from exc
        others, variants = 0, []
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_file(follow_symlinks=False):
                    continue
                if entry.name.lower() == path.name:  # this name, in any case (legacy)
                    if entry.name != path.name:
                        variants.append(Path(entry.path))
                    continue
                if not entry.name.startswith(".upload-"):  # another save's temp is not ours
                    others += entry.stat(follow_symlinks=False).st_size
        if others + len(body) > quota:
            return False
        _write_atomically(path, body)
        for variant in variants:
            variant.unlink(missing_ok=True)
        return True

    async def load(self, mac: str, name: str) -> bytes | None:
        """A stored upload, or None."""
        path = self._path(mac, name)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def used(self, mac: str) -> int:
        """Bytes stored for a device."""
        folder = self.root / mac
        if not _MAC.fullmatch(mac):
            raise ValueError(f"not a MAC {mac!r}")

        def total() -> int:
            try:
                return sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            except FileNotFoundError:
                return 0

        return await asyncio.to_thread(total)


def _write_atomically(path: Path, body: bytes) -> None:
    """Temp file in the same folder, fsync, rename: `path` holds the old or the new bytes."""
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _not_stored(path.parent, exc) from exc
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
