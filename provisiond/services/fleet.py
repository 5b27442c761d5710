"""Fleet operations: bulk import (all or nothing), export, and the Asterisk export.

Import, in one `Database.write()` transaction:
1. the facts the checks and rules need (catalogue, users, devices, accounts) are read once, in
   bulk (provisiond.services.fleet_facts);
2. every line is checked alone, against the facts and against the others
   (provisiond.services.fleet_rows), then each account line against its device (fleet_facts);
3. each user's lines are planned (provisiond.services.fleet_plan) with the same pure rules
   the single-object services call (provisiond.domain.rules: main extension free, a line's
   extension vs other users' main extensions, rule 1 `primary_after_assign`, rule 2
   `select_primary`);
4. the key lists (columns ``keys`` and ``device_keys``) are checked as the keys API checks
   them, against the file and the facts (provisiond.services.fleet_keys);
5. any problem on any line raises `ImportRefused` with all of them: the transaction rolls back
   and nothing changes;
6. otherwise users, devices, accounts and keys are inserted in bulk, primaries set (BLF keys
   follow a main extension rule 2 moved), unprovisioned records of the MACs claimed, and one
   audit row per created or changed object and per key list is written (the audit log is the
   change feed: serving processes pick the new devices and keys up from it).

Why not call `DeviceService.create` per line: each call is about 30 statements, about 15 ms a
line on SQLite; 10,000 lines would take minutes instead of seconds. So the facts are gathered
once and the rules are applied to them; the rules themselves are not rewritten.

Import semantics: each line with slot 1 (the default) creates a device (its MAC and extension
must be new) and, with a username, assigns it. A line with slot 2 and up creates that account
of the device with its MAC (created by a slot-1 line of the file, or stored), with a new
extension, and with a username assigns it as a device would be (DESIGN.md, "Accounts": the
rules hold per line). A missing user is created with the line's display name and the main
extension given, else the extension of its primary line, else of its first line. Lines are
assigned primary line first when the user has no primary yet (rule 1: it becomes primary and
the main extension stays); when the user already has a primary (a device or an account), a
line marked primary is selected afterwards (rule 2: the main extension becomes its extension;
reported).

Keys: ``keys`` (a user's, on a line with a username) and ``device_keys`` (the device's own, on
its slot-1 line) are key lists as the keys API takes them (in CSV the list's JSON text). As
with the other columns an import creates and never edits: a new user or device gets the list
(an empty cell: none); an existing user keeps their keys: an empty cell leaves them, a list
must be the stored one; a user's lines must not disagree (provisiond.services.fleet_keys has
the details). The export writes both, so an export re-imports to the same keys.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import delete, insert, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlalchemy.types import String

from provisiond.services.asterisk import AsteriskConfig, asterisk_config
from provisiond.services.context import ServiceContext, audit
from provisiond.services.devices import check_sip_username, credentials, generate_password
from provisiond.services.fleet_facts import FactChecker, Facts, read_facts
from provisiond.services.fleet_keys import (
    KeyChange,
    KeyPlan,
    follow_main_extensions,
    key_lists,
    plan_keys,
    write_keys,
)
from provisiond.services.fleet_plan import UserPlan, plan_all
from provisiond.services.fleet_rows import (
    COLUMNS,
    ImportRefused,
    ImportRow,
    LineError,
    RawRow,
    csv_cell,
    csv_rows,
    json_rows,
    parse_rows,
)
from provisiond.services.keys import key_types_of
from provisiond.services.platform import effective_platform
from provisiond.services.views import device_view, user_view
from provisiond.settings import TeamAppDefaults
from provisiond.storage.models import (
    AuditEntry,
    Device,
    DeviceAccount,
    UnprovisionedDevice,
    User,
    utcnow,
)

__all__ = ["COLUMNS", "AsteriskConfig", "FleetService", "ImportRefused", "LineError"]
_CHUNK = 500  # ids per IN (...) list: well under every backend's parameter limit


class FleetService:
    """Bulk import and export (CLI and /api/v1/import, /api/v1/export) and the Asterisk export."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def import_csv(self, text: str, actor: str) -> dict[str, Any]:
        """Import CSV text; all or nothing (`ImportRefused` lists every bad line)."""
        return await self.import_rows(csv_rows(text), actor)

    async def import_json(self, data: Any, actor: str) -> dict[str, Any]:
        """Import JSON rows (a list, or {"rows": [...]}); all or nothing."""
        return await self.import_rows(json_rows(data), actor)

    async def import_rows(self, raw: list[RawRow], actor: str) -> dict[str, Any]:
        """Validate every row, then create everything in one transaction, or nothing."""
        errors: list[LineError] = []
        async with self.ctx.db.write() as session:
            facts = await read_facts(session)
            check = FactChecker(facts)
            rows = check.accounts(parse_rows(raw, errors, check), errors)
            plans = plan_all(rows, facts, errors)
            keys = await plan_keys(session, rows, facts, check.extensions, self._types, errors)
            if errors:
                raise ImportRefused(errors)
            return await self._apply(session, rows, plans, keys, facts, actor)

    def _types(self, vendor: str) -> tuple[str, ...]:
        return key_types_of(self.ctx, vendor)

    def _device(self, row: ImportRow, owner: int | None) -> dict[str, Any]:
        """A new device's columns, with DeviceService.create's defaults and secrets."""
        return {
            "extension": row.extension,
            "model_id": row.model,
            "mac": row.mac,
            "active": row.active,
            "user_id": owner,
            "label": row.label,
            **credentials(self.ctx.secrets, row.extension, None, None),
        }

    def _account(self, row: ImportRow, device_id: int, owner: int | None) -> dict[str, Any]:
        """A new account's columns, with AccountService.put's defaults and secrets (the
        extension as SIP user name, a strong random password, sealed)."""
        return {
            "device_id": device_id,
            "slot": row.slot,
            "extension": row.extension,
            "user_id": owner,
            "active": row.active,
            "label": row.label,
            "sip_username": check_sip_username(row.extension),
            "sip_password": self.ctx.secrets.encrypt(generate_password()),
        }

    async def _apply(
        self,
        session: AsyncSession,
        rows: list[ImportRow],
        plans: list[UserPlan],
        keys: KeyPlan,
        facts: Facts,
        actor: str,
    ) -> dict[str, Any]:
        """Write the plans. Bulk statements (one executemany each): ORM objects would cost a
        round trip per row here, since SQLite cannot batch INSERT ... RETURNING."""
        defaults = (await effective_platform(session, self.ctx.settings.platform)).team_app
        old_ids = [p.user_id for p in plans if p.user_id is not None]
        before = {u.id: user_view(u, defaults) for u in await _load_users(session, old_ids)}
        devices = [row for row in rows if not row.is_account]
        accounts = [row for row in rows if row.is_account]
        # Stored devices that get accounts: their views before, for the audit.
        stored = sorted({facts.by_mac[r.mac_key].id for r in accounts if r.mac_key in facts.by_mac})
        changed = {d.id: device_view(d) for d in await _load_devices(session, stored)}
        created = [p for p in plans if p.user_id is None]
        if created:
            await session.execute(
                insert(User),
                [
                    {
                        "username": p.username,
                        "display_name": p.display_name,
                        "main_extension": p.main_extension,
                    }
                    for p in created
                ],
            )
        user_ids = {p.username: p.user_id for p in plans if p.user_id is not None}
        user_ids |= await _ids(session, User.username, [p.username for p in created])
        owner = {row.line: user_ids[p.username] for p in plans for row in p.order}
        if devices:
            await session.execute(
                insert(Device), [self._device(row, owner.get(row.line)) for row in devices]
            )
        device_ids = await _ids(session, Device.mac, [row.mac for row in devices])
        if accounts:
            # A slot-1 line of the file creates the device, else it is stored (fleet_facts).
            macs = {row.mac_key for row in accounts}
            base = {key: device_ids.get(key) or facts.by_mac[key].id for key in macs}
            await session.execute(
                insert(DeviceAccount),
                [self._account(row, base[row.mac_key], owner.get(row.line)) for row in accounts],
            )
        account_ids = await _ids(session, DeviceAccount.extension, [r.extension for r in accounts])
        line_ids = {row.line: device_ids[row.mac_key] for row in devices}
        line_accounts = {row.line: account_ids[row.extension] for row in accounts}
        changes = [
            {
                "id": user_ids[p.username],
                "main_extension": p.main_extension,
                "primary_device_id": line_ids.get(p.primary_line),
                "primary_account_id": line_accounts.get(p.primary_line),
            }
            for p in plans
            if p.primary_line is not None
        ]
        if changes:
            await session.execute(update(User), changes)
        key_changes = await write_keys(session, keys, user_ids, device_ids)
        moved = [(user_ids[p.username], p.old_main, p.main_extension) for p in plans if p.old_main]
        await follow_main_extensions(session, moved)
        for chunk in _chunks([row.mac for row in devices]):
            await session.execute(
                delete(UnprovisionedDevice).where(UnprovisionedDevice.mac.in_(chunk))
            )
        summary = _summary(rows, plans)
        await self._audit(
            session,
            actor,
            defaults,
            before,
            changed,
            list(user_ids.values()),
            list(line_ids.values()),
            key_changes,
            summary,
        )
        return summary

    async def _audit(
        self,
        session: AsyncSession,
        actor: str,
        defaults: TeamAppDefaults,
        before: dict[int, dict[str, Any]],
        changed: dict[int, dict[str, Any]],
        user_ids: list[int],
        device_ids: list[int],
        key_changes: list[KeyChange],
        summary: dict[str, Any],
    ) -> None:
        """One audit row per created device (its view lists its accounts), per stored device
        that got accounts (`changed`, their views before: ``device.account_put``, which the
        phone directory and resync on change re-read), per created or changed user (`before`:
        the views of those that existed; the change feed re-reads exactly those), per key list
        written ("user.keys_set", "device.keys_set", as KeyService writes them), and one for
        the import; written in one executemany."""
        session.expunge_all()  # re-read what the bulk statements wrote
        entries = [
            _entry(actor, "device.create", "device", d.id, None, device_view(d))
            for d in await _load_devices(session, device_ids)
        ]
        for device in await _load_devices(session, list(changed)):
            old, after = changed[device.id], device_view(device)
            slots = {a["slot"] for a in after["accounts"]} - {a["slot"] for a in old["accounts"]}
            after["slots"] = sorted(slots)  # the slots the import added
            entries.append(_entry(actor, "device.account_put", "device", device.id, old, after))
        for user in await _load_users(session, user_ids):
            action = "user.assign_device" if user.id in before else "user.create"
            after = user_view(user, defaults)
            entries.append(_entry(actor, action, "user", user.id, before.get(user.id), after))
        entries += [_entry(actor, *change) for change in key_changes]
        entries.append(_entry(actor, "fleet.import", "fleet", None, None, summary))
        await session.execute(insert(AuditEntry), entries)

    async def export_rows(self) -> list[dict[str, Any]]:
        """Every device with its user, as import rows (users first by name, primary first),
        each followed by its further accounts in slot order (slot 2 and up, each with its own
        user). ``keys``: the user's keys on every line of the user; ``device_keys``: the
        device's own on its slot-1 line; each the API's list, or None when there are none."""
        query = select(
            type_coerce(Device.mac, String).label("mac"),
            Device.id,
            Device.model_id,
            Device.extension,
            Device.active,
            Device.label,
            Device.user_id,
            User.username,
            User.display_name,
            User.main_extension,
            User.primary_device_id,
        ).outerjoin(User, User.id == Device.user_id)
        accounts = (
            select(
                DeviceAccount.id,
                DeviceAccount.device_id,
                DeviceAccount.slot,
                DeviceAccount.extension,
                DeviceAccount.active,
                DeviceAccount.label,
                DeviceAccount.user_id,
                User.username,
                User.display_name,
                User.main_extension,
                User.primary_account_id,
            )
            .outerjoin(User, User.id == DeviceAccount.user_id)
            .order_by(DeviceAccount.device_id, DeviceAccount.slot)
        )
        async with self.ctx.db.read() as session:
            found = list((await session.execute(query)).all())
            extra = (await session.execute(accounts)).all()
            user_keys, device_keys = await key_lists(session)
        found.sort(
            key=lambda r: (
                r.username is None,
                r.username or "",
                r.primary_device_id != r.id,
                len(r.extension),
                r.extension,
            )
        )
        by_device: dict[int, list[Any]] = {}
        for account in extra:
            by_device.setdefault(account.device_id, []).append(account)
        rows = []
        for r in found:
            mac = ":".join(r.mac[i : i + 2] for i in range(0, 12, 2))
            row = _export_row(r, mac, r.model_id, 1, r.primary_device_id == r.id)
            row["keys"] = user_keys.get(r.user_id)
            row["device_keys"] = device_keys.get(r.id)
            rows.append(row)
            for a in by_device.get(r.id, ()):
                row = _export_row(a, mac, r.model_id, a.slot, a.primary_account_id == a.id)
                row["keys"] = user_keys.get(a.user_id)
                row["device_keys"] = None
                rows.append(row)
        return rows

    async def export_csv(self) -> str:
        """The export as CSV with a header (the columns the import takes).

        A text that a spreadsheet would run as a formula (``=HYPERLINK(...)`` as a display
        name) is written with a leading single quote; the CSV import removes it again
        (provisiond.services.fleet_rows.csv_cell and csv_value). The JSON export is verbatim.
        """
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in await self.export_rows():
            writer.writerow([_csv(row[c]) for c in COLUMNS])
        return out.getvalue()

    async def asterisk(self, actor: str) -> AsteriskConfig:
        """PJSIP sections for every device and the dialplan (passwords in clear; audited)."""
        async with self.ctx.db.write() as session:
            defaults = (await effective_platform(session, self.ctx.settings.platform)).team_app
            users = (await session.scalars(select(User).options(selectinload(User.devices)))).all()
            loose = (await session.scalars(select(Device).where(Device.user_id.is_(None)))).all()
            config = asterisk_config(users, loose, defaults, self.ctx.secrets.decrypt)
            audit(
                session,
                actor,
                "fleet.export_asterisk",
                "fleet",
                None,
                None,
                {"endpoints": config.endpoints, "revealed": ["sip_password"]},
            )
        return config


def _csv(value: Any) -> str:
    """One exported cell: flags as 1/0, the slot as digits, a key list as its JSON text (it
    starts with ``[``, so `csv_cell` leaves it: no spreadsheet runs it, whatever its labels),
    text as `csv_cell` writes it."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return csv_cell(value or "")


def _export_row(r: Any, mac: str, model: str, slot: int, primary: bool) -> dict[str, Any]:
    """One export row (an import row): a device (slot 1) or an account, with its user."""
    return {
        "mac": mac,
        "model": model,
        "extension": r.extension,
        "username": r.username,
        "display_name": r.display_name,
        "primary": r.username is not None and primary,
        "main_extension": r.main_extension,
        "active": r.active,
        "label": r.label,
        "slot": slot,
    }


async def _load_users(session: AsyncSession, ids: Sequence[int]) -> list[User]:
    users: list[User] = []
    for chunk in _chunks(list(ids)):
        query = select(User).where(User.id.in_(chunk)).options(selectinload(User.devices))
        users.extend((await session.scalars(query)).all())
    return users


async def _load_devices(session: AsyncSession, ids: Sequence[int]) -> list[Device]:
    devices: list[Device] = []
    for chunk in _chunks(list(ids)):
        devices.extend((await session.scalars(select(Device).where(Device.id.in_(chunk)))).all())
    return devices


async def _ids(session: AsyncSession, key: Any, values: Sequence[Any]) -> dict[str, int]:
    """Ids of the rows just inserted, by a unique column (username, or MAC as 12 hex digits)."""
    found: dict[str, int] = {}
    model = key.class_
    for chunk in _chunks(list(values)):
        query = select(type_coerce(key, String), model.id).where(key.in_(chunk))
        found.update(dict((await session.execute(query)).all()))
    return found


def _entry(
    actor: str, action: str, kind: str, object_id: int | None, before: Any, after: Any
) -> dict[str, Any]:
    """An audit row's columns, as provisiond.services.context.audit would fill them."""
    return {
        "at": utcnow(),
        "actor": actor,
        "action": action,
        "object_type": kind,
        "object_id": None if object_id is None else str(object_id),
        "before": before,
        "after": after,
    }


def _summary(rows: list[ImportRow], plans: list[UserPlan]) -> dict[str, Any]:
    accounts = sum(1 for row in rows if row.is_account)
    return {
        "lines": len(rows),
        "devices_created": len(rows) - accounts,
        "accounts_created": accounts,
        "users_created": sum(1 for p in plans if p.user_id is None),
        "users_updated": sum(1 for p in plans if p.user_id is not None),
        "main_extension_changed": [
            {"username": p.username, "old": p.old_main, "new": p.main_extension}
            for p in plans
            if p.old_main is not None
        ],
    }


def _chunks(items: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]
