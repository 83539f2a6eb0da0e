"""Apps: the app catalogue and the Apps and Books licence requests of the reconciler.

Revision ID: 0011p_apps
Revises: 0010b_blueprints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011p_apps"
down_revision = "0011d_ade"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("bundle_id", sa.String(255), nullable=False),
        sa.Column("version", sa.String(100), nullable=True),
        sa.Column("title", sa.String(255), nullable=True),
        sa.Column("adam_id", sa.String(40), nullable=True),
        sa.Column("pricing", sa.String(10), nullable=True),
        sa.Column("location", sa.String(100), nullable=True),
        sa.Column("manifest", sa.Text(), nullable=True),
        sa.Column("package_sha256", sa.String(64), nullable=True),
        sa.Column("package_size", sa.BigInteger(), nullable=True),
        sa.Column("package_kind", sa.String(4), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_apps"),
        sa.UniqueConstraint("name", name="uq_apps_name"),
    )
    op.create_table(
        "app_licence_requests",
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("serial", sa.String(64), nullable=False),
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("app_id", "serial", name="pk_app_licence_requests"),
    )
    op.create_index("ix_app_licence_requests_state", "app_licence_requests", ["state"])


def downgrade() -> None:
    op.drop_index("ix_app_licence_requests_state", table_name="app_licence_requests")
    op.drop_table("app_licence_requests")
    op.drop_table("apps")
