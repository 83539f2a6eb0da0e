"""Device identity safety: re-enrollment openings, forgotten devices, refused enrollments, and
check-in signatures already seen (replay protection shared by every worker and node).

Revision ID: 0009c
Revises: 0009b
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009c"
down_revision = "0009b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch:
        batch.add_column(sa.Column("reenroll_until", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "enrollment_refusals",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=True),
        sa.Column("presented_fp", sa.String(64), nullable=False),
        sa.Column("bound_fp", sa.String(64), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_refusals"),
    )
    op.create_index("ix_enrollment_refusals_device_id", "enrollment_refusals", ["device_id"])
    op.create_index("ix_enrollment_refusals_at", "enrollment_refusals", ["at"])
    op.create_table(
        "seen_signatures",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_seen_signatures"),
    )
    op.create_index("ix_seen_signatures_expires_at", "seen_signatures", ["expires_at"])


def downgrade() -> None:
    op.drop_table("seen_signatures")
    op.drop_table("enrollment_refusals")
    with op.batch_alter_table("enrollments") as batch:
        batch.drop_column("forgotten_at")
        batch.drop_column("reenroll_until")
