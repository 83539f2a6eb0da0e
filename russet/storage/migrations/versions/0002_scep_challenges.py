"""SCEP: one-time enrollment challenges (stored as hashes) and identity renewals.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "scep_challenges",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("challenge_hash", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("consumed_at", TS, nullable=True),
        sa.Column("issued_fp", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["issued_fp"], ["certificates.fingerprint"], name="fk_scep_challenges_issued_fp_certificates"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_scep_challenges"),
        sa.UniqueConstraint("challenge_hash", name="uq_scep_challenges_challenge_hash"),
    )
    op.create_table(
        "scep_renewals",
        sa.Column("new_fp", sa.String(64), nullable=False),
        sa.Column("old_fp", sa.String(64), nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["new_fp"], ["certificates.fingerprint"], name="fk_scep_renewals_new_fp_certificates"
        ),
        sa.ForeignKeyConstraint(
            ["old_fp"], ["certificates.fingerprint"], name="fk_scep_renewals_old_fp_certificates"
        ),
        sa.PrimaryKeyConstraint("new_fp", name="pk_scep_renewals"),
    )
    op.create_index("ix_scep_renewals_old_fp", "scep_renewals", ["old_fp"])


def downgrade() -> None:
    op.drop_table("scep_renewals")
    op.drop_table("scep_challenges")
