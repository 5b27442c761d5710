"""Bulk import: the database facts the checks and rules need, read once, and the checks of the
lines against them.

`read_facts` reads the catalogue, the users, the devices and the device accounts in four
queries (the catalogue whole: the key checks of provisiond.services.fleet_keys need each
model's key positions and vendor). `FactChecker` is then called on every line while it is
parsed (fleet_rows.parse_row): the model is in the catalogue, a device's MAC is new, an
extension is new among every device and account (as DeviceService.create and
AccountService.put check it, with their messages); it also notes which MAC each slot-1 line
declares, and every extension and main extension a line names (a BLF key may watch an
extension the same file creates). After the whole file is parsed, `FactChecker.accounts`
checks each account line (slot 2 and up) against its device, declared by a slot-1 line of the
file or stored: the device exists, the line names its model, the model carries that many
accounts (provisiond.domain.catalogue.account_limit_problem, the message AccountService
gives), and the slot is not taken in the database. Every problem is a
`LineError` on the line and the column at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain import device_rules
from provisiond.domain.catalogue import account_limit_problem
from provisiond.domain.errors import Conflict, DomainError
from provisiond.domain.mac import mac_colon, mac_compact
from provisiond.services.fleet_rows import ImportRow, LineError
from provisiond.storage.models import Device, DeviceAccount, DeviceModel, User


@dataclass(frozen=True, slots=True)
class UserFact:
    """What the planner needs of an existing user."""

    id: int
    display_name: str
    main_extension: str
    primary_device_id: int | None
    primary_account_id: int | None

    @property
    def has_primary(self) -> bool:
        """Whether the user has a primary line (a device or an account)."""
        return self.primary_device_id is not None or self.primary_account_id is not None


@dataclass(frozen=True, slots=True)
class DeviceFact:
    """A stored device: id, owner and model."""

    id: int
    owner: int | None
    model: str


@dataclass(frozen=True, slots=True)
class Holder:
    """Who has an extension: slot 1 of a device (the device itself) or one of its accounts."""

    device_id: int
    slot: int
    owner: int | None


@dataclass
class Facts:
    """What the checks and the rules need to know about the database, read once."""

    models: dict[str, int]  # catalogue id -> how many SIP accounts the model carries
    catalogue: dict[str, DeviceModel]  # catalogue id -> the model (read-only here)
    users: dict[str, UserFact]  # by username
    mains: dict[str, int]  # main extension -> user id
    by_mac: dict[str, DeviceFact]  # 12 hex digits -> device
    by_extension: dict[str, Holder]  # every device's and every account's extension
    slots: set[tuple[int, int]]  # (device id, slot) of every stored account


async def read_facts(session: AsyncSession) -> Facts:
    """Catalogue, users, devices and accounts: four queries."""
    models = (await session.scalars(select(DeviceModel))).all()
    users = (
        await session.execute(
            select(
                User.id,
                User.username,
                User.display_name,
                User.main_extension,
                User.primary_device_id,
                User.primary_account_id,
            )
        )
    ).all()
    devices = (
        await session.execute(
            select(
                Device.id,
                type_coerce(Device.mac, String),
                Device.extension,
                Device.user_id,
                Device.model_id,
            )
        )
    ).all()
    accounts = (
        await session.execute(
            select(
                DeviceAccount.device_id,
                DeviceAccount.slot,
                DeviceAccount.extension,
                DeviceAccount.user_id,
            )
        )
    ).all()
    by_extension = {d.extension: Holder(d.id, 1, d.user_id) for d in devices}
    by_extension |= {a.extension: Holder(a.device_id, a.slot, a.user_id) for a in accounts}
    return Facts(
        models={m.id: m.accounts for m in models},
        catalogue={m.id: m for m in models},
        users={
            u.username: UserFact(
                u.id, u.display_name, u.main_extension, u.primary_device_id, u.primary_account_id
            )
            for u in users
        },
        mains={u.main_extension: u.id for u in users},
        by_mac={d[1]: DeviceFact(d.id, d.user_id, d.model_id) for d in devices},
        by_extension=by_extension,
        slots={(a.device_id, a.slot) for a in accounts},
    )


def check_extension_free(extension: str, holder: Holder | None) -> None:
    """An extension is new when no device and no account has it (the messages of
    provisiond.services.devices.check_extension_free)."""
    if holder is not None and holder.slot == 1:
        device_rules.check_extension_free(extension, holder=holder.device_id, device_id=None)
    elif holder is not None:
        raise Conflict(
            f"extension {extension} is already account {holder.slot} of device {holder.device_id}",
            field="extension",
        )


class FactChecker:
    """The checks of the lines against the facts: per line (`__call__`, the
    fleet_rows.FactCheck of `parse_rows`), then for the account lines (`accounts`)."""

    def __init__(self, facts: Facts) -> None:
        self.facts = facts
        # MAC -> (line, model or None when its model is bad) of each slot-1 line that parsed
        # far enough, good or not: an account line of a refused device is not "unknown".
        self.declared: dict[str, tuple[int, str | None]] = {}
        # Every extension and main extension a line names, good or not (if one is bad, the
        # import is refused anyway): what a BLF key of the file may watch besides the stored.
        self.extensions: set[str] = set()

    def __call__(self, line: int, values: Mapping[str, Any]) -> list[LineError]:
        """The catalogue, MAC and extension checks DeviceService.create makes, over the facts
        (`values`: the fields of the line that parsed)."""
        found: list[LineError] = []

        def run(rule: Callable[..., object], *args: Any, **kwargs: Any) -> None:
            try:
                rule(*args, **kwargs)
            except DomainError as exc:
                found.append(LineError(line, exc.field or "row", exc.detail))

        model, mac, extension = values.get("model"), values.get("mac"), values.get("extension")
        if model is not None:
            run(device_rules.check_model_known, model, self.facts.models)
        if mac is not None and values.get("slot") == 1:
            key = mac_compact(mac)
            self.declared.setdefault(key, (line, model))
            stored = self.facts.by_mac.get(key)
            holder = None if stored is None else stored.id
            run(device_rules.check_mac_free, mac, holder=holder, device_id=None)
        if extension is not None:
            run(check_extension_free, extension, self.facts.by_extension.get(extension))
            self.extensions.add(extension)
        if values.get("main_extension") is not None:
            self.extensions.add(values["main_extension"])
        return found

    def accounts(self, rows: list[ImportRow], errors: list[LineError]) -> list[ImportRow]:
        """Each account line against its device; the rows without the refused ones."""
        bad: set[int] = set()
        for row in rows:
            if row.is_account:
                problems = self._account(row)
                errors.extend(problems)
                if problems:
                    bad.add(row.line)
        return [row for row in rows if row.line not in bad] if bad else rows

    def _account(self, row: ImportRow) -> list[LineError]:
        mac = mac_colon(row.mac)
        device_id: int | None = None
        declared = self.declared.get(row.mac_key)
        stored = self.facts.by_mac.get(row.mac_key)
        if declared is not None:
            model, where = declared[1], f"on line {declared[0]}"
        elif stored is not None:
            model, where, device_id = stored.model, f"device {stored.id}", stored.id
        else:
            detail = (
                f"no device {mac} in the database or on a line of this file with slot 1; "
                f"account {row.slot} needs its device"
            )
            return [LineError(row.line, "mac", detail)]
        if model is None:
            return []  # the device's own line is refused (a bad model): reported there
        found = []
        if row.model != model:
            detail = f"{mac} is a {model} ({where}), not a {row.model}"
            found.append(LineError(row.line, "model", detail))
        limit = self.facts.models.get(model)
        problem = None if limit is None else account_limit_problem(row.slot, limit, model)
        if problem is not None:
            found.append(LineError(row.line, "slot", problem))
        elif device_id is not None and (device_id, row.slot) in self.facts.slots:
            detail = (
                f"account {row.slot} of device {device_id} ({mac}) exists already; change it "
                f"with PUT /api/v1/devices/{device_id}/accounts/{row.slot}"
            )
            found.append(LineError(row.line, "slot", detail))
        return found
