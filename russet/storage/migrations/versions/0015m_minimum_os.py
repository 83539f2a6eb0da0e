"""Indexes for how each device enrolled: a device's identity -> the SCEP challenge that bought it
(scep_challenges.issued_fp) -> the enrollment request that handed out that challenge
(enrollment_requests.challenge_hash), and ADE look-ups by UDID (enrollment_requests.udid). Without
them every check-in's device facts scan both tables. (The minimum OS itself lives in settings.)

Revision ID: 0015m_minimum_os
Revises: 0015c_checkin_history
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0015m_minimum_os"
down_revision = "0015c_checkin_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scep_challenges_issued_fp", "scep_challenges", ["issued_fp"])
    op.create_index("ix_enrollment_requests_challenge_hash", "enrollment_requests", ["challenge_hash"])
    op.create_index("ix_enrollment_requests_udid", "enrollment_requests", ["udid"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_requests_udid", table_name="enrollment_requests")
    op.drop_index("ix_enrollment_requests_challenge_hash", table_name="enrollment_requests")
    op.drop_index("ix_scep_challenges_issued_fp", table_name="scep_challenges")
