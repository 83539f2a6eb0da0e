"""APNs push state per enrollment, owned by the pusher (`russet.apns.state`).

A row follows its enrollment (ON DELETE CASCADE to the MDM core's `enrollments`); the foreign key
is named by string so this module needs nothing from the core.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
)

from russet.infra.metadata import metadata

apns_push = Table(
    "apns_push",
    metadata,
    Column("enrollment_id", String(300), ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True),
    # A push is wanted (a command was queued, an admin asked, the sweep found it due); cleared
    # atomically by the worker that claims it.
    Column("requested_at", DateTime(timezone=True), nullable=True),
    Column("sweep_count", Integer, nullable=False, default=0),  # sweep re-pushes since the last request
    Column("next_sweep_at", DateTime(timezone=True), nullable=True),  # when the sweep may push again
    Column("attempts", Integer, nullable=False, default=0),  # failed tries (429, 5xx, no answer) in a row
    Column("retry_at", DateTime(timezone=True), nullable=True),  # not before then (backoff)
    # APNs called the token dead (410, BadDeviceToken): no push until a TokenUpdate after this.
    Column("dead_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(30), nullable=True),  # the latest decision: delivered | retrying | ...
    Column("outcome_at", DateTime(timezone=True), nullable=True),
    Column("last_push_at", DateTime(timezone=True), nullable=True),
    Column("last_status", Integer, nullable=True),  # NULL: no HTTP answer
    Column("last_reason", String(200), nullable=True),
    Column("last_apns_id", String(100), nullable=True),
    Index("ix_apns_push_requested_at", "requested_at"),
    Index("ix_apns_push_next_sweep_at", "next_sweep_at"),
)
