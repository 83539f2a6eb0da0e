"""Tables shared by every Apple service: the connection registry (`apple.connections`), the ledger of
what was exchanged with Apple (`apple.ledger`, written by the gateway) and purge receipts.

APNs, ABM and VPP are all connections here; each of those features keeps its own details in its
own tables, keyed by the connection's name.
"""

from __future__ import annotations

from sqlalchemy import (
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
