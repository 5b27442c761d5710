"""The in-memory phone directory: every device, model, site and setting the phone side needs.

Built once at start-up with a handful of Core queries (no ORM objects: 100,000 devices load in
about a second), then kept current by the change feed (provisiond.provisioning.changes): each
audit row names what changed, and only that is re-read. Phone requests never touch the
database; a lookup is a dictionary access.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import unicodedata
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, or_, select, type_coerce

from provisiond.domain import policy
from provisiond.domain.keys import PhoneKey, effective_keys
from provisiond.provisioning.changes import FAN_OUT_ACTIONS, Change, fanned_out
from provisiond.provisioning.directory import (
    ModelInfo,
    PhoneAccount,
    Phonebook,
    PhonebookEntry,
    PhoneDevice,
    policy_site,
)
from provisiond.services.platform import effective_platform
from provisiond.settings import PlatformSettings
from provisiond.storage.database import Database
from provisiond.storage.models import (
    Device,
    DeviceAccount,
    DeviceKey,
    DeviceModel,
    Site,
    User,
    UserKey,
)

log = logging.getLogger(__name__)
_revisions = itertools.count(1)

# Audit object types that change what phones get (everything else — tokens, licences, bans —
# does not).
_DEVICE_TYPES = frozenset({"device"})
_USER_TYPES = frozenset({"user"})
_GLOBAL_TYPES = frozenset({"settings", "site", "keys"})
_RELOAD_ALL_TYPES = frozenset({"keys", "catalogue"})


def _device_query() -> Any:  # a Select of the columns below
    return select(
        Device.id,
        type_coerce(Device.mac, String).label("mac"),
        Device.extension,
        Device.model_id,
        Device.active,
        Device.sip_username,
        Device.sip_password,
        Device.provisioning_password,
        Device.label,
        Device.site_id,
        # Raw values: SQLAlchemy's per-row datetime processing was a third of loading
        # 100,000 devices; `_when` parses the raw text with datetime.fromisoformat.
        type_coerce(Device.updated_at, String).label("updated_at"),
        Device.user_id,
        Device.last_seen_firmware,
        User.display_name,
        User.main_extension,
        User.cli_custom,
        type_coerce(User.updated_at, String).label("user_updated_at"),
    ).outerjoin(User, User.id == Device.user_id)


def _account_query() -> Any:  # a Select of the columns `_account` unpacks
    return (
        select(
            DeviceAccount.device_id,
            DeviceAccount.slot,
            DeviceAccount.extension,
            DeviceAccount.active,
            DeviceAccount.sip_username,
            DeviceAccount.sip_password,
            DeviceAccount.label,
            User.display_name,
            User.main_extension,
            User.cli_custom,
            DeviceAccount.user_id,
        )
        .outerjoin(User, User.id == DeviceAccount.user_id)
        .order_by(DeviceAccount.device_id, DeviceAccount.slot)
    )


def _accounts(rows: Iterable[Any]) -> dict[int, tuple[PhoneAccount, ...]]:
    """Device id -> its further accounts, by slot (rows come ordered)."""
    found: dict[int, list[PhoneAccount]] = {}
    for device_id, *fields in rows:
        found.setdefault(device_id, []).append(PhoneAccount(*fields))
    return {device_id: tuple(accounts) for device_id, accounts in found.items()}


def _keys(rows: Iterable[Any]) -> dict[int, tuple[PhoneKey, ...]]:
    """Owner id -> its keys by position (rows: owner, position, type, value, label; ordered)."""
    found: dict[int, list[PhoneKey]] = {}
    for owner, *fields in rows:
        found.setdefault(owner, []).append(PhoneKey(*fields))
    return {owner: tuple(keys) for owner, keys in found.items()}


def _user_keys_query() -> Any:
    return select(
        UserKey.user_id, UserKey.position, UserKey.type, UserKey.value, UserKey.label
    ).order_by(UserKey.user_id, UserKey.position)


def _device_keys_query() -> Any:
    return select(
        DeviceKey.device_id, DeviceKey.position, DeviceKey.type, DeviceKey.value, DeviceKey.label
    ).order_by(DeviceKey.device_id, DeviceKey.position)


def _phonebook_query() -> Any:
    return select(
        User.id,
        User.display_name,
        User.main_extension,
        User.team_app_enabled,
        User.team_app_gsm_mode,
        User.team_app_gsm_number,
    )


def _entry(row: Any) -> PhonebookEntry:
    _, name, extension, app, gsm_mode, gsm_number = row
    # The mobile only where the user's Team App is on and rings their GSM number.
    return PhonebookEntry(name, extension, gsm_number if app and gsm_mode and gsm_number else None)


def _by_name(entry: PhonebookEntry) -> tuple[str, str, str]:
    """Sort key of the phone book: by name as people read it, accents aside ("Àlvaro" with
    the A's, not after "Zoe"), then exactly, then by extension."""
    plain = "".join(
        c for c in unicodedata.normalize("NFKD", entry.name) if not unicodedata.combining(c)
    )
    return plain.casefold(), entry.name, entry.extension


def _model_info(m: DeviceModel) -> ModelInfo:
    return ModelInfo(
        m.id,
        m.vendor,
        m.name,
        m.family,
        m.series,
        m.accounts,
        m.line_keys,
        m.expansion_modules,
        m.handsets,
        m.module_keys,
    )


def _when(value: Any) -> datetime:
    """A stored timestamp as an aware UTC datetime (SQLite gives text, PostgreSQL datetimes)."""
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


class MemoryDirectory:
    """`PhoneDirectory` from memory, patched by the change feed."""

    def __init__(self, db: Database, defaults: PlatformSettings) -> None:
        self._db = db
        self._defaults = defaults
        self._by_mac: dict[str, PhoneDevice] = {}
        self._by_id: dict[int, PhoneDevice] = {}
        self._models: dict[str, ModelInfo] = {}
        self._model_list: tuple[ModelInfo, ...] = ()
        self._by_family: dict[tuple[str, str], ModelInfo] = {}
        self._accounts: dict[int, tuple[PhoneAccount, ...]] = {}
        self._user_keys: dict[int, tuple[PhoneKey, ...]] = {}
        self._device_keys: dict[int, tuple[PhoneKey, ...]] = {}
        self._people: dict[int, PhonebookEntry] = {}
        self._phonebook = Phonebook(0, ())
        self._sites: tuple[policy.Site, ...] = ()
        self._platform = defaults
        self._revision = next(_revisions)

    @property
    def size(self) -> int:
        """How many devices are loaded."""
        return len(self._by_id)

    async def load(self) -> None:
        """Read everything (start-up, or after a change that touches all devices)."""
        async with self._db.read() as session:
            models = (
                (await session.execute(select(DeviceModel).order_by(DeviceModel.id)))
                .scalars()
                .all()
            )
            self._models = {m.id: _model_info(m) for m in models}
            self._model_list = tuple(self._models.values())
            self._by_family = {}
            for info in self._model_list:
                self._by_family.setdefault((info.vendor, info.family.lower()), info)
            self._accounts = _accounts((await session.execute(_account_query())).all())
            self._user_keys = _keys((await session.execute(_user_keys_query())).all())
            self._device_keys = _keys((await session.execute(_device_keys_query())).all())
            people = (await session.execute(_phonebook_query())).all()
            rows = (await session.execute(_device_query())).all()
        self._people = {row[0]: _entry(row) for row in people}
        self._sort_phonebook()
        self._by_id = {device.id: device for device in map(self._device, rows)}
        self._by_mac = {device.mac: device for device in self._by_id.values()}
        await self._load_globals()
        log.info("phone directory: %d devices in memory", len(self._by_id))

    async def _load_globals(self) -> None:
        async with self._db.read() as session:
            self._platform = await effective_platform(session, self._defaults)
            sites = (await session.scalars(select(Site).order_by(Site.id))).all()
            self._sites = tuple(policy_site(row) for row in sites)
        self._revision = next(_revisions)

    def _device(self, row: Any) -> PhoneDevice:
        # Positional: unpacking the row tuple is several times faster than attribute access,
        # and this runs 100,000 times at start-up. The order is _device_query's.
        (
            device_id,
            mac,
            extension,
            model_id,
            active,
            sip_username,
            sip_password,
            provisioning_password,
            label,
            site_id,
            updated_at,
            user_id,
            firmware,
            display_name,
            main_extension,
            cli_custom,
            user_updated_at,
        ) = row
        updated = _when(updated_at)
        if user_updated_at is not None:
            updated = max(updated, _when(user_updated_at))
        return PhoneDevice(
            device_id,
            mac,
            extension,
            self._models[model_id],
            active,
            sip_username,
            sip_password,
            provisioning_password,
            label,
            display_name,
            main_extension,
            cli_custom,
            site_id,
            updated,
            user_id,
            next(_revisions),
            firmware,
            self._accounts.get(device_id, ()),
            effective_keys(
                self._user_keys.get(user_id, ()) if user_id is not None else (),
                self._device_keys.get(device_id, ()),
            ),
        )

    def _sort_phonebook(self) -> None:
        entries = sorted(self._people.values(), key=_by_name)
        self._phonebook = Phonebook(next(_revisions), tuple(entries))

    async def _reload_people(self, session: Any, users: set[int]) -> None:
        """Re-read these users' phone book entries and keys (a deleted user leaves both)."""
        rows = (await session.execute(_phonebook_query().where(User.id.in_(users)))).all()
        fresh = {row[0]: _entry(row) for row in rows}
        query = _user_keys_query().where(UserKey.user_id.in_(users))
        keys = _keys((await session.execute(query)).all())
        changed = False
        for user_id in users:
            self._user_keys.pop(user_id, None)
            if user_id in keys:
                self._user_keys[user_id] = keys[user_id]
            entry = fresh.get(user_id)
            if self._people.get(user_id) != entry:
                changed = True
                self._people.pop(user_id, None)
                if entry is not None:
                    self._people[user_id] = entry
        if changed:  # a new revision only when what the book shows changed (its cache key)
            self._sort_phonebook()

    def _put(self, row: Any) -> None:
        device = self._device(row)
        self._drop(device.id)
        self._by_id[device.id] = device
        self._by_mac[device.mac] = device

    def _drop(self, device_id: int) -> None:
        old = self._by_id.pop(device_id, None)
        if old is not None and self._by_mac.get(old.mac) is old:
            del self._by_mac[old.mac]

    async def _reload_devices(self, device_ids: Iterable[int], user_ids: Iterable[int]) -> None:
        ids, users = set(device_ids), set(user_ids)
        # Devices that belonged to those users in memory: they may have been unassigned since.
        if users:
            ids |= {
                d.id
                for d in self._by_id.values()
                if d.user_id in users or any(a.user_id in users for a in d.accounts)
            }
        query = _device_query()
        conditions = []
        if ids:
            conditions.append(Device.id.in_(ids))
        if users:
            conditions.append(Device.user_id.in_(users))
            owned = select(DeviceAccount.device_id).where(DeviceAccount.user_id.in_(users))
            conditions.append(Device.id.in_(owned))
        if not conditions:
            return
        async with self._db.read() as session:
            if users:
                await self._reload_people(session, users)
            rows = (await session.execute(query.where(or_(*conditions)))).all()
            found = {row.id for row in rows}
            if found:
                query = _account_query().where(DeviceAccount.device_id.in_(found))
                fresh = _accounts((await session.execute(query)).all())
                query = _device_keys_query().where(DeviceKey.device_id.in_(found))
                keys = _keys((await session.execute(query)).all())
                for device_id in found:
                    self._accounts[device_id] = fresh.get(device_id, ())
                    self._device_keys.pop(device_id, None)
                    if device_id in keys:
                        self._device_keys[device_id] = keys[device_id]
        for device_id in ids - found:
            self._drop(device_id)  # deleted
            self._accounts.pop(device_id, None)
            self._device_keys.pop(device_id, None)
        for row in rows:
            self._put(row)

    async def apply(self, changes: list[Change]) -> None:
        """Patch the directory with committed admin changes."""
        devices: set[int] = set()
        users: set[int] = set()
        reload_all = False
        globals_changed = False
        for change in changes:
            kind = change.object_type
            if kind in _RELOAD_ALL_TYPES:
                reload_all = True
            elif kind in _GLOBAL_TYPES:
                globals_changed = True
            elif kind in _DEVICE_TYPES and change.object_id and change.object_id.isdigit():
                devices.add(int(change.object_id))
            elif kind in _USER_TYPES and change.object_id and change.object_id.isdigit():
                users.add(int(change.object_id))
        if reload_all:
            await self.load()
            return
        if globals_changed:
            await self._load_globals()
        followed = [c.id for c in changes if c.action in FAN_OUT_ACTIONS]
        if followed:
            more_devices, more_users = await fanned_out(self._db, followed)
            devices |= more_devices
            users |= more_users
        await self._reload_devices(devices, users)

    def note_lock(self, device_id: int, site_id: int) -> None:
        """Bind in memory now; the activity recorder writes it (and audits it for the others)."""
        device = self._by_id.get(device_id)
        if device is not None and device.site_id is None:
            locked = dataclasses.replace(device, site_id=site_id, revision=next(_revisions))
            self._by_id[device_id] = locked
            self._by_mac[locked.mac] = locked

    def device_by_mac(self, mac: str) -> PhoneDevice | None:
        """A dictionary lookup."""
        return self._by_mac.get(mac)

    def models(self) -> tuple[ModelInfo, ...]:
        """The catalogue."""
        return self._model_list

    def model_for_family(self, vendor: str, family: str) -> ModelInfo | None:
        """A dictionary lookup (the first model by id when several share a family)."""
        return self._by_family.get((vendor, family.lower()))

    def platform(self) -> PlatformSettings:
        """The effective platform settings."""
        return self._platform

    def phonebook(self) -> Phonebook:
        """Every user by name; a new revision whenever an entry changes."""
        return self._phonebook

    def sites(self) -> tuple[policy.Site, ...]:
        """The configured sites."""
        return self._sites

    def revision(self) -> int:
        """Changes whenever settings or sites are re-read."""
        return self._revision
