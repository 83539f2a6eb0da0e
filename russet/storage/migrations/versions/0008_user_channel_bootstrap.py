"""Bootstrap tokens escrowed per device (sealed); user channels need no new columns.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "bootstrap_tokens",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("sealed_token", sa.LargeBinary(), nullable=False),
        sa.Column("escrowed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["enrollments.id"],
            name="fk_bootstrap_tokens_device_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name="pk_bootstrap_tokens"),
    )


def downgrade() -> None:
    op.drop_table("bootstrap_tokens")
