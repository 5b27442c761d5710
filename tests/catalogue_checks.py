"""What a device file must hold for every account it carries, whatever the vendor's format.

`values_of` reads every value a file sets (XML texts and attribute values after parsing, so
an escaped display name compares equal to the original; or what follows the first ``=`` or
``:`` of each ``key=value`` line, or the value of an Avaya ``SET NAME value`` line, quotes
removed). `missing_accounts` names the (slot, value)
pairs of the expected accounts that no value of the file equals. The model tests use them for
every model of the catalogue (tests/unit/test_catalogue_models.py renders,
tests/integration/test_catalogue_boot.py boots over real sockets).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable

__all__ = ["is_xml", "missing_accounts", "values_of"]

_KEY_VALUE = re.compile(r"\s*[^=:#;\s][^=:]*?\s*[=:]\s?(.*)$")
_SET_STATEMENT = re.compile(r"\s*SET\s+\S+\s+(.*)$")  # Avaya 46xxsettings: SET NAME "value"


def is_xml(body: bytes) -> bool:
    """Whether the file is an XML document (by its first non-space character)."""
    return body.lstrip()[:1] == b"<"


def values_of(body: bytes) -> set[str]:
    """Every value the file sets (raises ET.ParseError for XML that does not parse)."""
    text = body.decode("utf-8")
    found: set[str] = set()
    if is_xml(body):
        for node in ET.fromstring(body).iter():
            found.add((node.text or "").strip())
            found.update(node.attrib.values())
        return found
    for line in text.splitlines():
        match = _SET_STATEMENT.match(line) or _KEY_VALUE.match(line)
        if match:
            value = match.group(1).strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            found.add(value)
    return found


def missing_accounts(
    values: set[str], accounts: Iterable[tuple[int, tuple[str, ...]]]
) -> list[tuple[int, str]]:
    """(slot, value) of every expected account value that is not a whole value of the file."""
    return [
        (slot, value) for slot, expected in accounts for value in expected if value not in values
    ]
