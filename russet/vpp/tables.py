"""Apps and Books (VPP) tables: locations, assets, users, licences, events, notifications and
installs, owned by `russet.vpp.store` (and `vpp.licences`/`vpp.installs` for the install flow).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from russet.apple.connection.columns import OwnedTables, connection_name
from russet.infra.metadata import BigId, metadata

# Every table but vpp_locations holds rows of one location, named in its "location" column.
owned = OwnedTables(metadata, "location")

vpp_locations = Table(
    "vpp_locations",
    metadata,
    connection_name("name"),  # the connection's own row
    Column("sealed_token", LargeBinary, nullable=True),  # SecretBox: the .vpptoken; NULL once destroyed
    Column("token_sha256", String(64), nullable=True, unique=True),  # the same token loaded twice
    Column("token_expires_at", DateTime(timezone=True), nullable=True),
    Column("token_stored_at", DateTime(timezone=True), nullable=True),
    Column("org_name", Text, nullable=True),
    Column("mdm_id", String(64), nullable=False),  # Russet's mdmInfo.id for this location
    Column("notify_secret_hash", String(64), nullable=True),  # SHA-256 of the notification secret
    Column("notification_url", Text, nullable=True),  # registered with Apple; NULL: events are polled
    Column("location_name", Text, nullable=True),
    Column("country", String(10), nullable=True),
    Column("uid", String(100), nullable=True),  # Apple's library id
    Column("default_platform", String(40), nullable=True),
    Column("website_url", Text, nullable=True),
    Column("limits", Text, nullable=True),  # JSON: service config limits
    Column("assets_version", String(100), nullable=True),
    Column("last_sync_at", DateTime(timezone=True), nullable=True),
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    # JSON mdmInfo of another MDM seen managing the location: Russet stops using it until re-added.
    Column("taken_over_by", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


vpp_assets = owned.table(
    "vpp_assets",
    Column("adam_id", String(40), primary_key=True),
    Column("pricing_param", String(10), primary_key=True),  # STDQ | PLUS
    Column("product_type", String(20), nullable=True),  # App | Book
    Column("assigned_count", Integer, nullable=False),
    Column("available_count", Integer, nullable=False),
    Column("retired_count", Integer, nullable=False),
    Column("total_count", Integer, nullable=False),
    Column("device_assignable", Boolean, nullable=False),
    Column("revocable", Boolean, nullable=False),
    Column("supported_platforms", Text, nullable=True),  # JSON array
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(
        "assigned_count >= 0 AND available_count >= 0 AND retired_count >= 0 AND total_count >= 0",
        name="ck_vpp_assets_counts",
    ),
)


vpp_users = owned.table(
    "vpp_users",
    Column("client_user_id", String(64), primary_key=True),  # a GUID Russet generated
    Column("email", Text, nullable=True),
    Column("managed_apple_id", Text, nullable=True),
    # creating | Registered | Associated | Retired | failed (Apple refused to create it)
    Column("status", String(20), nullable=False),
    Column("pending", Text, nullable=True),  # JSON: the update or retire waiting for Apple's answer
    Column("event_id", String(64), nullable=True),  # the event of the last request about the user
    Column("invite_code", Text, nullable=True),
    Column("id_hash", Text, nullable=True),
    Column("error", Text, nullable=True),  # Apple's answer to the last failed request
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


vpp_licences = Table(
    "vpp_licences",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    connection_name(owned.owner, primary_key=False),
    Column("adam_id", String(40), nullable=False),
    Column("pricing_param", String(10), nullable=False),
    Column("subject_type", String(10), nullable=False),  # device (serial number) | user (client user id)
    Column("subject", String(100), nullable=False),
    # associating | assigned | failed | disassociating | revoking
    Column("status", String(20), nullable=False),
    Column("event_id", String(64), nullable=True),
    Column("error_number", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("reason", Text, nullable=True),  # why it is being released (admin, unenrolled, erased, retired)
    Column("assigned_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint(
        "location", "adam_id", "pricing_param", "subject_type", "subject", name="uq_vpp_licences_pair"
    ),
    Index("ix_vpp_licences_location_event_id", "location", "event_id"),
    Index("ix_vpp_licences_subject", "subject"),
)


vpp_events = owned.table(
    "vpp_events",
    Column("event_id", String(64), primary_key=True),
    Column("event_type", String(20), nullable=False),  # ASSOCIATE | DISASSOCIATE | REVOKE | CREATE | ...
    Column("status", String(10), nullable=False),  # PENDING | COMPLETE | FAILED
    Column("reason", Text, nullable=True),
    Column("num_requested", Integer, nullable=True),
    Column("num_completed", Integer, nullable=True),
    Column("failures", Text, nullable=True),  # JSON: Apple's per-item failures
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("completed_at", DateTime(timezone=True), nullable=True),
    Column("completed_by", String(20), nullable=True),  # notification | status
    Column("last_polled_at", DateTime(timezone=True), nullable=True),
    Index("ix_vpp_events_status", "status"),
)


vpp_notifications = owned.table(
    "vpp_notifications",
    # Apple may deliver a notification more than once: its id is kept to apply it once.
    Column("notification_id", String(64), primary_key=True),
    Column("notification_type", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


vpp_installs = Table(
    "vpp_installs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    connection_name(owned.owner, primary_key=False),
    Column("enrollment_id", String(300), nullable=False),
    Column("serial_number", String(64), nullable=False),
    Column("adam_id", String(40), nullable=False),
    Column("pricing_param", String(10), nullable=False),
    Column("status", String(20), nullable=False),  # licensing | queued | installing | installed | failed
    Column("install_command_uuid", String(64), nullable=True),
    Column("list_command_uuid", String(64), nullable=True),  # the last ManagedApplicationList asked
    Column("list_asked_at", DateTime(timezone=True), nullable=True),
    Column("bundle_id", Text, nullable=True),  # from the InstallApplication answer
    Column("state", String(40), nullable=True),  # the device's last State / Status for the app
    Column("reason", Text, nullable=True),
    Column("management_flags", Integer, nullable=True),
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_vpp_installs_status", "status"),
    Index("ix_vpp_installs_enrollment_id", "enrollment_id"),
)
