"""sites, encrypted secrets, lock on first boot

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Sites with networks and an access policy; per-device provisioning (digest) secret; lock on
first boot; SIP password column wide enough for ciphertext. Existing plaintext secrets are
encrypted by `provisiond serve`/`keys rotate`, which hold the key (it never lives in the database).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("networks", sa.JSON(), nullable=False),
        sa.Column("policy", sa.String(length=16), nullable=False),
        sa.Column("lock_on_first_boot", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
        sa.UniqueConstraint("name", name=op.f("uq_sites_name")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("provisioning_password", sa.String(length=255), nullable=True)
        )
        batch_op.add_column(sa.Column("locked_site_id", sa.Integer(), nullable=True))
        batch_op.alter_column(
            "sip_password",
            existing_type=sa.VARCHAR(length=128),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
        batch_op.create_index(
            batch_op.f("ix_devices_locked_site_id"), ["locked_site_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_devices_locked_site_id_sites"),
            "sites",
            ["locked_site_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_devices_locked_site_id_sites"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_devices_locked_site_id"))
        batch_op.alter_column(
            "sip_password",
            existing_type=sa.String(length=255),
            type_=sa.VARCHAR(length=128),
            existing_nullable=False,
        )
        batch_op.drop_column("locked_site_id")
        batch_op.drop_column("provisioning_password")

    op.drop_table("sites")
