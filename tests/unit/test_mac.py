"""MAC parsing: the four notations admins type are accepted, typing mistakes are refused."""

from __future__ import annotations

from typing import Any

import netaddr
import pytest

from provisiond.domain.errors import InvalidInput
from provisiond.domain.mac import (
    EXAMPLE,
    compact_from_any,
    mac_colon,
    mac_compact,
    normalise_mac,
    parse_mac,
)

CANONICAL = "00:15:65:aa:bb:cc"


@pytest.mark.parametrize(
    "text",
    [
        "001565aabbcc",
        "001565AABBCC",
        "001565AaBbCc",
        "00:15:65:aa:bb:cc",
        "00:15:65:AA:BB:CC",
        "00-15-65-aa-bb-cc",
        "00-15-65-AA-BB-CC",
        "0015.65aa.bbcc",
        "0015.65AA.BBCC",
        " 00:15:65:aa:bb:cc\t",  # surrounding whitespace from copy and paste
        "001565aabbcc\n",
    ],
)
def test_accepted_notations_give_the_canonical_form(text: str) -> None:
    assert normalise_mac(text) == CANONICAL
    mac = parse_mac(text)
    assert mac_colon(mac) == CANONICAL
    assert mac_compact(mac) == "001565aabbcc"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("0:15:65:a:b:c", id="unpadded-octets"),
        pytest.param("001565aabbc", id="11-digits"),
        pytest.param("001565aabbccd", id="13-digits"),
        pytest.param("00:15:65:ff:fe:aa:bb:cc", id="eui-64"),
        pytest.param("0015:65ff:feaa:bbcc", id="eui-64-dotless"),
        pytest.param("00:15:65:aa:bb:ccx", id="trailing-junk"),
        pytest.param("00:15:65:aa:bb:cc;", id="trailing-semicolon"),
        pytest.param("00:15:65:aa:bb:cc x", id="trailing-word"),
        pytest.param("00:15:65-aa:bb:cc", id="mixed-separators"),
        pytest.param("00:15:65:aa:bb:cg", id="non-hex"),
        pytest.param("zz15.65aa.bbcc", id="non-hex-cisco"),
        pytest.param("001565.aabbcc", id="wrong-grouping"),
        pytest.param("00 15 65 aa bb cc", id="spaces"),
        pytest.param("0x001565aabbcc", id="hex-prefix"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="blank"),
        pytest.param("None", id="none-text"),
        pytest.param("null", id="null-text"),
        pytest.param("００1565aabbcc", id="fullwidth-digits"),
    ],
)
def test_rejected_inputs_show_an_accepted_form(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_mac(text)
    assert info.value.field == "mac"
    assert EXAMPLE in info.value.detail
    assert repr(text) in info.value.detail


@pytest.mark.parametrize("value", [None, 1565, b"001565aabbcc", ["001565aabbcc"]])
def test_non_strings_are_rejected_not_crashed(value: Any) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_mac(value)
    assert EXAMPLE in info.value.detail


def test_the_field_name_is_passed_through() -> None:
    with pytest.raises(InvalidInput) as info:
        normalise_mac("nope", field="devices[3].mac")
    assert info.value.field == "devices[3].mac"


def test_parsed_mac_is_a_48_bit_eui() -> None:
    mac = parse_mac("0015.65aa.bbcc")
    assert mac == netaddr.EUI("00-15-65-AA-BB-CC")
    assert mac.version == 48


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("001565AABBCC", "001565aabbcc"),
        ("00:15:65:aa:bb:cc", "001565aabbcc"),
        ("00-15-65-AA-BB-CC", "001565aabbcc"),
        ("0015.65aa.bbcc", "001565aabbcc"),
        ("001565aabbc", None),  # 11 digits
        ("001565aabbccdd", None),  # 14 digits
        ("00:15:65:aa:bb:cc:dd", None),
        ("00::15::65::aa::bb::cc", None),  # 12 digits but too long to be a MAC notation
        ("", None),
        ("cfg", None),
    ],
)
def test_lenient_phone_side_form(text: str, expected: str | None) -> None:
    assert compact_from_any(text) == expected
