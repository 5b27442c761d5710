"""Firmware over HTTP: a file's answer (200, 206, 304, 416) and its body streamed by flow control.

Firmware images are tens of megabytes and phones fetch them in parts (Range) or whole, often
over slow links; the body is read in chunks and written only while the transport's buffer has
room, so a slow phone holds one chunk of memory, not the image.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from provisiond.frontends.http_wire import (
    Unsatisfiable,
    byte_range,
    http_date,
    not_modified,
    parse_http_date,
    refusal,
    status_line,
)

CHUNK = 64 * 1024


@dataclass(slots=True)
class FileAnswer:
    """What to send for a file: the head (without Date, Connection and the blank line), and
    the open file with the part of it to stream (None: the head is the whole answer)."""

    head: bytes
    file: BinaryIO | None = None
    offset: int = 0
    length: int = 0


@dataclass(frozen=True, slots=True)
class Conditions:
    """The request headers a file's answer depends on."""

    head_only: bool = False
    range: str | None = None
    if_range: str | None = None
    if_none_match: str | None = None
    if_modified_since: str | None = None


def answer_file(path: Path, content_type: str, conditions: Conditions) -> FileAnswer:
    """The answer for `path` (which the pipeline resolved inside the firmware store).

    A validator (ETag from the modification time and size, Last-Modified) comes with every
    answer; If-None-Match / If-Modified-Since give 304, Range one part (206) or 416, and
    If-Range sends the whole file when the phone's copy is another version.
    """
    try:
        file = path.open("rb")
    except OSError:
        return FileAnswer(refusal(404))
    try:
        stat = os.fstat(file.fileno())
        size = stat.st_size
        etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
        modified = datetime.fromtimestamp(int(stat.st_mtime), UTC)
        validators = (
            f"ETag: {etag}\r\nLast-Modified: {http_date(modified)}\r\nAccept-Ranges: bytes\r\n"
        ).encode("ascii")
        if not_modified(etag, modified, conditions.if_none_match, conditions.if_modified_since):
            file.close()
            return FileAnswer(status_line(304) + validators)
        wanted = conditions.range if _range_applies(conditions.if_range, etag, modified) else None
        try:
            part = byte_range(wanted, size)
        except Unsatisfiable:
            file.close()
            return FileAnswer(refusal(416) + b"Content-Range: bytes */%d\r\n" % size)
        status, first, length = (
            (200, 0, size) if part is None else (206, part[0], part[1] - part[0] + 1)
        )
        head = status_line(status) + validators
        head += f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n".encode("latin-1")
        if part is not None:
            head += b"Content-Range: bytes %d-%d/%d\r\n" % (part[0], part[1], size)
        if conditions.head_only or length == 0:
            file.close()
            return FileAnswer(head)
        file.seek(first)
        return FileAnswer(head, file, first, length)
    except BaseException:
        file.close()
        raise


def _range_applies(if_range: str | None, etag: str, modified: datetime) -> bool:
    """RFC 9110 section 13.1.5: Range counts only when If-Range (if any) names this version."""
    if if_range is None:
        return True
    value = if_range.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag  # strong comparison
    since = parse_http_date(value)
    return since is not None and since == modified


class FileSender:
    """Writes `length` bytes of `file` to `transport` while its buffer has room.

    The protocol calls `pump()` once after the head, and again from `resume_writing`;
    `paused` is set by `pause_writing` (which a write may call at once). `finished` is called
    once: True after the last byte, False when the file ended early (changed under us).
    """

    __slots__ = ("_file", "_finished", "_left", "_transport", "paused")

    def __init__(
        self,
        answer: FileAnswer,
        transport: asyncio.WriteTransport,
        finished: Callable[[bool], None],
    ) -> None:
        assert answer.file is not None
        self._file: BinaryIO | None = answer.file
        self._left = answer.length
        self._transport = transport
        self._finished = finished
        self.paused = False

    def pump(self) -> None:
        """Write chunks until the buffer is full or the part is sent."""
        file = self._file
        while file is not None and not self.paused and not self._transport.is_closing():
            chunk = file.read(min(CHUNK, self._left))
            if not chunk:
                self._end(False)
                return
            self._left -= len(chunk)
            self._transport.write(chunk)
            if self._left == 0:
                self._end(True)
                return
        if file is not None and self._transport.is_closing():
            self.close()

    def _end(self, whole: bool) -> None:
        self.close()
        self._finished(whole)

    def close(self) -> None:
        """Release the file (the connection went away, or the part is sent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
