"""Apple Business / School Manager: servers (key, sealed token), account, sync state, devices,
enrollment profiles and per-device profile results.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "abm_servers",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("certificate_der", sa.LargeBinary(), nullable=False),
        sa.Column("sealed_key", sa.LargeBinary(), nullable=True),
        sa.Column("sealed_token", sa.LargeBinary(), nullable=True),
        sa.Column("access_token_expiry", TS, nullable=True),
        sa.Column("token_stored_at", TS, nullable=True),
        sa.Column("default_profile_uuid", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_abm_servers"),
    )
    op.create_table(
        "abm_accounts",
        sa.Column("connection", sa.String(100), nullable=False),
        *(
            sa.Column(name, sa.Text(), nullable=True)
            for name in (
                "server_name",
                "server_uuid",
                "admin_id",
                "facilitator_id",
                "org_name",
                "org_email",
                "org_phone",
                "org_address",
                "org_id",
                "org_id_hash",
                "org_type",
                "org_version",
                "urls",
            )
        ),
        sa.Column("fetched_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("connection", name="pk_abm_accounts"),
    )
    op.create_table(
        "abm_sync_state",
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("phase", sa.String(10), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("fetched_until", TS, nullable=True),
        sa.Column("fetch_started_at", TS, nullable=True),
        sa.Column("fetch_completed_at", TS, nullable=True),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("retry_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("connection", name="pk_abm_sync_state"),
    )
    op.create_table(
        "abm_devices",
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("model", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("color", sa.Text(), nullable=True),
        sa.Column("asset_tag", sa.Text(), nullable=True),
        sa.Column("os", sa.Text(), nullable=True),
        sa.Column("device_family", sa.Text(), nullable=True),
        sa.Column("profile_status", sa.Text(), nullable=True),
        sa.Column("profile_uuid", sa.String(64), nullable=True),
        sa.Column("profile_assign_time", TS, nullable=True),
        sa.Column("profile_push_time", TS, nullable=True),
        sa.Column("device_assigned_by", sa.Text(), nullable=True),
        sa.Column("device_assigned_date", TS, nullable=True),
        sa.Column("mdm_migration_deadline", TS, nullable=True),
        sa.Column("op_type", sa.String(10), nullable=True),
        sa.Column("op_date", TS, nullable=True),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("connection", "serial_number", name="pk_abm_devices"),
    )
    op.create_index("ix_abm_devices_serial_number", "abm_devices", ["serial_number"])
    op.create_table(
        "abm_profiles",
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("profile_uuid", sa.String(64), nullable=False),
        sa.Column("profile_name", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("connection", "profile_uuid", name="pk_abm_profiles"),
    )
    op.create_table(
        "abm_profile_results",
        sa.Column("connection", sa.String(100), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),
        sa.Column("profile_uuid", sa.String(64), nullable=True),
        sa.Column("status", sa.String(40), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.PrimaryKeyConstraint("connection", "serial_number", name="pk_abm_profile_results"),
    )


def downgrade() -> None:
    for table in (
        "abm_profile_results",
        "abm_profiles",
        "abm_devices",
        "abm_sync_state",
        "abm_accounts",
        "abm_servers",
    ):
        op.drop_table(table)
