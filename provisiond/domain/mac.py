"""MAC addresses: parsing the notations administrators type, and the forms phones use.

Accepted: ``001565AABBCC``, ``00:15:65:aa:bb:cc``, ``00-15-65-AA-BB-CC``, ``0015.65aa.bbcc``
(any case). Anything else is refused with a message showing an accepted form. netaddr does the
parsing; the whitelist exists because netaddr also accepts forms such as ``0:15:65:a:b:c`` that
are almost always typing mistakes.
"""

from __future__ import annotations

import re

import netaddr

from provisiond.domain.errors import InvalidInput

_ACCEPTED = re.compile(
    r"[0-9a-f]{12}"
    r"|[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
    r"|[0-9a-f]{2}(?:-[0-9a-f]{2}){5}"
    r"|[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}",
    re.IGNORECASE,
)
EXAMPLE = "00:15:65:aa:bb:cc"


def parse_mac(text: str, *, field: str = "mac") -> netaddr.EUI:
    """Parse an administrator-typed MAC into a 48-bit EUI, or raise InvalidInput."""
    candidate = text.strip() if isinstance(text, str) else ""
    if not _ACCEPTED.fullmatch(candidate):
        raise InvalidInput(
            f"{text!r} is not a MAC address; write it like {EXAMPLE} "
            "(also accepted: 001565AABBCC, 00-15-65-AA-BB-CC, 0015.65aa.bbcc)",
            field=field,
        )
    return netaddr.EUI(candidate, version=48)


def mac_colon(mac: netaddr.EUI) -> str:
    """The API's canonical form: ``00:15:65:aa:bb:cc``."""
    return str(mac.format(netaddr.mac_unix_expanded))


def mac_compact(mac: netaddr.EUI) -> str:
    """The storage, file-name and provisioning user-name form: ``001565aabbcc`` (the only
    place it is written)."""
    return f"{int(mac):012x}"


def normalise_mac(text: str, *, field: str = "mac") -> str:
    """Parse and return the canonical API form in one step."""
    return mac_colon(parse_mac(text, field=field))


def compact_from_any(text: str) -> str | None:
    """Lenient phone-side form: any notation with 12 hex digits -> ``001565aabbcc``, else None.

    Phones put MACs in User-Agents and file names in several notations; this never raises.
    """
    digits = re.sub(r"[^0-9a-fA-F]", "", text)
    return digits.lower() if len(digits) == 12 and len(text) <= 17 else None
