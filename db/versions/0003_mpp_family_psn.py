"""Cisco MPP catalogue family is the product series number ($PSN)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

A factory MPP phone asks for `/$PSN.xml`, e.g. `8841-3PCC.xml` ($PSN, Cisco's Provisioning
Guide, "Macro Expansion Variables"); `$PN` is `CP-8841-3PCC`. The catalogue's `family` is what
file names carry (docs/templates.md), so it becomes the $PSN; the model name keeps `CP-...`,
which is what the User-Agent says. Both `8841-3PCC.xml` and `CP-8841-3PCC.xml` then resolve to
the model, so the model file names the model's firmware.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MODELS = sa.table("device_models", sa.column("id", sa.String), sa.column("family", sa.String))
_PSN = {"cisco-cp-7841-3pcc": "7841-3PCC", "cisco-cp-8841-3pcc": "8841-3PCC"}


def upgrade() -> None:
    for model_id, family in _PSN.items():
        op.execute(_MODELS.update().where(_MODELS.c.id == model_id).values(family=family))


def downgrade() -> None:
    for model_id, family in _PSN.items():
        op.execute(_MODELS.update().where(_MODELS.c.id == model_id).values(family=f"CP-{family}"))
