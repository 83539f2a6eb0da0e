"""Tables shared by every Apple service: the connection registry (`apple.connections`), the ledger of
what was exchanged with Apple (`apple.ledger`, written by the gateway) and purge receipts.

APNs, ABM and VPP are all connections here; each of those features keeps its own details in its
own tables, keyed by the connection's name.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from russet.infra.metadata import BigId, metadata

apple_connections = Table(
    "apple_connections",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("service", String(20), nullable=False),  # apns | abm | vpp
    Column("name", String(100), nullable=False),
    Column("status", String(20), nullable=False),  # active | disconnected
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disconnected_at", DateTime(timezone=True), nullable=True),
    # A lease: long operations (a sync) and purge exclude each other through it.
    Column("busy_with", String(100), nullable=True),
    Column("busy_until", DateTime(timezone=True), nullable=True),
    UniqueConstraint("service", "name"),
)


ledger = Table(
    "ledger",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("service", String(20), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("endpoint", String(200), nullable=False),  # a template, never values: "POST /3/device/{token}"
    Column("direction", String(10), nullable=False),  # sent | received
    Column("field", String(60), nullable=False),
    Column("subject_type", String(20), nullable=False),
    Column("subject_fp", String(32), nullable=True),  # keyed fingerprint of the subject's identifier
    Column("value_fp", String(32), nullable=True),  # keyed fingerprint of the value (never the value)
    Column("purpose", String(200), nullable=False),
    Column("status", Integer, nullable=True),  # HTTP status of the exchange; NULL when no answer came
    Column("request_id", String(100), nullable=True),  # Apple's id for the request, when it gives one
    Index("ix_ledger_subject_fp", "subject_fp"),
    Index("ix_ledger_value_fp", "value_fp"),
    Index("ix_ledger_at", "at"),
)


purge_receipts = Table(
    "purge_receipts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("service", String(20), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("receipt", Text, nullable=False),  # the JSON receipt as given to the admin
)


# -- the ledger's reports (issue #16): counts kept past retention, retention per service, erasures --

# What is left of ledger rows once their detail is gone (past a service's retention, or erased for
# one subject): per UTC day, service, connection, direction and field, how many rows there were and
# the first and last time. The report adds these to the detail rows, so totals never change.
ledger_counts = Table(
    "ledger_counts",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("day", String(10), nullable=False),  # YYYY-MM-DD (UTC)
    Column("service", String(20), nullable=False),
    Column("connection", String(100), nullable=False),
    Column("direction", String(10), nullable=False),
    Column("field", String(60), nullable=False),
    Column("times", BigInteger, nullable=False),
    Column("first_at", DateTime(timezone=True), nullable=False),
    Column("last_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("day", "service", "connection", "direction", "field"),
)


# Keep ledger detail this many days for a service, then only counts (`russet ledger retention`).
ledger_retention = Table(
    "ledger_retention",
    metadata,
    Column("service", String(20), primary_key=True),
    Column("days", Integer, nullable=False),
    Column("set_by", String(100), nullable=True),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=True),
    Column("last_aggregated", BigInteger, nullable=True),  # rows made counts by the last run,
)


# Erasures of one subject's ledger detail: when, by whom, how many rows per service became counts.
# The subject itself is not kept (that would undo the erasure).
ledger_erasures = Table(
    "ledger_erasures",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("requested_by", String(100), nullable=True),
    Column("reason", Text, nullable=True),
    Column("row_count", Integer, nullable=False),
    Column("per_service", Text, nullable=False),  # JSON {service: rows}
)
