"""initial schema and model catalogue

Revision ID: 0001
Revises:
Create Date: 2026-11-25

The whole schema and the model catalogue of the eleven vendors in
reference/vendors.md (family = what their file names and User-Agents carry).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (id, vendor, name, family) — frozen at this revision; later revisions add models.
CATALOGUE = [
    ("yealink-t41s", "yealink", "T41S", "68"),
    ("yealink-t42s", "yealink", "T42S", "67"),
    ("yealink-t46s", "yealink", "T46S", "66"),
    ("yealink-t48s", "yealink", "T48S", "65"),
    ("yealink-t46g", "yealink", "T46G", "28"),
    ("yealink-t48g", "yealink", "T48G", "35"),
    ("yealink-t53", "yealink", "T53", "95"),
    ("yealink-t53w", "yealink", "T53W", "95"),
    ("yealink-t54w", "yealink", "T54W", "96"),
    ("yealink-t57w", "yealink", "T57W", "97"),
    ("yealink-t56a", "yealink", "T56A", "58"),
    ("yealink-w80b", "yealink", "W80B", "103"),
    ("polycom-vvx-400", "polycom", "VVX 400", "VVX_400"),
    ("polycom-vvx-410", "polycom", "VVX 410", "VVX_410"),
    ("polycom-vvx-450", "polycom", "VVX 450", "VVX_450"),
    ("polycom-spip-335", "polycom", "SoundPoint IP 335", "SPIP_335"),
    ("polycom-spip-550", "polycom", "SoundPoint IP 550", "SPIP_550"),
    ("cisco-spa504g", "cisco_spa", "SPA504G", "spa504G"),
    ("cisco-spa508g", "cisco_spa", "SPA508G", "spa508G"),
    ("cisco-spa525g2", "cisco_spa", "SPA525G2", "spa525G2"),
    ("cisco-spa942", "cisco_spa", "SPA942", "spa942"),
    ("cisco-cp-7841-3pcc", "cisco_spa", "CP-7841-3PCC", "CP-7841-3PCC"),
    ("cisco-cp-8841-3pcc", "cisco_spa", "CP-8841-3PCC", "CP-8841-3PCC"),
    ("cisco-cp-7940", "cisco_sep", "CP-7940G", "79x0"),
    ("cisco-cp-7960", "cisco_sep", "CP-7960G", "79x0"),
    ("cisco-cp-7942", "cisco_sep", "CP-7942G", "sep"),
    ("cisco-cp-7945", "cisco_sep", "CP-7945G", "sep"),
    ("cisco-cp-8845", "cisco_sep", "CP-8845", "sep"),
    ("grandstream-gxp2135", "grandstream", "GXP2135", "gxp2135"),
    ("grandstream-gxp2170", "grandstream", "GXP2170", "gxp2170"),
    ("grandstream-grp2612", "grandstream", "GRP2612", "grp2612"),
    ("grandstream-grp2614", "grandstream", "GRP2614", "grp2614"),
    ("snom-d715", "snom", "D715", "D715"),
    ("snom-d735", "snom", "D735", "D735"),
    ("snom-d785", "snom", "D785", "D785"),
    ("snom-d865", "snom", "D865", "D865"),
    ("fanvil-x3s", "fanvil", "X3S", "X3S"),
    ("fanvil-x4", "fanvil", "X4", "X4"),
    ("fanvil-x6u", "fanvil", "X6U", "X6U"),
    ("gigaset-n670", "gigaset", "N670 IP PRO", "N670"),
    ("gigaset-n870", "gigaset", "N870 IP PRO", "N870"),
    ("aastra-6731i", "aastra", "6731i", "6731i"),
    ("aastra-6757i", "aastra", "6757i", "6757i"),
    ("aastra-6869i", "aastra", "6869i", "6869i"),
    ("mitel-6940", "aastra", "6940", "6940"),
    ("panasonic-kx-hdv130", "panasonic", "KX-HDV130", "KX-HDV130"),
    ("panasonic-kx-hdv230", "panasonic", "KX-HDV230", "KX-HDV230"),
    ("panasonic-kx-tgp600", "panasonic", "KX-TGP600", "KX-TGP600"),
    ("panasonic-kx-ut113", "panasonic", "KX-UT113", "KX-UT113"),
    ("panasonic-kx-ut133", "panasonic", "KX-UT133", "KX-UT133"),
    ("htek-uc924", "htek", "UC924", "0012"),
    ("htek-uc926", "htek", "UC926", "0010"),
]


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("name", name=op.f("uq_api_tokens_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)
        batch_op.create_index("ix_audit_log_object", ["object_type", "object_id"], unique=False)

    op.create_table(
        "device_models",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("family", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_models")),
    )
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_models_vendor"), ["vendor"], unique=False)

    op.create_table(
        "licences",
        sa.Column("module", sa.String(length=32), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("module", name=op.f("pk_licences")),
    )
    op.create_table(
        "settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings")),
    )
    op.create_table(
        "unprovisioned_devices",
        sa.Column("mac", sa.String(length=12), nullable=False),
        sa.Column("vendor", sa.String(length=32), nullable=True),
        sa.Column("model_guess", sa.String(length=64), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("path", sa.String(length=256), nullable=True),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("mac", name=op.f("pk_unprovisioned_devices")),
    )
    with op.batch_alter_table("unprovisioned_devices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unprovisioned_devices_last_seen_at"), ["last_seen_at"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("main_extension", sa.String(length=16), nullable=False),
        sa.Column("cli_custom", sa.String(length=16), nullable=True),
        sa.Column("primary_device_id", sa.Integer(), nullable=True),
        sa.Column("team_app_enabled", sa.Boolean(), nullable=False),
        sa.Column("team_app_smart_working", sa.Boolean(), nullable=False),
        sa.Column("team_app_gsm_mode", sa.Boolean(), nullable=False),
        sa.Column("team_app_gsm_number", sa.String(length=24), nullable=True),
        sa.Column("team_app_fallback_timeout_s", sa.Integer(), nullable=True),
        sa.Column("team_app_callback_enabled", sa.Boolean(), nullable=True),
        sa.Column("client_enabled", sa.Boolean(), nullable=False),
        sa.Column("client_smart_working", sa.Boolean(), nullable=False),
        sa.Column("client_web_phone", sa.Boolean(), nullable=False),
        sa.Column("client_video_calls", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("main_extension", name=op.f("uq_users_main_extension")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("extension", sa.String(length=16), nullable=False),
        sa.Column("model_id", sa.String(length=64), nullable=False),
        sa.Column("mac", sa.String(length=12), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("sip_username", sa.String(length=64), nullable=False),
        sa.Column("sip_password", sa.String(length=128), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_seen_ip", sa.String(length=45), nullable=True),
        sa.Column("last_seen_user_agent", sa.String(length=256), nullable=True),
        sa.Column("last_seen_firmware", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["device_models.id"], name=op.f("fk_devices_model_id_device_models")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_devices_user_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_devices")),
        sa.UniqueConstraint("extension", name=op.f("uq_devices_extension")),
        sa.UniqueConstraint("id", "user_id", name="uq_devices_id_user_id"),
        sa.UniqueConstraint("mac", name=op.f("uq_devices_mac")),
    )
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_devices_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_devices_user_id"), ["user_id"], unique=False)

    # users <-> devices is a cycle: the primary-device key is added once both tables exist.
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_users_primary_device_own",
            "devices",
            ["primary_device_id", "id"],
            ["id", "user_id"],
        )

    models = sa.table(
        "device_models",
        sa.column("id", sa.String),
        sa.column("vendor", sa.String),
        sa.column("name", sa.String),
        sa.column("family", sa.String),
    )
    op.bulk_insert(
        models,
        [dict(zip(("id", "vendor", "name", "family"), row, strict=True)) for row in CATALOGUE],
    )


def downgrade() -> None:
    with op.batch_alter_table("devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_devices_user_id"))
        batch_op.drop_index(batch_op.f("ix_devices_model_id"))

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("fk_users_primary_device_own", type_="foreignkey")
    op.drop_table("devices")
    op.drop_table("users")
    with op.batch_alter_table("unprovisioned_devices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unprovisioned_devices_last_seen_at"))

    op.drop_table("unprovisioned_devices")
    op.drop_table("settings")
    op.drop_table("licences")
    with op.batch_alter_table("device_models", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_models_vendor"))

    op.drop_table("device_models")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_object")
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))

    op.drop_table("audit_log")
    op.drop_table("api_tokens")
