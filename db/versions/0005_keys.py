"""programmable keys per user and per device; keys per expansion module

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

A user's keys (user_keys) follow them onto every device they own; a device's own keys
(device_keys) replace the user's at the same position (provisiond/domain/keys.py). The
catalogue says how many keys one expansion module has (device_models.module_keys), so a
position on a module can be checked against the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _keys_table(name: str, owner: str, parent: str) -> None:
    op.create_table(
        name,
        sa.Column(owner, sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            [owner], [f"{parent}.id"], name=op.f(f"fk_{name}_{owner}_{parent}"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(owner, "position", name=op.f(f"pk_{name}")),
    )
    with op.batch_alter_table(name, schema=None) as batch_op:
        batch_op.create_index(batch_op.f(f"ix_{name}_value"), ["value"], unique=False)


def upgrade() -> None:
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("module_keys", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.alter_column("module_keys", existing_type=sa.Integer(), server_default=None)
    _keys_table("user_keys", "user_id", "users")
    _keys_table("device_keys", "device_id", "devices")


def downgrade() -> None:
    for name in ("device_keys", "user_keys"):
        with op.batch_alter_table(name, schema=None) as batch_op:
            batch_op.drop_index(batch_op.f(f"ix_{name}_value"))
        op.drop_table(name)
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.drop_column("module_keys")
