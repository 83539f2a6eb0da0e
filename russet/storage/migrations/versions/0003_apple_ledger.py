"""Apple connections, the ledger of exchanged fields, purge receipts.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "apple_connections",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("disconnected_at", TS, nullable=True),
        sa.Column("busy_with", sa.String(100), nullable=True),
        sa.Column("busy_until", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_apple_connections"),
        sa.UniqueConstraint("service", "name", name="uq_apple_connections_service_name"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("endpoint", sa.String(200), nullable=False),
        sa.Column("direction", sa.String(10), nullable=False),
        sa.Column("field", sa.String(60), nullable=False),
        sa.Column("subject_type", sa.String(20), nullable=False),
        sa.Column("subject_fp", sa.String(32), nullable=True),
        sa.Column("value_fp", sa.String(32), nullable=True),
        sa.Column("purpose", sa.String(200), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
    )
    op.create_index("ix_ledger_subject_fp", "ledger", ["subject_fp"])
    op.create_index("ix_ledger_value_fp", "ledger", ["value_fp"])
    op.create_index("ix_ledger_at", "ledger", ["at"])
    op.create_table(
        "purge_receipts",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("service", sa.String(20), nullable=False),
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("receipt", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_purge_receipts"),
    )


def downgrade() -> None:
    for table in ("purge_receipts", "ledger", "apple_connections"):
        op.drop_table(table)
