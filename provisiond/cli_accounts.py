"""The account subcommands of `provisiond`: a device's SIP accounts in slots 2 and up.

`provisiond account list|set|remove` (docs/operations.md): `set` creates or replaces
the account in a slot (its extension, owner, SIP credentials, label), `remove` deletes it;
both follow the same rules as the API (DESIGN.md, "Accounts") and print the device as JSON.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from provisiond.cli_ops import actor
from provisiond.cli_table import Entry, Group, admin, arg
from provisiond.domain.errors import InvalidInput
from provisiond.domain.rules import LineRef
from provisiond.services import Services
from provisiond.services.commands import AccountPut

_LINE = re.compile(r"([0-9]{1,10})(?:/([0-9]{1,4}))?")


def line_ref(text: str | None) -> LineRef | None:
    """``DEVICE`` or ``DEVICE/SLOT`` (a user's line) as a `LineRef`."""
    if text is None:
        return None
    match = _LINE.fullmatch(text)
    if match is None:
        raise InvalidInput(
            f"{text!r} is not DEVICE or DEVICE/SLOT (e.g. 12 or 12/3)", field="new_primary"
        )
    return LineRef(int(match.group(1)), int(match.group(2) or 1))


async def account_set(s: Services, a: argparse.Namespace) -> Any:
    """Create or replace an account."""
    cmd = AccountPut(
        extension=a.extension,
        user_id=a.user_id,
        sip_username=a.sip_username,
        sip_password=a.sip_password,
        label=a.label,
        active=not a.inactive,
    )
    return await s.accounts.put(a.device, a.slot, cmd, move=a.move, actor=actor())


async def account_remove(s: Services, a: argparse.Namespace) -> Any:
    """Remove an account."""
    return await s.accounts.delete(
        a.device, a.slot, new_primary=line_ref(a.new_primary), actor=actor()
    )


DEVICE = arg("device", type=int)
SLOT = arg("slot", type=int, help="2 up to the model's accounts (1 is the device itself)")

TABLE: tuple[Entry, ...] = (
    Group("account", "a device's further SIP accounts (DECT handsets, ATA ports, lines)"),
    admin(
        "account list",
        "every account of a device, slot 1 first, and how many the model carries",
        lambda s, a: s.accounts.list(a.device),
        DEVICE,
    ),
    admin(
        "account set",
        "create or replace the account in SLOT",
        account_set,
        DEVICE,
        SLOT,
        arg("--extension", required=True),
        arg("--user", dest="user_id", type=int, help="the account's owner"),
        arg("--move", action="store_true", help="take it from another user"),
        arg("--sip-username", dest="sip_username", help="default: the extension"),
        arg("--sip-password", dest="sip_password", help="default: kept, or generated"),
        arg("--label"),
        arg("--inactive", action="store_true"),
    ),
    admin(
        "account remove",
        "remove the account in SLOT; its owner's primary needs --new-primary when they have "
        "other lines",
        account_remove,
        DEVICE,
        SLOT,
        arg("--new-primary", dest="new_primary", metavar="DEVICE[/SLOT]"),
    ),
)
