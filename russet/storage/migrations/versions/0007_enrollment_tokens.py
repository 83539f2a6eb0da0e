"""Enrollment URLs: OTA enrollment tokens (stored as hashes) and the profiles handed out.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "enrollment_tokens",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("note", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("max_uses", sa.Integer(), nullable=True),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_tokens"),
        sa.UniqueConstraint("token_hash", name="uq_enrollment_tokens_token_hash"),
    )
    op.create_table(
        "enrollment_requests",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("token_id", sa.BigInteger(), nullable=True),
        sa.Column("udid", sa.String(255), nullable=True),
        sa.Column("serial_number", sa.String(64), nullable=True),
        sa.Column("product", sa.String(100), nullable=True),
        sa.Column("build_version", sa.String(50), nullable=True),
        sa.Column("os_version", sa.String(50), nullable=True),
        sa.Column("challenge_hash", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["token_id"], ["enrollment_tokens.id"], name="fk_enrollment_requests_token_id_enrollment_tokens"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_enrollment_requests"),
    )
    op.create_index("ix_enrollment_requests_serial_number", "enrollment_requests", ["serial_number"])
    op.create_index("ix_enrollment_requests_at", "enrollment_requests", ["at"])


def downgrade() -> None:
    op.drop_table("enrollment_requests")
    op.drop_table("enrollment_tokens")
