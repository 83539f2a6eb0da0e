"""Account-driven enrollment: the organisation's domains and the one-use bearer tokens a sign-in buys.

Revision ID: 0015a_account_driven
Revises: 0014e_enrollment_people
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015a_account_driven"
down_revision = "0014e_enrollment_people"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "enrollment_domains",
        sa.Column("domain", sa.String(253), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "enrollment_account_tokens",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("person_id", sa.String(255), nullable=False),
        sa.Column("person_email", sa.String(320), nullable=False),
        sa.Column("person_name", sa.String(255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_enrollment_account_tokens_expires_at", "enrollment_account_tokens", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_enrollment_account_tokens_expires_at", "enrollment_account_tokens")
    op.drop_table("enrollment_account_tokens")
    op.drop_table("enrollment_domains")
