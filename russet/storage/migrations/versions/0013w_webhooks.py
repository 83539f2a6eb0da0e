"""Webhooks: receivers with a sealed HMAC secret, the outbox, the delivery log.

Revision ID: 0013w_webhooks
Revises: 0012r_roles_audit
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013w_webhooks"
down_revision = "0012r_roles_audit"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", sa.String(1000), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_endpoints"),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", BigId, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("order_key", sa.String(255), nullable=False),
        sa.Column("sealed_body", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.Column("next_attempt_at", When, nullable=False),
        sa.Column("claimed_until", When, nullable=True),
        sa.Column("delivered_at", When, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_outbox"),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_outbox_endpoint_id_event_id"),
    )
    op.create_index(
        "ix_webhook_outbox_state_endpoint_id_order_key",
        "webhook_outbox",
        ["state", "endpoint_id", "order_key"],
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("endpoint_id", BigId, nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(50), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", When, nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("error", sa.String(500), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index("ix_webhook_deliveries_endpoint_id", "webhook_deliveries", ["endpoint_id"])


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_endpoint_id", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhook_outbox_state_endpoint_id_order_key", table_name="webhook_outbox")
    op.drop_table("webhook_outbox")
    op.drop_table("webhook_endpoints")
