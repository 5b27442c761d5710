"""Read a zone's rules from the system's time-zone database, and name it in a vendor's list.

`zone_rules` reads the POSIX TZ string at the end of the zone's TZif file (RFC 8536 version 2
and later always end with one) from the same places `zoneinfo` looks: ``zoneinfo.TZPATH``, then
the ``tzdata`` package. The answer depends on the installed tzdata only, never on the date, so
it is cached for the life of the process (a tzdata upgrade needs a restart, as for `zoneinfo`).

`vendor_zone` names the zone in a vendor's own list (``phone_templates/<vendor>/timezones.toml``)
and warns once per vendor and zone when the list lacks it; the templates then fall back to the
standard offset and summer-time rules (docs/templates.md).
"""

from __future__ import annotations

import functools
import importlib.resources
import logging
import zoneinfo
from pathlib import Path

from provisiond.domain.identify import VendorSpec
from provisiond.domain.timezone import ZoneRules, parse_posix_tz, standard_time

__all__ = ["vendor_zone", "zone_rules"]

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def _tzif_bytes(name: str) -> bytes:
    for base in zoneinfo.TZPATH:
        candidate = Path(base) / name
        if candidate.is_file():
            return candidate.read_bytes()
    try:  # the tzdata package, which zoneinfo falls back to as well
        package, _, leaf = f"tzdata.zoneinfo.{name.replace('/', '.')}".rpartition(".")
        return importlib.resources.files(package).joinpath(leaf).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise zoneinfo.ZoneInfoNotFoundError(f"no time zone file for {name!r}") from exc


@functools.cache
def zone_rules(name: str) -> ZoneRules:
    """The standard offset and summer-time rules of IANA zone `name` (validated by settings).

    A zone whose rules this module cannot express (a Julian-day rule) is served as standard
    time only, with a warning: better a clock one hour off in summer than no file.
    """
    zoneinfo.ZoneInfo(name)  # raises ZoneInfoNotFoundError/ValueError for a bad name
    data = _tzif_bytes(name)
    if not data.startswith(b"TZif") or data[4:5] in (b"\0", b""):
        raise ValueError(f"{name}: TZif version 1 has no rule string")
    footer = data.rstrip(b"\n").rsplit(b"\n", 1)[-1].decode("ascii")
    try:
        rules = parse_posix_tz(name, footer)
    except ValueError as exc:
        log.warning("time zone %s: %s; phones get standard time only", name, exc)
        rules = standard_time(name, footer)
    if rules.dst is not None and not rules.dst.exact:
        log.warning(
            "time zone %s: summer time changes outside 00:00-23:59 (%s); phones that take an "
            "hour get the nearest one in the day",
            name,
            footer,
        )
    return rules


def vendor_zone(vendor: VendorSpec, name: str) -> str:
    """The vendor's own name for IANA zone `name`, or "" (warned once) when its list lacks it."""
    if not vendor.timezones:
        return ""
    found = vendor.timezones.get(name, "")
    if not found and (vendor.id, name) not in _warned:
        _warned.add((vendor.id, name))
        log.warning(
            "time zone %s is not in %s's zone list (timezones.toml): its phones get the UTC "
            "offset and summer-time rules instead of a zone name",
            name,
            vendor.id,
        )
    return found
