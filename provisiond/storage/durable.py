"""Durable file replacement: what every temp-file-then-rename writer needs after the rename."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make a rename in `directory` durable: after a crash the new name is there, not the old."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
