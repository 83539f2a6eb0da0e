"""The webhooks feature's tables: receivers (with their sealed HMAC secret), the outbox of events
waiting for each receiver, and the log of every delivery attempt.

An outbox row is one event for one endpoint; its body is sealed (`webhook:<endpoint>:<event>`)
because a raw check-in (NanoMDM's `raw_payload`) carries push tokens and the UnlockToken.
`order_key` is the device the event is about ('' for none): a row is not sent while an earlier row
of the same endpoint and key is still pending, so a receiver sees each device's events in order.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from russet.infra.metadata import BigId, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("url", String(2000), nullable=False),
    Column("events", String(1000), nullable=False),  # comma-separated event types, or '*'
    Column("format", String(16), nullable=False),  # russet | nanomdm
    Column("sealed_secret", LargeBinary, nullable=False),  # the HMAC key, purpose webhook-secret:<id>
    Column("created_at", DateTime(timezone=True), nullable=False),
)

webhook_outbox = Table(
    "webhook_outbox",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint_id", BigId, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(50), nullable=False),
    Column("order_key", String(255), nullable=False),
    Column("sealed_body", LargeBinary, nullable=False),
    Column("state", String(10), nullable=False),  # pending | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True), nullable=True),  # a sender holds it until then
    Column("delivered_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("endpoint_id", "event_id"),
)
Index(
    "ix_webhook_outbox_state_endpoint_id_order_key",
    webhook_outbox.c.state,
    webhook_outbox.c.endpoint_id,
    webhook_outbox.c.order_key,
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("endpoint_id", BigId, nullable=False),
    Column("event_id", String(36), nullable=False),
    Column("event_type", String(50), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer, nullable=True),  # the receiver's HTTP status; none if unreachable
    Column("outcome", String(10), nullable=False),  # delivered | retry | failed
    Column("error", String(500), nullable=False),
)
Index("ix_webhook_deliveries_endpoint_id", webhook_deliveries.c.endpoint_id)
