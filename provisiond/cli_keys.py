"""The key subcommands of `provisiond`: a user's or a device's programmable keys.

`provisiond phone-keys show --user ID | --device ID` prints the keys as JSON;
`provisiond phone-keys set --user ID | --device ID FILE` replaces them with FILE's (JSON: a
list of {type, value, label, position?} or {"keys": [...]}; "-" reads stdin), under the same
rules as the API (provisiond/domain/keys.py, docs/phones.md).
"""

from __future__ import annotations

import argparse
from typing import Any

from provisiond.cli_fleet import read_text
from provisiond.cli_ops import actor
from provisiond.cli_table import Entry, Group, OneOf, admin, arg
from provisiond.frontends.admin_http import load_json
from provisiond.services import Services

OWNER = OneOf(
    (
        arg("--user", dest="user_id", type=int, help="the keys that follow a user"),
        arg("--device", dest="device_id", type=int, help="a device's own keys"),
    ),
    required=True,
)


async def keys_show(s: Services, a: argparse.Namespace) -> Any:
    """The user's or the device's keys."""
    if a.user_id is not None:
        return await s.keys.user_keys(a.user_id)
    return await s.keys.device_keys(a.device_id)


async def keys_set(s: Services, a: argparse.Namespace) -> Any:
    """Replace them with FILE's."""
    data = load_json(read_text(a.file), field="file")
    keys = data["keys"] if isinstance(data, dict) and set(data) == {"keys"} else data
    if a.user_id is not None:
        return await s.keys.set_user_keys(a.user_id, keys, actor=actor())
    return await s.keys.set_device_keys(a.device_id, keys, actor=actor())


TABLE: tuple[Entry, ...] = (
    Group("phone-keys", "programmable keys (BLF, speed dial, park, DND, line, URL)"),
    admin("phone-keys show", "a user's keys, or a device's own and shown keys", keys_show, OWNER),
    admin(
        "phone-keys set",
        "replace a user's or a device's keys with FILE's (JSON list; '-' reads stdin)",
        keys_set,
        OWNER,
        arg("file", metavar="FILE"),
    ),
)
