"""Blueprints: their items and scopes, what the reconciler did on each device, its pass lease.

Revision ID: 0010b_blueprints
Revises: 0009c
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010b_blueprints"
down_revision = "0010l_library"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "blueprints",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_blueprints"),
        sa.UniqueConstraint("name", name="uq_blueprints_name"),
    )
    op.create_table(
        "blueprint_items",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("blueprint_id", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("ref", sa.String(255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("payload_identifier", sa.String(255), nullable=True),
        sa.ForeignKeyConstraint(
            ["blueprint_id"],
            ["blueprints.id"],
            name="fk_blueprint_items_blueprint_id_blueprints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_blueprint_items"),
        sa.UniqueConstraint("payload_identifier", name="uq_blueprint_items_payload_identifier"),
    )
    op.create_index("ix_blueprint_items_blueprint_id", "blueprint_items", ["blueprint_id"])
    op.create_table(
        "blueprint_scopes",
        sa.Column("blueprint_id", sa.BigInteger(), nullable=False),
        sa.Column("group_id", sa.BigInteger(), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.ForeignKeyConstraint(
            ["blueprint_id"],
            ["blueprints.id"],
            name="fk_blueprint_scopes_blueprint_id_blueprints",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("blueprint_id", "group_id", name="pk_blueprint_scopes"),
    )
    op.create_table(
        "blueprint_device_items",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("ident", sa.String(255), nullable=False),
        sa.Column("blueprint_id", sa.BigInteger(), nullable=False),
        sa.Column("ref", sa.String(255), nullable=True),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("payload_uuid", sa.String(255), nullable=True),
        sa.Column("content_hash", sa.String(128), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("installed", sa.Boolean(), nullable=False),
        sa.Column("command_uuid", sa.String(64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("device_id", "kind", "ident", name="pk_blueprint_device_items"),
    )
    op.create_index("ix_blueprint_device_items_command_uuid", "blueprint_device_items", ["command_uuid"])
    op.create_table(
        "blueprint_devices",
        sa.Column("device_id", sa.String(300), nullable=False),
        sa.Column("recheck_uuid", sa.String(64), nullable=True),
        sa.Column("recheck_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dirty", sa.Boolean(), nullable=False),
        sa.Column("settled", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("device_id", name="pk_blueprint_devices"),
    )
    op.create_table(
        "blueprint_runs",
        sa.Column("name", sa.String(20), nullable=False),
        sa.Column("holder", sa.String(64), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("full_pass_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("name", name="pk_blueprint_runs"),
    )


def downgrade() -> None:
    op.drop_table("blueprint_runs")
    op.drop_table("blueprint_devices")
    op.drop_index("ix_blueprint_device_items_command_uuid", "blueprint_device_items")
    op.drop_table("blueprint_device_items")
    op.drop_table("blueprint_scopes")
    op.drop_index("ix_blueprint_items_blueprint_id", "blueprint_items")
    op.drop_table("blueprint_items")
    op.drop_table("blueprints")
