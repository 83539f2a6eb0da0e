"""The ledger's reports (issue #16): counts kept past retention, retention per service, erasures.

Revision ID: 0012l_ledger_reports
Revises: 0011m_declarative
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012l_ledger_reports"
down_revision = "0011m_declarative"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_counts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("field", sa.String(60), nullable=False),
        sa.Column("times", sa.BigInteger(), nullable=False),
        sa.Column("first_at", When, nullable=False),
        sa.Column("last_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_counts"),
        sa.UniqueConstraint(
            "day",
            "service",
            "connection",
            "direction",
            "field",
            name="uq_ledger_counts_day_service_connection_direction_field",
        ),
    )
    op.create_table(
        "ledger_retention",
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("set_by", sa.String(100), nullable=True),
        sa.Column("set_at", When, nullable=False),
        sa.Column("applied_at", When, nullable=True),
        sa.Column("last_aggregated", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("service", name="pk_ledger_retention"),
    )
    op.create_table(
        "ledger_erasures",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("requested_by", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("row_count", sa.Integer(), nullable=False),
        sa.Column("per_service", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_erasures"),
    )


def downgrade() -> None:
    op.drop_table("ledger_erasures")
    op.drop_table("ledger_retention")
    op.drop_table("ledger_counts")
