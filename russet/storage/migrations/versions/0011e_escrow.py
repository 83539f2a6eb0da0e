"""Escrow: device secrets (sealed), who was shown one, the Activation Lock service connection.

Revision ID: 0011e_escrow
Revises: 0010b_blueprints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011e_escrow"
down_revision = "0011p_apps"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "escrow_secrets",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escrow_secrets"),
        sa.UniqueConstraint("device_id", "kind", "state", name="uq_escrow_secrets_device_id_kind_state"),
    )
    op.create_index("ix_escrow_secrets_command_uuid", "escrow_secrets", ["command_uuid"])
    op.create_table(
        "escrow_secret_views",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("viewer", sa.String(100), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escrow_secret_views"),
    )
    op.create_index("ix_escrow_secret_views_device_id", "escrow_secret_views", ["device_id"])
    op.create_table(
        "escrow_activation_lock",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("org_name", sa.String(200), nullable=False),
        sa.Column("guid", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_escrow_activation_lock"),
    )
    op.create_table(
        "escrow_activation_lock_clears",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("device_id", sa.String(255), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(300), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_escrow_activation_lock_clears"),
    )
    op.create_index(
        "ix_escrow_activation_lock_clears_connection", "escrow_activation_lock_clears", ["connection"]
    )


def downgrade() -> None:
    op.drop_table("escrow_activation_lock_clears")
    op.drop_table("escrow_activation_lock")
    op.drop_table("escrow_secret_views")
    op.drop_table("escrow_secrets")
