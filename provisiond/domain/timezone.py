"""Time-zone rules as phones apply them: a standard offset and yearly summer-time rules.

A phone keeps its clock right all year when it is told the *rules* (summer time starts on the
last Sunday of March at 02:00, ends on the last Sunday of October at 03:00, saves 60 minutes)
or a zone name it knows. It is never told "summer time is on now": a file rendered in January
would then be wrong in July. So nothing here reads the clock.

The rules come from the POSIX TZ string that ends every TZif file (RFC 8536, section 3.3), for
example ``CET-1CEST,M3.5.0,M10.5.0/3``: the rule in force after the zone's last listed
transition, which is the one a phone must apply from now on. `parse_posix_tz` reads it; the
TZif file itself is read by `provisiond.provisioning.timezones` (I/O stays out of domain/).

POSIX writes offsets west-positive (``CET-1`` is UTC+1); here every offset is east-positive
minutes, as phones and people write them. Only the ``Mm.w.d`` date form is used by tzdata
zones with summer time today; the Julian forms (``Jn``, ``n``) are refused with ValueError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DstRule", "Transition", "ZoneRules", "format_offset", "parse_posix_tz", "standard_time"]

MINUTES_PER_DAY = 24 * 60
_DEFAULT_TIME = 2 * 60  # POSIX: a transition without /time happens at 02:00 local time
# An abbreviation: three or more letters, or anything alphanumeric/sign in <...>.
_ABBR = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+\-]+>)"
_OFFSET = r"[+-]?\d{1,3}(?::\d{1,2}){0,2}"
_TZ = re.compile(
    rf"(?P<std>{_ABBR})(?P<std_offset>{_OFFSET})"
    rf"(?:(?P<dst>{_ABBR})(?P<dst_offset>{_OFFSET})?"
    rf"(?:,(?P<start>[^,/]+)(?:/(?P<start_time>{_OFFSET}))?"
    rf",(?P<end>[^,/]+)(?:/(?P<end_time>{_OFFSET}))?)?)?"
)
_MONTH_RULE = re.compile(r"M(?P<month>\d{1,2})\.(?P<week>\d)\.(?P<weekday>\d)")


@dataclass(frozen=True, slots=True)
class Transition:
    """When summer time starts or ends: the `week`-th `weekday` of `month` at local `minutes`.

    `week` is 1..5, where 5 means "the last one of the month"; `weekday` is 0 (Sunday) .. 6
    (Saturday), as POSIX counts. `minutes` is local wall-clock time after midnight of that day
    (standard time for the start, summer time for the end) and may lie outside one day: RFC 8536
    allows -167..167 hours (Asia/Jerusalem starts at "Thursday 26:00").
    """

    month: int
    week: int
    weekday: int
    minutes: int

    @property
    def last(self) -> bool:
        """The last `weekday` of the month, whatever its number."""
        return self.week == 5

    @property
    def iso_weekday(self) -> int:
        """1 (Monday) .. 7 (Sunday), as ISO 8601 and several vendors count."""
        return self.weekday or 7

    @property
    def exact(self) -> bool:
        """The time falls inside the day, so an hour 0..23 and minute 0..59 say it exactly."""
        return 0 <= self.minutes < MINUTES_PER_DAY

    @property
    def hour(self) -> int:
        """The hour 0..23 (clamped when not `exact`)."""
        return min(max(self.minutes, 0), MINUTES_PER_DAY - 1) // 60

    @property
    def minute(self) -> int:
        """The minute 0..59 (clamped when not `exact`)."""
        return min(max(self.minutes, 0), MINUTES_PER_DAY - 1) % 60


@dataclass(frozen=True, slots=True)
class DstRule:
    """Summer time: its abbreviation, total offset, and when it starts and ends each year."""

    abbreviation: str
    offset_minutes: int
    start: Transition
    end: Transition

    @property
    def exact(self) -> bool:
        """Both transitions fit in a day (see `Transition.exact`)."""
        return self.start.exact and self.end.exact


@dataclass(frozen=True, slots=True)
class ZoneRules:
    """A zone as a phone needs it: standard offset, summer-time rule (None when it has none)."""

    name: str  # IANA name, e.g. "Europe/Rome"
    posix: str  # the POSIX TZ string the rules came from
    abbreviation: str  # standard-time abbreviation ("CET"; "+0330" for numeric ones)
    offset_minutes: int  # standard offset, east-positive (Rome 60, New York -300)
    dst: DstRule | None

    @property
    def save_minutes(self) -> int:
        """How far summer time moves the clock (0 without summer time; 60 almost everywhere)."""
        return 0 if self.dst is None else self.dst.offset_minutes - self.offset_minutes


def format_offset(minutes: int) -> str:
    """``+1``, ``-3:30``, ``+5:45``, ``+0``: an east-positive offset as phones often write it."""
    sign = "-" if minutes < 0 else "+"
    hours, rest = divmod(abs(minutes), 60)
    return f"{sign}{hours}" + (f":{rest:02d}" if rest else "")


def _abbreviation(text: str) -> str:
    return text[1:-1] if text.startswith("<") else text


def _clock(text: str) -> int:
    """``[+-]hh[:mm[:ss]]`` as signed minutes (seconds are dropped: no zone uses them)."""
    sign = -1 if text.startswith("-") else 1
    parts = [int(p) for p in text.lstrip("+-").split(":")]
    hours, minutes = parts[0], parts[1] if len(parts) > 1 else 0
    if minutes > 59 or (len(parts) > 2 and parts[2] > 59):
        raise ValueError(f"bad time {text!r}")
    return sign * (hours * 60 + minutes)


def _transition(date: str, time: str | None) -> Transition:
    found = _MONTH_RULE.fullmatch(date)
    if found is None:
        raise ValueError(f"unsupported date rule {date!r} (only Mm.w.d is used by tzdata)")
    month, week, weekday = (int(found[k]) for k in ("month", "week", "weekday"))
    if not (1 <= month <= 12 and 1 <= week <= 5 and 0 <= weekday <= 6):
        raise ValueError(f"date rule out of range {date!r}")
    minutes = _DEFAULT_TIME if time is None else _clock(time)
    if abs(minutes) > 167 * 60:
        raise ValueError(f"transition time out of range {time!r}")
    return Transition(month, week, weekday, minutes)


def parse_posix_tz(name: str, posix: str) -> ZoneRules:
    """The rules of zone `name` from its POSIX TZ string; ValueError when it cannot be read."""
    found = _TZ.fullmatch(posix.strip())
    if found is None:
        raise ValueError(f"{name}: not a POSIX TZ string: {posix!r}")
    offset = -_clock(found["std_offset"])
    dst: DstRule | None = None
    if found["dst"] is not None:
        if found["start"] is None:
            raise ValueError(f"{name}: summer time without rules in {posix!r}")
        dst_offset = offset + 60 if found["dst_offset"] is None else -_clock(found["dst_offset"])
        dst = DstRule(
            abbreviation=_abbreviation(found["dst"]),
            offset_minutes=dst_offset,
            start=_transition(found["start"], found["start_time"]),
            end=_transition(found["end"], found["end_time"]),
        )
    return ZoneRules(name, posix.strip(), _abbreviation(found["std"]), offset, dst)


def standard_time(name: str, posix: str) -> ZoneRules:
    """Only the standard part of `posix` (for a zone whose summer-time rules are unusable)."""
    found = re.match(rf"(?P<std>{_ABBR})(?P<std_offset>{_OFFSET})", posix.strip())
    if found is None:
        raise ValueError(f"{name}: not a POSIX TZ string: {posix!r}")
    return ZoneRules(
        name, found[0], _abbreviation(found["std"]), -_clock(found["std_offset"]), None
    )
