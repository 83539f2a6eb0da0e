"""The declarative feature's tables: declarations (versioned), their assignments, each device's
effective set and what it reported.

Device ids are enrollment ids (`enrollments.id`) but not a foreign key: the MDM core owns
enrollments. Group targets hold the group id as text (the groups feature owns groups), so a deleted
group simply reaches no device. JSON is kept as text, read and written identically on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from russet.infra.metadata import BigId, metadata

ddm_declarations = Table(
    "ddm_declarations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("identifier", String(64), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),  # activation | configuration | asset | management
    Column("type", String(128), nullable=False),  # com.apple.configuration.passcode.settings ...
    Column("payload", Text, nullable=False),  # the Payload as JSON
    # Bytes served at the per-device asset URL (an asset's data, a legacy profile), if uploaded.
    Column("data", LargeBinary, nullable=True),
    Column("data_type", String(128), nullable=True),
    # A legacy declaration wrapping a profile-library profile: its name and pinned version.
    Column("profile_ref", String(255), nullable=True),
    Column("profile_version", Integer, nullable=True),
    Column("server_token", String(64), nullable=False),  # derived from the content
    Column("version", Integer, nullable=False),
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ddm_declaration_versions = Table(
    "ddm_declaration_versions",
    metadata,
    Column(
        "declaration_id",
        BigInteger,
        ForeignKey("ddm_declarations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("server_token", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("data_sha256", String(64), nullable=True),
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

ddm_assignments = Table(
    "ddm_assignments",
    metadata,
    Column(
        "declaration_id",
        BigInteger,
        ForeignKey("ddm_declarations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("target_kind", String(8), primary_key=True),  # device | group
    Column("target", String(300), primary_key=True),  # an enrollment id, or a group id as text
)

ddm_devices = Table(
    "ddm_devices",
    metadata,
    Column("device_id", String(300), primary_key=True),
    Column("declaration_ids", Text, nullable=False),  # the effective set: JSON list of ids
    Column("declarations_token", String(64), nullable=False),  # hash of the effective set
    Column("commanded_token", String(64), nullable=True),  # the set a DeclarativeManagement was sent for
    Column("commanded_at", DateTime(timezone=True), nullable=True),
    Column("status_values", Text, nullable=True),  # JSON: status item name -> latest value
    Column("capabilities", Text, nullable=True),  # JSON: management.client-capabilities
    Column("last_report", Text, nullable=True),  # the latest status report, whole
    Column("last_full_report", Text, nullable=True),  # the latest with FullReport true
    Column("status_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

ddm_device_declarations = Table(
    "ddm_device_declarations",
    metadata,
    Column("device_id", String(300), primary_key=True),
    Column("identifier", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("server_token", String(64), nullable=True),
    Column("active", Boolean, nullable=True),
    Column("valid", String(16), nullable=True),  # valid | invalid | unknown
    Column("reasons", Text, nullable=True),  # JSON list of {code, description, details}
    Column("reported_at", DateTime(timezone=True), nullable=False),
    Index("ix_ddm_device_declarations_identifier", "identifier"),
)
