"""The phone listener's HTTP helpers (frontends/http_wire.py): ranges, conditions, dates."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest

from provisiond.frontends.http_wire import (
    DateLine,
    Unsatisfiable,
    byte_range,
    host_allowed,
    not_modified,
    refusal,
    refusal_body,
    strip_prefix,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-99", (0, 99)),
        ("bytes=100-", (100, 999)),
        ("bytes=-100", (900, 999)),
        ("bytes=-5000", (0, 999)),  # a suffix longer than the file: all of it
        ("bytes=990-5000", (990, 999)),  # the last position is clipped to the file
        ("bytes=999-999", (999, 999)),
        (" bytes = 5-6 ", (5, 6)),
        ("BYTES=1-2", (1, 2)),
        # Ignored (the whole file is sent), as RFC 9110 section 14.2 allows:
        (None, None),
        ("bytes=0-1,5-6", None),  # several ranges
        ("items=0-1", None),  # another unit
        ("bytes=5-1", None),  # last before first: invalid
        ("bytes=a-b", None),
        ("bytes=-", None),
        ("bytes=1", None),
        ("bytes=+1-2", None),
    ],
)
def test_byte_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert byte_range(header, SIZE) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5000-6000", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        byte_range(header, SIZE)


def test_any_range_of_an_empty_file_is_unsatisfiable() -> None:
    with pytest.raises(Unsatisfiable):
        byte_range("bytes=0-", 0)


MODIFIED = datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    ("if_none_match", "if_modified_since", "expected"),
    [
        ('"abc"', None, True),
        ('"x", "abc"', None, True),
        ("*", None, True),
        ('W/"abc"', None, True),  # weak comparison for If-None-Match
        ('"x"', None, False),
        ('"x"', "Sun, 29 Mar 2026 01:30:15 GMT", False),  # If-None-Match decides alone
        (None, "Sun, 29 Mar 2026 01:30:15 GMT", True),  # same second as Last-Modified
        (None, "Sun, 29 Mar 2026 02:00:00 GMT", True),
        (None, "Sun, 29 Mar 2026 01:30:14 GMT", False),
        (None, "Sunday, 29-Mar-26 01:30:15 GMT", True),  # RFC 850 form
        (None, "yesterday", False),
        (None, "", False),
        (None, None, False),
    ],
)
def test_not_modified(
    if_none_match: str | None, if_modified_since: str | None, expected: bool
) -> None:
    assert not_modified('"abc"', MODIFIED, if_none_match, if_modified_since) is expected


def test_without_validators_nothing_is_unmodified() -> None:
    assert not not_modified(None, None, '"abc"', "Sun, 29 Mar 2026 01:30:15 GMT")


def test_date_line_is_imf_fixdate_of_now_and_changes_each_second() -> None:
    line = DateLine()
    first = line()
    assert first.startswith(b"Date: ")
    assert first.endswith(b" GMT\r\n")
    stamp = parsedate_to_datetime(first[6:-2].decode())
    assert abs(stamp - datetime.now(UTC)) < timedelta(seconds=2)
    assert line() is first  # the same second: the same bytes, not rebuilt
    deadline = time.monotonic() + 3
    while line() == first and time.monotonic() < deadline:
        time.sleep(0.05)
    assert line() != first


@pytest.mark.parametrize(
    ("value", "allowed", "expected"),
    [
        ("prov.example.com", frozenset({"prov.example.com"}), True),
        ("PROV.example.com.:8080", frozenset({"prov.example.com"}), True),
        ("evil.example", frozenset({"prov.example.com"}), False),
        ("10.0.0.1:80", frozenset({"prov.example.com"}), True),  # IP literals always
        ("[::1]:8080", frozenset({"prov.example.com"}), True),
        (None, frozenset({"prov.example.com"}), True),  # HTTP/1.0 without Host
        ("evil.example", None, True),  # no check configured
        ("evil.example", frozenset({"*"}), True),
    ],
)
def test_host_allowed(value: str | None, allowed: frozenset[str] | None, expected: bool) -> None:
    assert host_allowed(value, allowed) is expected


def test_strip_prefix() -> None:
    assert strip_prefix("/prov/a.cfg", "prov") == "a.cfg"
    assert strip_prefix("/a.cfg", "prov") == "a.cfg"
    assert strip_prefix("//a.cfg", "") == "a.cfg"
    assert strip_prefix("/provx/a.cfg", "prov") == "provx/a.cfg"


def test_refusals_carry_their_length_and_no_body_where_none_is_allowed() -> None:
    head = refusal(404)
    assert head.startswith(b"HTTP/1.1 404 Not Found\r\n")
    assert b"Content-Length: %d\r\n" % len(refusal_body(404)) in head
    assert refusal_body(304) == b""
    assert b"Content-Length" not in refusal(304)
    assert refusal_body(421) == b""  # nothing for a rebinding page to read...
    assert b"Content-Length: 0\r\n" in refusal(421)  # ...and the answer's end is known
