"""Files that phones upload (local overrides, logs, reports), kept per device on disk.

Layout: ``<data_dir>/uploads/<mac>/<name>``; names come from the vendors' upload patterns and
were checked by the resolver, and are checked again here so nothing escapes the folder.
Writes go to a temporary file renamed into place, so a phone never reads half an upload.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")
_MAC = re.compile(r"[0-9a-f]{12}")


class UploadStore:
    """Per-device upload folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, mac: str, name: str) -> Path:
        if not _MAC.fullmatch(mac) or not _NAME.fullmatch(name) or ".." in name:
            raise ValueError(f"unsafe upload name {name!r}")
        return self.root / mac / name

    async def save(self, mac: str, name: str, body: bytes) -> None:
        """Store an upload atomically."""
        await asyncio.to_thread(self._save, self._path(mac, name), body)

    @staticmethod
    def _save(path: Path, body: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(body)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def load(self, mac: str, name: str) -> bytes | None:
        """A stored upload, or None."""
        path = self._path(mac, name)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
