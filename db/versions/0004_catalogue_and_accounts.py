"""catalogue as data; further SIP accounts per device

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

The model catalogue moves to phone_templates/<vendor>/models.toml: start-up writes it to
device_models (storage/catalogue_sync.py), which gains what the catalogue says of a model
(series, boot sequence, protocols, auth, accounts, keys, modules, handsets) and
`in_catalogue` (false for a model that left the catalogue while a device uses it).

A device may carry several SIP accounts (a DECT base's handsets, an ATA's ports, a desk
phone's lines): slot 1 stays the device's own columns, slots 2 and up are device_accounts
rows. A user's primary line is a device or one of those accounts (users.primary_account_id).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MODEL_COLUMNS = (
    ("series", sa.String(length=64), sa.text("''")),
    ("boot", sa.JSON(), sa.text("'[]'")),
    ("protocols", sa.JSON(), sa.text("'[]'")),
    ("auth", sa.JSON(), sa.text("'[]'")),
    ("accounts", sa.Integer(), sa.text("1")),
    ("line_keys", sa.Integer(), sa.text("0")),
    ("expansion_modules", sa.Integer(), sa.text("0")),
    ("handsets", sa.Integer(), sa.text("0")),
    ("user_agent", sa.String(length=256), sa.text("''")),
    ("dect", sa.Boolean(), sa.false()),
    ("ata", sa.Boolean(), sa.false()),
    ("in_catalogue", sa.Boolean(), sa.true()),
)


def upgrade() -> None:
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        for name, kind, default in _MODEL_COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=False, server_default=default))
    # The server defaults only filled the existing rows; the application always sets them.
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        for name, kind, _ in _MODEL_COLUMNS:
            batch_op.alter_column(name, existing_type=kind, server_default=None)

    op.create_table(
        "device_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("slot", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("sip_username", sa.String(length=64), nullable=False),
        sa.Column("sip_password", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_accounts_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_device_accounts_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_accounts")),
        sa.UniqueConstraint("device_id", "slot", name="uq_device_accounts_device_id_slot"),
        sa.UniqueConstraint("extension", name=op.f("uq_device_accounts_extension")),
        sa.UniqueConstraint("id", "user_id", name="uq_device_accounts_id_user_id"),
    )
    with op.batch_alter_table("device_accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_accounts_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("primary_account_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            "fk_users_primary_account_own",
            "device_accounts",
            ["primary_account_id", "id"],
            ["id", "user_id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("fk_users_primary_account_own", type_="foreignkey")
        batch_op.drop_column("primary_account_id")
    with op.batch_alter_table("device_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_accounts_user_id"))
    op.drop_table("device_accounts")
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        for name, _, _ in reversed(_MODEL_COLUMNS):
            batch_op.drop_column(name)
