"""Declarative device management: declarations and their versions, assignments, each device's
effective set and status.

Revision ID: 0011m_declarative
Revises: 0010b_blueprints
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011m_declarative"
down_revision = "0011e_escrow"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ddm_declarations",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("identifier", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=True),
        sa.Column("data_type", sa.String(128), nullable=True),
        sa.Column("profile_ref", sa.String(255), nullable=True),
        sa.Column("profile_version", sa.Integer(), nullable=True),
        sa.Column("server_token", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ddm_declarations"),
        sa.UniqueConstraint("identifier", name="uq_ddm_declarations_identifier"),
    )
    op.create_table(
        "ddm_declaration_versions",
        sa.Column("declaration_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("server_token", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["ddm_declarations.id"],
            name="fk_ddm_declaration_versions_declaration_id_ddm_declarations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("declaration_id", "version", name="pk_ddm_declaration_versions"),
    )
    op.create_table(
        "ddm_assignments",
        sa.Column("declaration_id", sa.BigInteger(), nullable=False),
        sa.Column("target_kind", sa.String(8), nullable=False),
        sa.Column("target", sa.String(300), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["ddm_declarations.id"],
            name="fk_ddm_assignments_declaration_id_ddm_declarations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("declaration_id", "target_kind", "target", name="pk_ddm_assignments"),
    )
    op.create_table(
        "ddm_devices",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("declaration_ids", sa.Text(), nullable=False),
        sa.Column("declarations_token", sa.String(64), nullable=False),
        sa.Column("commanded_token", sa.String(64), nullable=True),
        sa.Column("commanded_at", When, nullable=True),
        sa.Column("status_values", sa.Text(), nullable=True),
        sa.Column("capabilities", sa.Text(), nullable=True),
        sa.Column("last_report", sa.Text(), nullable=True),
        sa.Column("last_full_report", sa.Text(), nullable=True),
        sa.Column("status_at", When, nullable=True),
        sa.Column("updated_at", When, nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_ddm_devices"),
    )
    op.create_table(
        "ddm_device_declarations",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("identifier", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("server_token", sa.String(64), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("valid", sa.String(16), nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("reported_at", When, nullable=False),
        sa.PrimaryKeyConstraint("device_id", "identifier", name="pk_ddm_device_declarations"),
    )
    op.create_index("ix_ddm_device_declarations_identifier", "ddm_device_declarations", ["identifier"])


def downgrade() -> None:
    op.drop_index("ix_ddm_device_declarations_identifier", table_name="ddm_device_declarations")
    for table in (
        "ddm_device_declarations",
        "ddm_devices",
        "ddm_assignments",
        "ddm_declaration_versions",
        "ddm_declarations",
    ):
        op.drop_table(table)
