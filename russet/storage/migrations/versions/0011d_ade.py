"""Automated Device Enrollment done right: the blueprint an ADE profile names, and each ADE
device's way out of Setup Assistant (its items, then DeviceConfigured).

Revision ID: 0011d_ade
Revises: 0010b_blueprints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011d_ade"
down_revision = "0010b_blueprints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("abm_profiles") as batch:
        batch.add_column(sa.Column("blueprint_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "blueprint_ade_setups",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("enrolled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("awaiting_since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.String(20), nullable=True),
        sa.Column("incomplete", sa.Text(), nullable=True),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.String(20), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_blueprint_ade_setups"),
    )
    op.create_index("ix_blueprint_ade_setups_released_at", "blueprint_ade_setups", ["released_at"])


def downgrade() -> None:
    op.drop_index("ix_blueprint_ade_setups_released_at", table_name="blueprint_ade_setups")
    op.drop_table("blueprint_ade_setups")
    with op.batch_alter_table("abm_profiles") as batch:
        batch.drop_column("blueprint_id")
