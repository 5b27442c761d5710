"""SQLAlchemy 2 typed models: the database schema of provisiond.

Every relationship is ``lazy="raise"``: a query never runs behind an attribute access, so the
service layer states what it loads. MAC addresses cross this boundary as netaddr EUIs (see
`MacType`); the database keeps 12 lowercase hex digits, which is also the phone-side lookup key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import netaddr
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from provisiond.domain.device_rules import LABEL_MAX_LENGTH
from provisiond.domain.mac import mac_compact

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Timestamps are timezone-aware UTC."""
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC and returns them aware (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class MacType(TypeDecorator[netaddr.EUI]):
    """A MAC address: netaddr.EUI in Python, ``001565aabbcc`` in the database."""

    impl = String(12)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return mac_compact(netaddr.EUI(value))

    def process_result_value(self, value: str | None, dialect: Dialect) -> netaddr.EUI | None:
        return None if value is None else netaddr.EUI(value, version=48)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable migration names)."""

    metadata = MetaData(naming_convention=NAMING)


class DeviceModel(Base):
    """A phone model of the catalogue, e.g. ``yealink-t46s``.

    The catalogue is data beside the templates (``phone_templates/<vendor>/models.toml``);
    start-up writes it here (storage/catalogue_sync.py). A model that left the catalogue while
    a device still uses it stays, with `in_catalogue` false (provisiond.domain.catalogue has
    what each field means).
    """

    __tablename__ = "device_models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    vendor: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(64))
    family: Mapped[str] = mapped_column(String(32))
    series: Mapped[str] = mapped_column(String(64), default="")
    boot: Mapped[list[str]] = mapped_column(JSON, default=list)
    protocols: Mapped[list[str]] = mapped_column(JSON, default=list)
    auth: Mapped[list[str]] = mapped_column(JSON, default=list)
    accounts: Mapped[int] = mapped_column(Integer, default=1)
    line_keys: Mapped[int] = mapped_column(Integer, default=0)
    expansion_modules: Mapped[int] = mapped_column(Integer, default=0)
    module_keys: Mapped[int] = mapped_column(Integer, default=0)  # keys of one module
    handsets: Mapped[int] = mapped_column(Integer, default=0)
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    dect: Mapped[bool] = mapped_column(Boolean, default=False)
    ata: Mapped[bool] = mapped_column(Boolean, default=False)
    in_catalogue: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Base):
    """A user: main extension, CLI, Team App and Client features, and their devices."""

    __tablename__ = "users"
    __table_args__ = (
        # The primary device must be one of the user's own devices: (primary, id) -> devices.
        ForeignKeyConstraint(
            ["primary_device_id", "id"],
            ["devices.id", "devices.user_id"],
            name="fk_users_primary_device_own",
            use_alter=True,
        ),
        # Or the primary line is an account the user owns on a (multi-account) device.
        ForeignKeyConstraint(
            ["primary_account_id", "id"],
            ["device_accounts.id", "device_accounts.user_id"],
            name="fk_users_primary_account_own",
            use_alter=True,
        ),
    )

    # autoincrement is explicit: the composite primary-device key includes this column.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    main_extension: Mapped[str] = mapped_column(String(16), unique=True)
    cli_custom: Mapped[str | None] = mapped_column(String(16))
    # The user's primary line: a device they own (its first account), or one of the further
    # accounts they own (`primary_account_id`); never both (domain/rules.py, rule 1).
    primary_device_id: Mapped[int | None] = mapped_column(Integer)
    primary_account_id: Mapped[int | None] = mapped_column(Integer)

    team_app_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    team_app_smart_working: Mapped[bool] = mapped_column(Boolean, default=False)
    team_app_gsm_mode: Mapped[bool] = mapped_column(Boolean, default=False)
    team_app_gsm_number: Mapped[str | None] = mapped_column(String(24))
    team_app_fallback_timeout_s: Mapped[int | None] = mapped_column(Integer)
    team_app_callback_enabled: Mapped[bool | None] = mapped_column(Boolean)

    client_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    client_smart_working: Mapped[bool] = mapped_column(Boolean, default=False)
    client_web_phone: Mapped[bool] = mapped_column(Boolean, default=False)
    client_video_calls: Mapped[bool] = mapped_column(Boolean, default=False)

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    devices: Mapped[list[Device]] = relationship(
        back_populates="user", lazy="raise", foreign_keys="Device.user_id", order_by="Device.id"
    )
    # The further accounts (slot 2 and up) the user owns on any device; loaded with the user.
    accounts: Mapped[list[DeviceAccount]] = relationship(
        lazy="selectin",
        foreign_keys="DeviceAccount.user_id",
        order_by="(DeviceAccount.device_id, DeviceAccount.slot)",
        viewonly=True,
    )


class Device(Base):
    """A SIP phone: extension, model, MAC, owner, SIP credentials and last-seen data."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("id", "user_id", name="uq_devices_id_user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Unique index on extension also serves the autocomplete prefix search (LIKE '20%').
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("device_models.id"), index=True)
    mac: Mapped[netaddr.EUI] = mapped_column(MacType, unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    sip_username: Mapped[str] = mapped_column(String(64))
    # Encrypted at rest (provisiond.storage.secrets); never leaves the API except by reveal.
    sip_password: Mapped[str] = mapped_column(String(255), info={"secret": True})
    # HTTP digest secret the phone uses to fetch its files under a `digest` site (encrypted).
    provisioning_password: Mapped[str | None] = mapped_column(String(255), info={"secret": True})
    label: Mapped[str | None] = mapped_column(String(LABEL_MAX_LENGTH))
    # The site the device belongs to: set by an admin, or by its first boot in a site with
    # lock_on_first_boot. Its files are served only inside that site, under its policy. (The
    # column keeps the name it had when only the first-boot lock could set it.)
    site_id: Mapped[int | None] = mapped_column(
        "locked_site_id", ForeignKey("sites.id", ondelete="SET NULL"), index=True
    )

    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_seen_ip: Mapped[str | None] = mapped_column(String(45))
    last_seen_user_agent: Mapped[str | None] = mapped_column(String(256))
    last_seen_firmware: Mapped[str | None] = mapped_column(String(64))

    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User | None] = relationship(
        back_populates="devices", lazy="raise", foreign_keys=[user_id]
    )
    model: Mapped[DeviceModel] = relationship(lazy="raise")
    # Loaded with the device (one IN query per batch): every view of a device shows them.
    accounts: Mapped[list[DeviceAccount]] = relationship(
        back_populates="device",
        lazy="selectin",
        order_by="DeviceAccount.slot",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class DeviceAccount(Base):
    """A further SIP account of a device (slot 2 and up; slot 1 is the device's own columns):
    a DECT base's handset, an ATA's port, a desk phone's second line. It is an extension of
    its user like a device's: unique among every device and account extension."""

    __tablename__ = "device_accounts"
    __table_args__ = (
        UniqueConstraint("device_id", "slot", name="uq_device_accounts_device_id_slot"),
        UniqueConstraint("id", "user_id", name="uq_device_accounts_id_user_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer)
    extension: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    sip_username: Mapped[str] = mapped_column(String(64))
    sip_password: Mapped[str] = mapped_column(String(255), info={"secret": True})
    label: Mapped[str | None] = mapped_column(String(LABEL_MAX_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)

    device: Mapped[Device] = relationship(back_populates="accounts", lazy="raise")


class UserKey(Base):
    """One programmable key of a user (domain/keys.py): it follows the user onto every device
    whose slot 1 they own."""

    __tablename__ = "user_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255), index=True)
    label: Mapped[str | None] = mapped_column(String(LABEL_MAX_LENGTH))


class DeviceKey(Base):
    """A key set on one device: it replaces the user's key at the same position."""

    __tablename__ = "device_keys"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255), index=True)
    label: Mapped[str | None] = mapped_column(String(LABEL_MAX_LENGTH))


class Site(Base):
    """A site: networks (CIDRs) and the policy per-device files are served under."""

    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    networks: Mapped[list[str]] = mapped_column(JSON)
    policy: Mapped[str] = mapped_column(String(16), default="open")
    lock_on_first_boot: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, onupdate=utcnow)


class Licence(Base):
    """A named licence module and how many seats it has; seats in use are counted from users."""

    __tablename__ = "licences"

    module: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)


class Setting(Base):
    """A platform setting changed through the admin API (overrides the settings file)."""

    __tablename__ = "settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class ApiToken(Base):
    """An admin API bearer token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default="admin")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """One admin change: who, what, on which object, before and after (never secrets)."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str | None] = mapped_column(String(64))
    before: Mapped[Any | None] = mapped_column(JSON)
    after: Mapped[Any | None] = mapped_column(JSON)


class UnprovisionedDevice(Base):
    """A MAC that asked for a configuration but is not a known device; claimable by admins."""

    __tablename__ = "unprovisioned_devices"

    mac: Mapped[netaddr.EUI] = mapped_column(MacType, primary_key=True)
    vendor: Mapped[str | None] = mapped_column(String(32))
    model_guess: Mapped[str | None] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow, index=True)
    last_ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(Text)
    path: Mapped[str | None] = mapped_column(String(256))
    requests: Mapped[int] = mapped_column(Integer, default=1)
