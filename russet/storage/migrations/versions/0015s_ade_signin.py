"""Enrollment requests indexed by UDID: a device's signed-in person and its ADE look-ups
(`signed_in_people`, `ade_identifiers`, on every Authenticate and TokenUpdate's facts) match on
udid OR serial_number; without this index the udid half scans the table (15 ms at 100,000 rows).

Revision ID: 0015s_ade_signin
Revises: 0015c_checkin_history
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015s_ade_signin"
down_revision = "0015c_checkin_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_enrollment_requests_udid", "enrollment_requests", ["udid"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_requests_udid", table_name="enrollment_requests")
