"""Device lookups for the phone side: the one interface every phone request goes through.

`PhoneDirectory` is the seam: the resolver asks it for a device by MAC, for catalogue models
and for the platform settings, and never touches the database itself. `DatabaseDirectory`
answers from the database; the boot-storm work backs the same interface with memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import netaddr
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from provisiond.domain import policy
from provisiond.services.platform import effective_platform
from provisiond.settings import PlatformSettings
from provisiond.storage.database import Database
from provisiond.storage.models import Device, DeviceModel, Site, User


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """A catalogue model as templates see it."""

    id: str
    vendor: str
    name: str
    family: str


@dataclass(slots=True)
class PhoneDevice:
    """Everything needed to render one device's files (secrets included: phone side only).

    Treat as immutable (changes make a new one with dataclasses.replace). Not declared frozen
    only because a frozen dataclass's __init__ costs a third of loading 100,000 devices.
    """

    id: int
    mac: str  # 12 lowercase hex digits
    extension: str
    model: ModelInfo
    active: bool
    sip_username: str
    sip_password_sealed: str  # encrypted; the resolver opens it only to render
    provisioning_password_sealed: str | None
    label: str | None
    user_display_name: str | None
    main_extension: str | None
    cli_custom: str | None
    site_id: int | None
    updated_at: datetime
    user_id: int | None = None
    revision: int = 0  # bumped by the in-memory directory at each reload: the render-cache key
    firmware: str | None = None  # the version last reported (last_seen_firmware)


class PhoneDirectory(Protocol):
    """What the resolver needs to know; implementations decide where it comes from."""

    async def device_by_mac(self, mac: str) -> PhoneDevice | None:
        """The device with this MAC (12 lowercase hex digits), or None."""
        ...

    async def models(self) -> tuple[ModelInfo, ...]:
        """The model catalogue."""
        ...

    async def platform(self) -> PlatformSettings:
        """The effective platform settings."""
        ...

    async def sites(self) -> tuple[policy.Site, ...]:
        """The configured sites (empty: the implicit default site applies)."""
        ...

    def revision(self) -> int | None:
        """A number that changes whenever the platform settings or sites change, or None when
        this directory cannot tell (then rendered files are not cached)."""
        ...

    def note_lock(self, device_id: int, site_id: int) -> None:
        """A device was just bound to a site (first boot): effective at once, in this process."""
        ...


def _model(row: DeviceModel) -> ModelInfo:
    return ModelInfo(row.id, row.vendor, row.name, row.family)


def phone_device(device: Device, user: User | None) -> PhoneDevice:
    """Flatten a stored device (with model loaded) and its user into a `PhoneDevice`."""
    return PhoneDevice(
        id=device.id,
        mac=f"{int(device.mac):012x}",
        extension=device.extension,
        model=_model(device.model),
        active=device.active,
        sip_username=device.sip_username,
        sip_password_sealed=device.sip_password,
        provisioning_password_sealed=device.provisioning_password,
        label=device.label,
        user_display_name=user.display_name if user else None,
        main_extension=user.main_extension if user else None,
        cli_custom=user.cli_custom if user else None,
        site_id=device.site_id,
        user_id=device.user_id,
        firmware=device.last_seen_firmware,
        updated_at=max(device.updated_at, user.updated_at) if user else device.updated_at,
    )


class DatabaseDirectory:
    """Answers from the database: one indexed query per device lookup.

    The catalogue is read once (it changes only with migrations); platform settings are
    re-read at most every `platform_ttl` seconds.
    """

    def __init__(self, db: Database, defaults: PlatformSettings, platform_ttl: float = 2.0) -> None:
        self._db = db
        self._defaults = defaults
        self._ttl = platform_ttl
        self._models: tuple[ModelInfo, ...] | None = None
        self._platform: tuple[float, PlatformSettings] | None = None
        self._sites: tuple[float, tuple[policy.Site, ...]] | None = None

    async def device_by_mac(self, mac: str) -> PhoneDevice | None:
        """One query: the device, its model and its user."""
        async with self._db.read() as session:
            device = await session.scalar(
                select(Device)
                .where(Device.mac == int(mac, 16))
                .options(selectinload(Device.model), selectinload(Device.user))
            )
            return None if device is None else phone_device(device, device.user)

    async def models(self) -> tuple[ModelInfo, ...]:
        """The catalogue, read once."""
        if self._models is None:
            async with self._db.read() as session:
                rows = (await session.scalars(select(DeviceModel))).all()
                self._models = tuple(_model(row) for row in rows)
        return self._models

    async def platform(self) -> PlatformSettings:
        """The effective platform settings, cached for a short time."""
        now = time.monotonic()
        if self._platform is None or now - self._platform[0] > self._ttl:
            async with self._db.read() as session:
                current = await effective_platform(session, self._defaults)
            self._platform = (now, current)
        return self._platform[1]

    def revision(self) -> int | None:
        """Unknown: this directory re-reads the database, so nothing may be cached."""
        return None

    def note_lock(self, device_id: int, site_id: int) -> None:
        """Nothing to do: the next lookup reads the database (the recorder writes the lock)."""

    async def sites(self) -> tuple[policy.Site, ...]:
        """The sites, re-read at most every `platform_ttl` seconds."""
        now = time.monotonic()
        if self._sites is None or now - self._sites[0] > self._ttl:
            async with self._db.read() as session:
                rows = (await session.scalars(select(Site).order_by(Site.id))).all()
                current = tuple(policy_site(row) for row in rows)
            self._sites = (now, current)
        return self._sites[1]


def policy_site(row: Site) -> policy.Site:
    """A stored site as the policy sees it."""
    return policy.Site(
        row.id, row.name, netaddr.IPSet(row.networks), row.policy, row.lock_on_first_boot
    )
