"""The MAC addresses that a phone's client certificate names.

Phones carry factory ("device") certificates signed by their vendor's CA. The vendor documents
that the certificate is unique per device, based on the MAC, but each puts the MAC somewhere
else. The forms this module knows (from the vendors' administrator guides):

- Polycom/Poly and Yealink factory certificates: unique per device "based on the MAC address";
  the MAC stands in the common name, alone or inside text (``CN=0004f2aabbcc``,
  ``CN=Polycom VVX 400 0004f2aabbcc``);
- Cisco SPA and Multiplatform (3PCC) phones: the product in OU, the MAC in the state/province
  attribute, the serial number in the locality (``OU=CP-8841-3PCC, L=88012BA01234,
  S=000e08abcdef``). The serial number can itself be 12 hex digits, so ``L`` is never read;
- Cisco MIC (manufacturing installed certificates) of SCCP/SIP enterprise phones: the device
  name in the CN, ``CN=SEP001122334455`` or ``CN=CP-7961G-SEP001122334455``;
- Snom, Grandstream and others: the MAC in the CN next to the brand
  (``CN=snom 000413922D24``), or a MAC-based name in a SAN DNS/URI entry
  (``DNS:0004f2aabbcc.phones.example``, ``URI:urn:dev:mac:0004f2aabbcc``);
- the X.520 serialNumber, UID (userId) and OU attributes, which some CAs (and 802.1X device
  certificates) use for the MAC.

Only the subject attributes commonName, serialNumber, organizationalUnitName,
stateOrProvinceName and userId, and the SAN types DNS and URI are read; the certificate's own
serial number and the issuer never are.

A MAC is accepted only as a whole token: 12 hex digits not touching another hex digit
(``SEP001122334455``: the ``P`` delimits), or six colon- or dash-separated pairs, or Cisco's
three dot-separated quads, not continuing a longer run of the same separator (so a
colon-separated SHA-1 fingerprint yields nothing). UUIDs are removed first: their last group is
12 hex digits. The all-zero, broadcast and multicast addresses are never a phone's MAC and are
dropped. Consequences worth knowing: ``mac:00:04:f2:aa:bb:cc`` is not recognised (``c:`` looks
like one more group); ``mac:0004f2aabbcc`` and ``MAC=00:04:f2:aa:bb:cc`` are.

Pure: no I/O. The input is the dict of `ssl.SSLSocket.getpeercert()`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

SUBJECT_ATTRIBUTES = frozenset(
    {
        "commonName",
        "serialNumber",  # X.520 attribute in the subject, not the certificate's serial number
        "organizationalUnitName",
        "stateOrProvinceName",  # Cisco SPA / Multiplatform phones: S=<mac>
        "userId",  # UID
    }
)
SAN_TYPES = frozenset({"DNS", "URI"})

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
# Each form: no hex digit on either side, and not continuing a run of the same separator.
_MAC = re.compile(
    r"""
    (?<![0-9a-f])(?:
        [0-9a-f]{12}
      | (?<![0-9a-f]:) [0-9a-f]{2}(?::[0-9a-f]{2}){5} (?!:[0-9a-f])
      | (?<![0-9a-f]-) [0-9a-f]{2}(?:-[0-9a-f]{2}){5} (?!-[0-9a-f])
      | (?<![0-9a-f]\.) [0-9a-f]{4}(?:\.[0-9a-f]{4}){2} (?!\.[0-9a-f])
    )(?![0-9a-f])
    """,
    re.IGNORECASE | re.VERBOSE,
)
_SEPARATORS = re.compile(r"[:.-]")


def _is_device_mac(compact: str) -> bool:
    """False for the all-zero address and for group (multicast/broadcast) addresses."""
    return compact != "000000000000" and not int(compact[:2], 16) & 1


def macs_in_text(text: str) -> frozenset[str]:
    """The MACs (``0004f2aabbcc`` form) standing as whole tokens in `text`."""
    cleaned = _UUID.sub(" ", text)
    found = (_SEPARATORS.sub("", m.group(0)).lower() for m in _MAC.finditer(cleaned))
    return frozenset(mac for mac in found if _is_device_mac(mac))


def _subject_values(peercert: Mapping[str, Any]) -> Iterator[str]:
    """Values of the read attributes; tolerant of anything malformed (it is skipped)."""
    subject = peercert.get("subject", ())
    if not isinstance(subject, tuple | list):
        return
    for rdn in subject:
        if not isinstance(rdn, tuple | list):
            continue
        for pair in rdn:
            if (
                isinstance(pair, tuple | list)
                and len(pair) == 2
                and pair[0] in SUBJECT_ATTRIBUTES
                and isinstance(pair[1], str)
            ):
                yield pair[1]


def _san_values(peercert: Mapping[str, Any]) -> Iterator[str]:
    entries = peercert.get("subjectAltName", ())
    if not isinstance(entries, tuple | list):
        return
    for entry in entries:
        if (
            isinstance(entry, tuple | list)
            and len(entry) == 2
            and entry[0] in SAN_TYPES
            and isinstance(entry[1], str)
        ):
            yield entry[1]


def certificate_macs(peercert: Mapping[str, Any]) -> frozenset[str]:
    """The MACs (12 lowercase hex digits) a client certificate names; empty when none.

    `peercert` is the dict form of `ssl.SSLSocket.getpeercert()` ("subject": tuple of RDN
    tuples of (attribute, value) pairs; "subjectAltName": tuple of (type, value)). Never
    raises: a malformed entry is ignored. A certificate may name several MACs (e.g. a CN and
    a SAN); the caller accepts a request when the requested MAC is among them.
    """
    macs: set[str] = set()
    for value in (*_subject_values(peercert), *_san_values(peercert)):
        macs |= macs_in_text(value)
    return frozenset(macs)
