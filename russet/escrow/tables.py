"""The escrow feature's tables: the secrets Russet keeps for devices, who was shown one, and the
Activation Lock service connection with its record of clear requests.

Device ids are enrollment ids (`enrollments.id`) but not a foreign key: the MDM core owns
enrollments. A secret is sealed (`russet.storage.secretbox`) under `escrow:<device>:<kind>` and its
row is listed in `russet.storage.rotation.SEALED_COLUMNS`. A device has at most one `pending`
secret of a kind (sent to the device, not yet acknowledged) and one `current` one (acknowledged).
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, Index, Integer, LargeBinary, String, Table, UniqueConstraint

from russet.apple.connection.columns import connection_name
from russet.infra.metadata import BigId, metadata

escrow_secrets = Table(
    "escrow_secrets",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("device_id", String(255), nullable=False),
    Column("kind", String(30), nullable=False),  # recovery_lock | firmware_password | filevault | bypass_code
    Column("state", String(10), nullable=False),  # pending | current
    Column("sealed_secret", LargeBinary, nullable=False),
    Column("command_uuid", String(64), nullable=True),  # the command that set it (pending: awaited)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("acknowledged_at", DateTime(timezone=True), nullable=True),
    Column("verified_at", DateTime(timezone=True), nullable=True),  # the device confirmed it
    UniqueConstraint("device_id", "kind", "state"),
)
Index("ix_escrow_secrets_command_uuid", escrow_secrets.c.command_uuid)

# Append-only: who was shown which secret of which device, why and when (until issue #19's audit log).
escrow_secret_views = Table(
    "escrow_secret_views",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("viewer", String(100), nullable=False),
    Column("device_id", String(255), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("reason", String(500), nullable=False),
)
Index("ix_escrow_secret_views_device_id", escrow_secret_views.c.device_id)

# The connection to Apple's Activation Lock service (mutual TLS with the push certificate).
escrow_activation_lock = Table(
    "escrow_activation_lock",
    metadata,
    connection_name("name"),
    Column("org_name", String(200), nullable=False),  # orgName Apple is told
    Column("guid", String(64), nullable=False),  # a random id of this connection, Apple's `guid`
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# Each request to clear a device's Activation Lock, and Apple's answer (purged with the connection).
escrow_activation_lock_clears = Table(
    "escrow_activation_lock_clears",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    connection_name("connection", primary_key=False),
    Column("device_id", String(255), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("requested_by", String(100), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", Integer, nullable=True),  # Apple's HTTP status; NULL when Apple was not reached
    Column("outcome", String(300), nullable=False),
)
Index("ix_escrow_activation_lock_clears_connection", escrow_activation_lock_clears.c.connection)
