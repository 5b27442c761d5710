"""MAC extraction from client certificates (the dict form of SSLSocket.getpeercert())."""

from __future__ import annotations

from typing import Any

import pytest

from provisiond.domain.certs import certificate_macs, macs_in_text

MAC = "0004f2aabbcc"


def _cert(
    *attributes: tuple[str, str], san: tuple[tuple[str, str], ...] = (), **extra: Any
) -> dict[str, Any]:
    """A getpeercert() dict: one RDN per attribute, as Python renders a typical subject."""
    return {"subject": tuple((pair,) for pair in attributes), "subjectAltName": san, **extra}


# (description, certificate, expected MACs)
CERTIFICATES: list[tuple[str, dict[str, Any], set[str]]] = [
    ("CN is the bare MAC", _cert(("commonName", MAC)), {MAC}),
    ("CN upper case", _cert(("commonName", "0004F2AABBCC")), {MAC}),
    ("CN colon form", _cert(("commonName", "00:04:F2:aa:bb:cc")), {MAC}),
    ("CN dash form", _cert(("commonName", "00-04-f2-AA-BB-CC")), {MAC}),
    ("CN Cisco dotted form", _cert(("commonName", "0004.f2aa.bbcc")), {MAC}),
    ("Cisco MIC device name", _cert(("commonName", "SEP001122334455")), {"001122334455"}),
    (
        "Cisco MIC model and device name",
        _cert(
            ("organizationName", "Cisco Systems Inc."), ("commonName", "CP-7961G-SEP00112233AABB")
        ),
        {"00112233aabb"},
    ),
    (
        "Cisco SPA/MPP: MAC in S, hex-looking serial number in L is ignored",
        _cert(
            ("organizationalUnitName", "CP-8841-3PCC"),
            ("localityName", "88012BA01234"),
            ("stateOrProvinceName", "000e08abcdef"),
        ),
        {"000e08abcdef"},
    ),
    ("Polycom text", _cert(("commonName", "Polycom VVX 400 0004f2aabbcc")), {MAC}),
    ("Snom text", _cert(("commonName", "snom 000413922D24")), {"000413922d24"}),
    ("model-dash-MAC", _cert(("commonName", "GXP2170-000b82aabbcc")), {"000b82aabbcc"}),
    ("MAC= prefix", _cert(("commonName", "MAC=00:04:f2:aa:bb:cc")), {MAC}),
    ("serialNumber attribute", _cert(("commonName", "Yealink"), ("serialNumber", MAC)), {MAC}),
    ("OU attribute", _cert(("organizationalUnitName", f"device {MAC}")), {MAC}),
    ("UID attribute", _cert(("userId", MAC)), {MAC}),
    ("SAN DNS", _cert(("commonName", "phone"), san=(("DNS", f"{MAC}.phones.example"),)), {MAC}),
    ("SAN URI dev URN", _cert(san=(("URI", f"urn:dev:mac:{MAC}"),)), {MAC}),
    (
        "several places, several MACs",
        _cert(("commonName", MAC), san=(("DNS", "001565aabbcc.example"),)),
        {MAC, "001565aabbcc"},
    ),
    ("same MAC twice", _cert(("commonName", MAC), ("serialNumber", "00:04:f2:aa:bb:cc")), {MAC}),
    # Nothing to find
    ("no subject at all", {}, set()),
    ("CN a host name", _cert(("commonName", "prov.example.com")), set()),
    (
        "40-hex SHA-1 fingerprint",
        _cert(("commonName", "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3")),
        set(),
    ),
    (
        "colon-separated fingerprint",
        _cert(("organizationalUnitName", "A9:4A:8F:E5:CC:B1:9B:A6:1C:4C:08:73:D3:91:E9:87")),
        set(),
    ),
    ("EUI-64 colon form", _cert(("commonName", "00:04:f2:ff:fe:aa:bb:cc")), set()),
    ("13 hex digits", _cert(("commonName", "0004f2aabbcc1")), set()),
    ("11 hex digits", _cert(("commonName", "004f2aabbcc")), set()),
    ("hex model glued to MAC", _cert(("commonName", "snomD785000413922D24")), set()),
    ("UUID tail", _cert(san=(("URI", "urn:uuid:123e4567-e89b-12d3-a456-426614174000"),)), set()),
    ("all zero", _cert(("commonName", "000000000000")), set()),
    ("broadcast", _cert(("commonName", "ff:ff:ff:ff:ff:ff")), set()),
    ("multicast", _cert(("commonName", "01005e0000fb")), set()),
    ("locality holds a hex serial", _cert(("localityName", MAC)), set()),
    ("organization", _cert(("organizationName", MAC)), set()),
    ("email SAN is not read", _cert(san=(("email", f"{MAC}@example.com"),)), set()),
    ("IP SAN is not read", _cert(san=(("IP Address", "fe80::204:f2ff:feaa:bbcc"),)), set()),
    (
        "certificate serial number and issuer are not read",
        {"serialNumber": "0004F2AABBCC", "issuer": ((("commonName", MAC),),), "subject": ()},
        set(),
    ),
]


@pytest.mark.parametrize(
    ("certificate", "expected"),
    [pytest.param(cert, expected, id=desc) for desc, cert, expected in CERTIFICATES],
)
def test_certificate_macs(certificate: dict[str, Any], expected: set[str]) -> None:
    assert certificate_macs(certificate) == frozenset(expected)


def test_multi_valued_rdn() -> None:
    """An RDN may hold several attributes (e.g. CN+serialNumber in one set)."""
    cert = {"subject": ((("commonName", "Yealink T46U"), ("serialNumber", MAC)),)}
    assert certificate_macs(cert) == {MAC}


@pytest.mark.parametrize(
    "cert",
    [
        {"subject": "CN=0004f2aabbcc"},
        {"subject": (("commonName",),)},
        {"subject": ((("commonName", 12),),)},
        {"subject": (None, ((None, None),))},
        {"subjectAltName": ("DNS",)},
        {"subjectAltName": 5},
    ],
    ids=["subject-string", "short-pair", "non-string-value", "none-entries", "short-san", "int"],
)
def test_malformed_input_is_ignored(cert: dict[str, Any]) -> None:
    assert certificate_macs(cert) == frozenset()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0004f2aabbcc 001565AABBCC", {MAC, "001565aabbcc"}),
        ("(0004f2aabbcc)", {MAC}),
        ("x0004f2aabbcc", {MAC}),
        ("mac:0004f2aabbcc", {MAC}),
        ("mac:00:04:f2:aa:bb:cc", set()),  # documented: "c:" continues the colon run
        ("0004.f2aa.bbcc.example", set()),
        ("00-04-f2-aa-bb-cc-dd", set()),
        ("", set()),
    ],
)
def test_macs_in_text(text: str, expected: set[str]) -> None:
    assert macs_in_text(text) == frozenset(expected)
