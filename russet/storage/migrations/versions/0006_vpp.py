"""Apps and Books (VPP): locations (sealed content token), assets with licence counts, users,
licences per device or user, asynchronous events, notifications seen, and app installs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vpp_locations",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("sealed_token", sa.LargeBinary(), nullable=True),
        sa.Column("token_sha256", sa.String(64), nullable=True),
        sa.Column("token_expires_at", TS, nullable=True),
        sa.Column("token_stored_at", TS, nullable=True),
        sa.Column("org_name", sa.Text(), nullable=True),
        sa.Column("mdm_id", sa.String(64), nullable=False),
        sa.Column("notify_secret_hash", sa.String(64), nullable=True),
        sa.Column("notification_url", sa.Text(), nullable=True),
        sa.Column("location_name", sa.Text(), nullable=True),
        sa.Column("country", sa.String(10), nullable=True),
        sa.Column("uid", sa.String(100), nullable=True),
        sa.Column("default_platform", sa.String(40), nullable=True),
        sa.Column("website_url", sa.Text(), nullable=True),
        sa.Column("limits", sa.Text(), nullable=True),
        sa.Column("assets_version", sa.String(100), nullable=True),
        sa.Column("last_sync_at", TS, nullable=True),
        sa.Column("last_attempt_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("taken_over_by", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_vpp_locations"),
        sa.UniqueConstraint("token_sha256", name="uq_vpp_locations_token_sha256"),
    )
    op.create_table(
        "vpp_assets",
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("adam_id", sa.String(40), nullable=False),
        sa.Column("pricing_param", sa.String(10), nullable=False),
        sa.Column("product_type", sa.String(20), nullable=True),
        sa.Column("assigned_count", sa.Integer(), nullable=False),
        sa.Column("available_count", sa.Integer(), nullable=False),
        sa.Column("retired_count", sa.Integer(), nullable=False),
        sa.Column("total_count", sa.Integer(), nullable=False),
        sa.Column("device_assignable", sa.Boolean(), nullable=False),
        sa.Column("revocable", sa.Boolean(), nullable=False),
        sa.Column("supported_platforms", sa.Text(), nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("location", "adam_id", "pricing_param", name="pk_vpp_assets"),
        sa.CheckConstraint(
            "assigned_count >= 0 AND available_count >= 0 AND retired_count >= 0 AND total_count >= 0",
            name="ck_vpp_assets_counts",
        ),
    )
    op.create_table(
        "vpp_users",
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("client_user_id", sa.String(64), nullable=False),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("managed_apple_id", sa.Text(), nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("pending", sa.Text(), nullable=True),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("invite_code", sa.Text(), nullable=True),
        sa.Column("id_hash", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("location", "client_user_id", name="pk_vpp_users"),
    )
    op.create_table(
        "vpp_licences",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("adam_id", sa.String(40), nullable=False),
        sa.Column("pricing_param", sa.String(10), nullable=False),
        sa.Column("subject_type", sa.String(10), nullable=False),
        sa.Column("subject", sa.String(100), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=True),
        sa.Column("error_number", sa.Integer(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("assigned_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vpp_licences"),
        sa.UniqueConstraint(
            "location", "adam_id", "pricing_param", "subject_type", "subject", name="uq_vpp_licences_pair"
        ),
    )
    op.create_index("ix_vpp_licences_location_event_id", "vpp_licences", ["location", "event_id"])
    op.create_index("ix_vpp_licences_subject", "vpp_licences", ["subject"])
    op.create_table(
        "vpp_events",
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("event_type", sa.String(20), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("num_requested", sa.Integer(), nullable=True),
        sa.Column("num_completed", sa.Integer(), nullable=True),
        sa.Column("failures", sa.Text(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("completed_by", sa.String(20), nullable=True),
        sa.Column("last_polled_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("location", "event_id", name="pk_vpp_events"),
    )
    op.create_index("ix_vpp_events_status", "vpp_events", ["status"])
    op.create_table(
        "vpp_notifications",
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("notification_id", sa.String(64), nullable=False),
        sa.Column("notification_type", sa.String(40), nullable=False),
        sa.Column("received_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("location", "notification_id", name="pk_vpp_notifications"),
    )
    op.create_table(
        "vpp_installs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("location", sa.String(100), nullable=False),
        sa.Column("enrollment_id", sa.String(300), nullable=False),
        sa.Column("serial_number", sa.String(64), nullable=False),
        sa.Column("adam_id", sa.String(40), nullable=False),
        sa.Column("pricing_param", sa.String(10), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("install_command_uuid", sa.String(64), nullable=True),
        sa.Column("list_command_uuid", sa.String(64), nullable=True),
        sa.Column("list_asked_at", TS, nullable=True),
        sa.Column("bundle_id", sa.Text(), nullable=True),
        sa.Column("state", sa.String(40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("management_flags", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(100), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_vpp_installs"),
    )
    op.create_index("ix_vpp_installs_status", "vpp_installs", ["status"])
    op.create_index("ix_vpp_installs_enrollment_id", "vpp_installs", ["enrollment_id"])


def downgrade() -> None:
    for table in (
        "vpp_installs",
        "vpp_notifications",
        "vpp_events",
        "vpp_licences",
        "vpp_users",
        "vpp_assets",
        "vpp_locations",
    ):
        op.drop_table(table)
