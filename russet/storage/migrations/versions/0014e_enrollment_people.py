"""Enrollment requests say who signed in: wider `method` (ade_signin, account), the person's id,
email and name.

Revision ID: 0014e_enrollment_people
Revises: 0013w_webhooks
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014e_enrollment_people"
down_revision = "0013w_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("enrollment_requests") as batch:
        batch.alter_column(
            "method", existing_type=sa.String(10), type_=sa.String(20), existing_nullable=False
        )
        batch.add_column(sa.Column("person_id", sa.String(255), nullable=True))
        batch.add_column(sa.Column("person_email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("person_name", sa.String(255), nullable=True))
        batch.create_index("ix_enrollment_requests_person_id", ["person_id"])


def downgrade() -> None:
    with op.batch_alter_table("enrollment_requests") as batch:
        batch.drop_index("ix_enrollment_requests_person_id")
        batch.drop_column("person_name")
        batch.drop_column("person_email")
        batch.drop_column("person_id")
        batch.alter_column(
            "method", existing_type=sa.String(20), type_=sa.String(10), existing_nullable=False
        )
