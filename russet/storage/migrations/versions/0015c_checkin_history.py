"""Check-ins over time: devices seen per 15-minute window, kept 30 days (russet.mdm.checkins).

Revision ID: 0015c_checkin_history
Revises: 0015a_account_driven
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015c_checkin_history"
down_revision = "0015a_account_driven"
branch_labels = None
depends_on = None

When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "checkin_samples",
        sa.Column("window_end", When, nullable=False),
        sa.Column("window_start", When, nullable=False),
        sa.Column("devices", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("window_end", name="pk_checkin_samples"),
    )


def downgrade() -> None:
    op.drop_table("checkin_samples")
