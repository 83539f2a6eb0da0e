"""APNs push state per enrollment: requests, outcomes, dead tokens, retry and sweep backoff.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "apns_push",
        sa.Column("enrollment_id", sa.String(300), nullable=False),
        sa.Column("requested_at", TS, nullable=True),
        sa.Column("sweep_count", sa.Integer(), nullable=False),
        sa.Column("next_sweep_at", TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("retry_at", TS, nullable=True),
        sa.Column("dead_at", TS, nullable=True),
        sa.Column("outcome", sa.String(30), nullable=True),
        sa.Column("outcome_at", TS, nullable=True),
        sa.Column("last_push_at", TS, nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_reason", sa.String(200), nullable=True),
        sa.Column("last_apns_id", sa.String(100), nullable=True),
        sa.ForeignKeyConstraint(
            ["enrollment_id"],
            ["enrollments.id"],
            name="fk_apns_push_enrollment_id_enrollments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("enrollment_id", name="pk_apns_push"),
    )
    op.create_index("ix_apns_push_requested_at", "apns_push", ["requested_at"])
    op.create_index("ix_apns_push_next_sweep_at", "apns_push", ["next_sweep_at"])


def downgrade() -> None:
    op.drop_table("apns_push")
