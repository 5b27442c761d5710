"""Programmable keys: GET/PUT /users/{id}/keys and GET/PUT /devices/{id}/keys.

A PUT replaces the whole list (domain/keys.py checks every key). A user's keys follow them onto
every device whose slot 1 they own, so a position beyond the largest of those phones is
refused naming that phone's limit; a device's keys are checked against its model and the types
its vendor writes. One transaction and one audit row each ("user.keys_set"/"device.keys_set"):
the phone directory re-reads the devices concerned and resync on change tells them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from provisiond.domain.errors import InvalidInput
from provisiond.domain.keys import PhoneKey, check_keys, key_capacity
from provisiond.services.assignments import load_device
from provisiond.services.context import ServiceContext, audit
from provisiond.services.users import load_user
from provisiond.storage.models import Device, DeviceAccount, DeviceKey, DeviceModel, User, UserKey

__all__ = [
    "KeyService",
    "capacity_view",
    "device_key_problems",
    "key_types_of",
    "line_slots",
    "user_key_problems",
]


def capacity_view(model: DeviceModel) -> dict[str, Any]:
    """What a model can show: the limit every refusal names."""
    return {
        "model": model.id,
        "line_keys": model.line_keys,
        "expansion_modules": model.expansion_modules,
        "module_keys": model.module_keys,
        "capacity": key_capacity(model.line_keys, model.expansion_modules, model.module_keys),
    }


def _limit_text(view: dict[str, Any]) -> str:
    return (
        f"{view['model']} has {view['capacity']} key positions ({view['line_keys']} keys"
        f" + {view['expansion_modules']} expansion modules x {view['module_keys']} keys)"
    )


def key_types_of(ctx: ServiceContext, vendor: str) -> tuple[str, ...]:
    """The key types `vendor`'s templates write (its vendor.toml `key_types`)."""
    spec = ctx.vendors.get(vendor)
    return spec.key_types if spec is not None else ()


def line_slots(models: Sequence[DeviceModel]) -> int:
    """The account slots a user's line keys may name: the most any of their phones carries."""
    return max((m.accounts for m in models), default=1)


def user_key_problems(
    keys: Sequence[PhoneKey], models: Sequence[DeviceModel], owner: str, *, field: str = "keys"
) -> list[InvalidInput]:
    """Every key of a user (`owner`, e.g. "user 7") beyond the widest of their phones
    (`models`: the models of the devices whose slot 1 they own; none: no limit)."""
    if not models or not keys:
        return []
    widest = max((capacity_view(m) for m in models), key=lambda v: int(v["capacity"]))
    return [
        InvalidInput(
            f"{field}[{index}].position {key.position} is beyond every phone of {owner}: "
            f"{_limit_text(widest)}",
            field=f"{field}[{index}].position",
        )
        for index, key in enumerate(keys)
        if key.position > widest["capacity"]
    ]


def device_key_problems(
    keys: Sequence[PhoneKey], model: DeviceModel, types: Sequence[str], *, field: str = "keys"
) -> list[InvalidInput]:
    """Every key of a device beyond its model or of a type its vendor's templates do not
    write (`types`: key_types_of the model's vendor), in key order."""
    view = capacity_view(model)
    found: list[InvalidInput] = []
    for index, key in enumerate(keys):
        if key.position > view["capacity"]:
            found.append(
                InvalidInput(
                    f"{field}[{index}].position {key.position} is beyond the model: "
                    f"{_limit_text(view)}",
                    field=f"{field}[{index}].position",
                )
            )
        if key.type not in types:
            supported = ", ".join(types) or "none"
            found.append(
                InvalidInput(
                    f"{field}[{index}].type {key.type!r}: {model.vendor} phones here take "
                    f"{supported}",
                    field=f"{field}[{index}].type",
                )
            )
    return found


async def _known_extensions(session: AsyncSession, values: set[str]) -> set[str]:
    """Which of `values` are extensions of this system (a main extension, a device's or an
    account's)."""
    if not values:
        return set()
    found: set[str] = set()
    for column in (User.main_extension, Device.extension, DeviceAccount.extension):
        found |= set((await session.scalars(select(column).where(column.in_(values)))).all())
    return found


async def _checked(session: AsyncSession, raw: object, accounts: int) -> tuple[PhoneKey, ...]:
    """The list checked twice: once to learn which BLF values to look up, once with them."""
    blf_values: set[str] = set()
    if isinstance(raw, list):
        blf_values = {
            str(item.get("value", "")).strip()
            for item in raw
            if isinstance(item, dict) and item.get("type") == "blf"
        }
    known = await _known_extensions(session, blf_values)
    return check_keys(raw, accounts=accounts, is_extension=known.__contains__)


def _rows(keys: Sequence[PhoneKey]) -> list[dict[str, Any]]:
    return [key.as_dict() for key in keys]


async def _replace(
    session: AsyncSession,
    actor: str,
    owner: Literal["user", "device"],
    owner_id: int,
    before: Sequence[PhoneKey],
    keys: Sequence[PhoneKey],
) -> None:
    """Store `keys` as the owner's whole list, with one audit row (`user.keys_set` or
    `device.keys_set`: the phone directory re-reads that owner's devices); nothing when the
    list is unchanged."""
    old, new = _rows(before), _rows(keys)
    if old != new:
        if owner == "user":
            await session.execute(delete(UserKey).where(UserKey.user_id == owner_id))
            session.add_all(UserKey(user_id=owner_id, **row) for row in new)
        else:
            await session.execute(delete(DeviceKey).where(DeviceKey.device_id == owner_id))
            session.add_all(DeviceKey(device_id=owner_id, **row) for row in new)
        audit(session, actor, f"{owner}.keys_set", owner, owner_id, old, new)
    await session.flush()


class KeyService:
    """The key lists of users and devices."""

    def __init__(self, ctx: ServiceContext) -> None:
        self.ctx = ctx

    async def _user_keys(self, session: AsyncSession, user_id: int) -> list[PhoneKey]:
        rows = await session.scalars(
            select(UserKey).where(UserKey.user_id == user_id).order_by(UserKey.position)
        )
        return [PhoneKey(r.position, r.type, r.value, r.label) for r in rows]

    async def _device_keys(self, session: AsyncSession, device_id: int) -> list[PhoneKey]:
        rows = await session.scalars(
            select(DeviceKey).where(DeviceKey.device_id == device_id).order_by(DeviceKey.position)
        )
        return [PhoneKey(r.position, r.type, r.value, r.label) for r in rows]

    async def _owned_models(self, session: AsyncSession, user_id: int) -> list[DeviceModel]:
        rows = await session.scalars(
            select(DeviceModel)
            .join(Device, Device.model_id == DeviceModel.id)
            .where(Device.user_id == user_id)
            .order_by(Device.id)
        )
        return list(rows.all())

    async def user_keys(self, user_id: int) -> dict[str, Any]:
        """The user's keys and the phones they follow onto (with each one's limit)."""
        async with self.ctx.db.read() as session:
            await load_user(session, user_id)
            return await self._user_view(session, user_id)

    async def _user_view(self, session: AsyncSession, user_id: int) -> dict[str, Any]:
        devices = (
            await session.execute(
                select(Device.id, DeviceModel)
                .join(DeviceModel, Device.model_id == DeviceModel.id)
                .where(Device.user_id == user_id)
                .order_by(Device.id)
            )
        ).all()
        return {
            "user_id": user_id,
            "items": _rows(await self._user_keys(session, user_id)),
            "devices": [{"device_id": d, **capacity_view(m)} for d, m in devices],
        }

    async def set_user_keys(self, user_id: int, raw: object, *, actor: str) -> dict[str, Any]:
        """Replace the user's keys; a position no phone of theirs has is refused."""
        async with self.ctx.db.write() as session:
            await load_user(session, user_id)
            models = await self._owned_models(session, user_id)
            keys = await _checked(session, raw, line_slots(models))
            problems = user_key_problems(keys, models, f"user {user_id}")
            if problems:
                raise problems[0]
            before = await self._user_keys(session, user_id)
            await _replace(session, actor, "user", user_id, before, keys)
            return await self._user_view(session, user_id)

    async def device_keys(self, device_id: int) -> dict[str, Any]:
        """The device's own keys, the keys its phone shows (the owner's with the device's
        over them, within the model) and the model's limit."""
        async with self.ctx.db.read() as session:
            device = await load_device(session, device_id)
            return await self._device_view(session, device)

    async def _device_view(self, session: AsyncSession, device: Device) -> dict[str, Any]:
        model = await session.get(DeviceModel, device.model_id)
        assert model is not None  # a foreign key
        own = await self._device_keys(session, device.id)
        inherited = [] if device.user_id is None else await self._user_keys(session, device.user_id)
        view = capacity_view(model)
        types = key_types_of(self.ctx, model.vendor)
        merged = {k.position: k for k in inherited}
        merged.update((k.position, k) for k in own)
        shown = [
            {**merged[p].as_dict(), "source": "device" if merged[p] in own else "user"}
            for p in sorted(merged)
            if p <= view["capacity"] and merged[p].type in types
        ]
        return {
            "device_id": device.id,
            "user_id": device.user_id,
            "items": _rows(own),
            "effective": shown,
            "key_types": list(types),
            **view,
        }

    async def set_device_keys(self, device_id: int, raw: object, *, actor: str) -> dict[str, Any]:
        """Replace the device's own keys, within its model and its vendor's key types."""
        async with self.ctx.db.write() as session:
            device = await load_device(session, device_id)
            model = await session.get(DeviceModel, device.model_id)
            assert model is not None
            keys = await _checked(session, raw, model.accounts)
            problems = device_key_problems(keys, model, key_types_of(self.ctx, model.vendor))
            if problems:
                raise problems[0]
            before = await self._device_keys(session, device_id)
            await _replace(session, actor, "device", device_id, before, keys)
            return await self._device_view(session, device)
