"""The MDM core's tables: enrollments and their inventory, the command queue, bootstrap tokens,
refused re-enrollments and check-in signatures already seen.

All of them are written by the device protocol (`/mdm/checkin`, `/mdm/connect`) through the core's
stores (`mdm.enrollments`, `mdm.queue`, `mdm.bootstrap`, `mdm.reenroll`,
`mdm.signatures`). `enrollment_refusals` lives here rather than in `russet.enrollment`: the
refusal is decided at the MDM Authenticate check-in (`mdm.reenroll`), not when an enrollment
profile is handed out.
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

enrollments = Table(
    "enrollments",
    metadata,
    # Resolved enrollment id: UDID or EnrollmentID for a device channel, "<device>:<user>" for a user.
    Column("id", String(300), primary_key=True),
    Column("device_id", String(255), nullable=False),  # the device channel's id (itself for devices)
    Column("channel", String(10), nullable=False),  # device | user
    Column("enrollment_type", String(30), nullable=False),  # device | user_enrollment | user | shared_ipad
    Column("user_id", String(255), nullable=True),
    Column("user_short_name", String(255), nullable=True),
    Column("user_long_name", String(255), nullable=True),
    Column("enabled", Boolean, nullable=False, default=False),
    Column("identity_fp", String(64), nullable=True),  # bound certificate (SHA-256 of the DER)
    Column("topic", String(255), nullable=True),
    # SecretBox: push token and PushMagic together (mdm.enrollments.pack_push)
    Column("sealed_push", LargeBinary, nullable=True),
    Column("sealed_unlock_token", LargeBinary, nullable=True),
    Column("awaiting_configuration", Boolean, nullable=False, default=False),
    Column("serial_number", String(64), nullable=True),
    Column("model", String(100), nullable=True),
    Column("model_name", String(100), nullable=True),
    Column("product_name", String(100), nullable=True),
    Column("device_name", String(255), nullable=True),
    Column("os_version", String(50), nullable=True),
    Column("build_version", String(50), nullable=True),
    Column("authenticated_at", DateTime(timezone=True), nullable=True),
    Column("token_updated_at", DateTime(timezone=True), nullable=True),
    Column("checked_out_at", DateTime(timezone=True), nullable=True),
    Column("last_seen_at", DateTime(timezone=True), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # An admin opened re-enrollment with another identity until then (one use; russet.mdm.reenroll).
    Column("reenroll_until", DateTime(timezone=True), nullable=True),
    # An admin chose to forget the device: its next request is told ErrorUnrecognizedDevice.
    Column("forgotten_at", DateTime(timezone=True), nullable=True),
    Index("ix_enrollments_device_id", "device_id"),
    Index("ix_enrollments_serial_number", "serial_number"),
    Index("ix_enrollments_identity_fp", "identity_fp"),
)


inventory = Table(
    "inventory",
    metadata,
    Column("enrollment_id", String(300), ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True),
    Column("section", String(60), primary_key=True),  # DeviceInformation | SecurityInfo | ...
    Column("data", Text, nullable=False),  # JSON
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


commands = Table(
    "commands",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_type", String(100), nullable=False),
    # The command plist with a placeholder CommandUUID, rendered once at enqueue time so
    # delivering it is a byte substitution (see mdm.queue.UUID_PLACEHOLDER).
    Column("body_template", LargeBinary, nullable=False),
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


command_queue = Table(
    "command_queue",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),  # also the delivery order
    Column("command_uuid", String(64), nullable=False, unique=True),
    Column("command_id", BigInteger, ForeignKey("commands.id"), nullable=False),
    Column("enrollment_id", String(300), ForeignKey("enrollments.id", ondelete="CASCADE"), nullable=False),
    # queued | sent | notnow | acknowledged | error | format_error | cancelled | undeliverable
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("notnow_count", Integer, nullable=False, default=0),
    Column("status_reason", Text, nullable=True),
    Column("result", LargeBinary, nullable=True),  # the device's full report plist, as sent
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), nullable=True),
    Column("reported_at", DateTime(timezone=True), nullable=True),
    Index("ix_command_queue_enrollment_id_status_id", "enrollment_id", "status", "id"),
    Index("ix_command_queue_command_id", "command_id"),
)


bootstrap_tokens = Table(
    "bootstrap_tokens",
    metadata,
    # The device channel's enrollment id; gone with the enrollment.
    Column("device_id", String(300), ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True),
    Column("sealed_token", LargeBinary, nullable=False),  # SecretBox ciphertext, never the token
    Column("escrowed_at", DateTime(timezone=True), nullable=False),
)


enrollment_refusals = Table(
    "enrollment_refusals",
    metadata,
    # An Authenticate that presented another identity for an enrolled device and was refused.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("device_id", String(300), nullable=False),
    Column("serial_number", String(64), nullable=True),  # as the request claimed it
    Column("presented_fp", String(64), nullable=False),  # the identity that was refused
    Column("bound_fp", String(64), nullable=True),  # the identity the device is bound to
    Column("reason", Text, nullable=False),
    Index("ix_enrollment_refusals_device_id", "device_id"),
    Index("ix_enrollment_refusals_at", "at"),
)


seen_signatures = Table(
    "seen_signatures",
    metadata,
    # SHA-256 of a check-in's Mdm-Signature: the first insert wins, a repeat is a replay.
    Column("digest", String(64), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False),  # outside the signing window then
    Index("ix_seen_signatures_expires_at", "expires_at"),
)


# Check-ins over time (issue #19 item 5): every 15 minutes the `checkins.sample` task counts the
# device channels whose last check-in falls in the window since the previous sample; kept 30 days
# (russet.mdm.checkins). The device hot path writes nothing here.
checkin_samples = Table(
    "checkin_samples",
    metadata,
    Column("window_end", DateTime(timezone=True), primary_key=True),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("devices", Integer, nullable=False),
)
