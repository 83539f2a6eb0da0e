"""Initial schema: settings, certificates, enrollments, inventory, command queue, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(100), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("sealed_value", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_settings"),
    )
    op.create_table(
        "certificates",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("not_before", TS, nullable=False),
        sa.Column("not_after", TS, nullable=False),
        sa.Column("der", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_certificates"),
        sa.UniqueConstraint("fingerprint", name="uq_certificates_fingerprint"),
    )
    op.create_index("ix_certificates_kind", "certificates", ["kind"])
    op.create_table(
        "enrollments",
        sa.Column("id", sa.String(300), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("enrollment_type", sa.String(30), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("user_short_name", sa.String(255), nullable=True),
        sa.Column("user_long_name", sa.String(255), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("identity_fp", sa.String(64), nullable=True),
        sa.Column("topic", sa.String(255), nullable=True),
        sa.Column("push_token", sa.String(512), nullable=True),
        sa.Column("push_magic", sa.String(255), nullable=True),
        sa.Column("sealed_unlock_token", sa.LargeBinary(), nullable=True),
        sa.Column("awaiting_configuration", sa.Boolean(), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=True),
        sa.Column("model", sa.String(100), nullable=True),
        sa.Column("model_name", sa.String(100), nullable=True),
        sa.Column("product_name", sa.String(100), nullable=True),
        sa.Column("device_name", sa.String(255), nullable=True),
        sa.Column("os_version", sa.String(50), nullable=True),
        sa.Column("build_version", sa.String(50), nullable=True),
        sa.Column("authenticated_at", TS, nullable=True),
        sa.Column("token_updated_at", TS, nullable=True),
        sa.Column("checked_out_at", TS, nullable=True),
        sa.Column("last_seen_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollments"),
    )
    op.create_index("ix_enrollments_device_id", "enrollments", ["device_id"])
    op.create_index("ix_enrollments_serial_number", "enrollments", ["serial_number"])
    op.create_index("ix_enrollments_identity_fp", "enrollments", ["identity_fp"])
    op.create_table(
        "inventory",
        sa.Column("enrollment_id", sa.String(300), nullable=False),
        sa.Column("section", sa.String(60), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_inventory_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrollment_id", "section", name="pk_inventory"),
    )
    op.create_table(
        "commands",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("request_type", sa.String(100), nullable=False),
        sa.Column("body_template", sa.LargeBinary(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_commands"),
    )
    op.create_table(
        "command_queue",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=False),
        sa.Column("command_id", sa.BigInteger(), nullable=False),
        sa.Column("enrollment_id", sa.String(300), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("notnow_count", sa.Integer(), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("result", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sent_at", TS, nullable=True),
        sa.Column("reported_at", TS, nullable=True),
        sa.ForeignKeyConstraint(["command_id"], ["commands.id"], name="fk_command_queue_command_id_commands"),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_command_queue_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_command_queue"),
        sa.UniqueConstraint("command_uuid", name="uq_command_queue_command_uuid"),
    )
    op.create_index(
        "ix_command_queue_enrollment_id_status_id", "command_queue", ["enrollment_id", "status", "id"]
    )
    op.create_index("ix_command_queue_command_id", "command_queue", ["command_id"])
    op.create_table(
        "api_keys",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.UniqueConstraint("name", name="uq_api_keys_name"),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_key_hash"),
    )


def downgrade() -> None:
    for table in (
        "api_keys",
        "command_queue",
        "commands",
        "inventory",
        "enrollments",
        "certificates",
        "settings",
    ):
        op.drop_table(table)
