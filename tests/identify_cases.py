"""Shared scaffolding for the per-vendor identification tests (tests/unit/test_identify_*.py).

Each vendor's test file keeps only its data tables (User-Agents it claims, User-Agents it must
not claim, boot file names, names that must match nothing) and hands them to `checks()`, which
turns every row into one pytest case calling the matching assertion below. Every assertion runs
against the real vendor description, loaded and validated by the real loader, so a row fails if
the vendor.toml stops matching what the phone really sends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache, partial

import pytest

from provisiond.domain.identify import FileKind, VendorSpec, match_path, parse_user_agent
from tests.template_checks import load as _load_uncached

__all__ = [
    "DOCUMENTED_USER_AGENTS",
    "assert_file",
    "assert_no_match",
    "assert_not_claimed",
    "assert_user_agent",
    "checks",
    "foreign_user_agents",
    "load",
]

# (User-Agent, model, firmware, MAC) and (path, kind, MAC, family): the rows of the data tables.
UserAgentRow = tuple[str, str, str | None, str | None]
FileRow = tuple[str, FileKind, str | None, str | None]

# One documented User-Agent per vendor (reference/vendors.md). cisco_sep has none: its phones
# boot over TFTP only and are identified by file name.
DOCUMENTED_USER_AGENTS: dict[str, str] = {
    "yealink": "Yealink SIP-T46G 28.72.0.1 00:15:65:4a:a9:37",
    "polycom": "FileTransport PolycomVVX-VVX_400-UA/4.1.4.7430 Type/Application",
    "cisco_spa": "Cisco/SPA508G-7.4.8a (0002FDFF2103)(CBT141400UK)",
    "grandstream": "Grandstream Model HW GXP2135 SW 1.0.7.97 DevId 000b828aa872",
    "snom": (
        "Mozilla/4.0 (compatible; snomD785-SIP 10.1.33.33 2010.12-00004-g9ba52f5 000413922D24"
        " SXM:0 UXM:0)"
    ),
    "fanvil": "Fanvil X4 2.10.2.6887 0c383e07e16c",
    "gigaset": "Gigaset N870 IP PRO/83.V2.11.0+build.a546b91;7C2F80E0D605",
    "aastra": "Aastra6731i MAC:00-08-5D-23-74-29 V:3.2.0.70-SIP",
    "panasonic": "Panasonic_KX-UT113/01.133 (0080f0c8c381)",
    "htek": "Htek UC926 2.0.4.2 00:1f:c1:00:00:00",
}


@cache
def load(vendor_id: str) -> VendorSpec:
    """The vendor description, loaded and validated once per session by the real loader."""
    return _load_uncached(vendor_id)


def foreign_user_agents(vendor_id: str) -> list[str]:
    """The User-Agents of every vendor but `vendor_id`: none of them may be claimed by it."""
    return [ua for other, ua in DOCUMENTED_USER_AGENTS.items() if other != vendor_id]


def assert_user_agent(
    vendor_id: str, user_agent: str, model: str, firmware: str | None, mac: str | None
) -> None:
    """`user_agent` is claimed by `vendor_id` with exactly this model, firmware and MAC."""
    info = parse_user_agent([load(vendor_id)], user_agent)
    assert info is not None, user_agent
    assert (info.vendor.id, info.model, info.firmware, info.mac) == (
        vendor_id,
        model,
        firmware,
        mac,
    )


def assert_not_claimed(vendor_id: str, user_agent: str) -> None:
    """`vendor_id` does not take `user_agent` for one of its phones."""
    assert parse_user_agent([load(vendor_id)], user_agent) is None


def assert_file(
    vendor_id: str, path: str, kind: FileKind, mac: str | None, family: str | None
) -> None:
    """`path` matches exactly one file spec of `vendor_id`, of `kind`, with these captures."""
    matches = match_path([load(vendor_id)], path)
    assert [(m.spec.kind, m.mac, m.family) for m in matches] == [(kind, mac, family)]


def assert_no_match(vendor_id: str, path: str) -> None:
    """`path` is not one of `vendor_id`'s names (or is malformed): it matches nothing."""
    assert match_path([load(vendor_id)], path) == []


def checks(
    vendor_id: str,
    user_agents: Iterable[UserAgentRow],
    not_user_agents: Iterable[str],
    files: Iterable[FileRow],
    not_files: Iterable[str],
) -> list[pytest.ParameterSet]:
    """One pytest case per table row, each a no-argument call of the matching assertion.

    Each User-Agent in `user_agents` is claimed with its model, firmware and MAC; none in
    `not_user_agents` is claimed; each name in `files` matches exactly one file spec, with its
    kind and captures; each name in `not_files` matches nothing.

    The case ids name the check and the row (`user_agent:...`, `not_file:...`), so a failure
    reads as which row of which table broke.
    """
    rows: list[tuple[str, Callable[[], None]]] = []
    for ua_row in user_agents:
        rows.append((f"user_agent:{ua_row[0]}", partial(assert_user_agent, vendor_id, *ua_row)))
    for ua in not_user_agents:
        rows.append((f"not_user_agent:{ua}", partial(assert_not_claimed, vendor_id, ua)))
    for file_row in files:
        rows.append((f"file:{file_row[0]}", partial(assert_file, vendor_id, *file_row)))
    for path in not_files:
        rows.append((f"not_file:{path}", partial(assert_no_match, vendor_id, path)))
    return [pytest.param(check, id=case_id) for case_id, check in rows]
