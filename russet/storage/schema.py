"""The database schema, as SQLAlchemy Core tables.

Core rather than the ORM: the device hot path runs a couple of hand-shaped statements per
request and should not pay for identity maps. Alembic migrations under `migrations/` create
exactly these tables; a test compares the two.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A BIGINT primary key that SQLite still treats as its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")

settings = Table(
    "settings",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=True),
    Column("sealed_value", LargeBinary, nullable=True),  # SecretBox ciphertext
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("kind", String(40), nullable=False),  # ca | server_signing | device_identity
    Column("fingerprint", String(64), nullable=False, unique=True),  # SHA-256 of the DER
    Column("subject", Text, nullable=False),
    Column("serial", String(64), nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("der", LargeBinary, nullable=False),
    Column("sealed_key", LargeBinary, nullable=True),  # only for Russet's own identities
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_certificates_kind", "kind"),
)

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
    # SecretBox: push token and PushMagic together (storage.enrollments.pack_push)
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
    # delivering it is a byte substitution (see storage.queue.UUID_PLACEHOLDER).
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

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 of the key
    Column("prefix", String(16), nullable=False),  # shown to people to tell keys apart
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# -- Apple services: connections and the ledger of what was exchanged with Apple ------------------

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


# -- SCEP: one-time enrollment challenges and identity renewals ----------------------------------

scep_challenges = Table(
    "scep_challenges",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("challenge_hash", String(64), nullable=False, unique=True),  # SHA-256; never the challenge
    Column("subject", Text, nullable=True),  # RFC 4514 subject the CSR must carry, if bound to one
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("consumed_at", DateTime(timezone=True), nullable=True),
    # The certificate it was redeemed for, written in the transaction that consumes it.
    Column("issued_fp", String(64), ForeignKey("certificates.fingerprint"), nullable=True),
)

scep_renewals = Table(
    "scep_renewals",
    metadata,
    # A certificate issued by a SCEP RenewalReq, and the one whose holder asked for it: lets the
    # enrollment bound to the old certificate move to the new one.
    Column("new_fp", String(64), ForeignKey("certificates.fingerprint"), primary_key=True),
    Column("old_fp", String(64), ForeignKey("certificates.fingerprint"), nullable=False),
    Column("renewed_at", DateTime(timezone=True), nullable=False),
    Index("ix_scep_renewals_old_fp", "old_fp"),
)


# -- Apple Business / School Manager: device assignment servers ("DEP"), their devices, profiles ---

abm_servers = Table(
    "abm_servers",
    metadata,
    Column("name", String(100), primary_key=True),  # the connection's name (apple_connections.name)
    Column("certificate_der", LargeBinary, nullable=False),  # public half, uploaded to ABM/ASM
    Column("sealed_key", LargeBinary, nullable=True),  # SecretBox; NULL once destroyed
    Column("sealed_token", LargeBinary, nullable=True),  # SecretBox: consumer and access key/secret
    Column("access_token_expiry", DateTime(timezone=True), nullable=True),
    Column("token_stored_at", DateTime(timezone=True), nullable=True),
    Column("default_profile_uuid", String(64), nullable=True),  # assigned to newly added devices
    Column("created_at", DateTime(timezone=True), nullable=False),
)

abm_accounts = Table(
    "abm_accounts",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("server_name", Text, nullable=True),
    Column("server_uuid", Text, nullable=True),
    Column("admin_id", Text, nullable=True),
    Column("facilitator_id", Text, nullable=True),
    Column("org_name", Text, nullable=True),
    Column("org_email", Text, nullable=True),
    Column("org_phone", Text, nullable=True),
    Column("org_address", Text, nullable=True),
    Column("org_id", Text, nullable=True),
    Column("org_id_hash", Text, nullable=True),
    Column("org_type", Text, nullable=True),
    Column("org_version", Text, nullable=True),
    Column("urls", Text, nullable=True),  # JSON, as Apple sent it
    Column("fetched_at", DateTime(timezone=True), nullable=False),
)

abm_sync_state = Table(
    "abm_sync_state",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("phase", String(10), nullable=False),  # fetch (full listing under way) | sync (incremental)
    Column("cursor", Text, nullable=True),  # Apple's cursor after the last applied page
    Column("generation", Integer, nullable=False),  # full listings started; stale devices are older
    Column("fetched_until", DateTime(timezone=True), nullable=True),
    Column("fetch_started_at", DateTime(timezone=True), nullable=True),
    Column("fetch_completed_at", DateTime(timezone=True), nullable=True),
    Column("last_sync_at", DateTime(timezone=True), nullable=True),  # last run that reached the end
    Column("last_attempt_at", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),
    Column("retry_at", DateTime(timezone=True), nullable=True),  # Apple asked us to wait until then
)

abm_devices = Table(
    "abm_devices",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("serial_number", String(64), primary_key=True),
    Column("model", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("color", Text, nullable=True),
    Column("asset_tag", Text, nullable=True),
    Column("os", Text, nullable=True),
    Column("device_family", Text, nullable=True),
    Column("profile_status", Text, nullable=True),
    Column("profile_uuid", String(64), nullable=True),
    Column("profile_assign_time", DateTime(timezone=True), nullable=True),
    Column("profile_push_time", DateTime(timezone=True), nullable=True),
    Column("device_assigned_by", Text, nullable=True),
    Column("device_assigned_date", DateTime(timezone=True), nullable=True),
    Column("mdm_migration_deadline", DateTime(timezone=True), nullable=True),
    Column("op_type", String(10), nullable=True),  # the last sync operation applied
    Column("op_date", DateTime(timezone=True), nullable=True),
    Column("generation", Integer, nullable=False),  # abm_sync_state.generation when last seen
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_abm_devices_serial_number", "serial_number"),
)

abm_profiles = Table(
    "abm_profiles",
    metadata,
    Column("connection", String(100), primary_key=True),
    Column("profile_uuid", String(64), primary_key=True),
    Column("profile_name", Text, nullable=False),
    Column("profile", Text, nullable=False),  # JSON of the profile exactly as sent
    Column("created_at", DateTime(timezone=True), nullable=False),
)

abm_profile_results = Table(
    "abm_profile_results",
    metadata,
    # Apple's answer for the last profile assignment or removal of each device.
    Column("connection", String(100), primary_key=True),
    Column("serial_number", String(64), primary_key=True),
    Column("action", String(10), nullable=False),  # assign | remove
    Column("profile_uuid", String(64), nullable=True),
    Column("status", String(40), nullable=False),  # SUCCESS | NOT_ACCESSIBLE | FAILED | THROTTLED | ...
    Column("at", DateTime(timezone=True), nullable=False),
)


# -- APNs: push state per enrollment --------------------------------------------------------------

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


# -- Bootstrap tokens escrowed by Macs (SetBootstrapToken) ----------------------------------------

bootstrap_tokens = Table(
    "bootstrap_tokens",
    metadata,
    # The device channel's enrollment id; gone with the enrollment.
    Column("device_id", String(300), ForeignKey("enrollments.id", ondelete="CASCADE"), primary_key=True),
    Column("sealed_token", LargeBinary, nullable=False),  # SecretBox ciphertext, never the token
    Column("escrowed_at", DateTime(timezone=True), nullable=False),
)


# -- Enrollment URLs: OTA enrollment tokens and the profiles handed out (OTA and ADE) ------------

enrollment_tokens = Table(
    "enrollment_tokens",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256; never the token
    Column("prefix", String(16), nullable=False),  # shown to people to tell tokens apart
    Column("note", String(200), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("max_uses", Integer, nullable=True),  # NULL: any number until it expires
    Column("uses", Integer, nullable=False, default=0),  # counted in the UPDATE that admits a fetch
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

enrollment_requests = Table(
    "enrollment_requests",
    metadata,
    # One row per enrollment profile handed out by /mdm/enroll.
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("method", String(10), nullable=False),  # ota (token) | ade (signed MachineInfo)
    Column("token_id", BigInteger, ForeignKey("enrollment_tokens.id"), nullable=True),
    # From a verified MachineInfo (ADE only); IMEI, MEID and language are not kept.
    Column("udid", String(255), nullable=True),
    Column("serial_number", String(64), nullable=True),
    Column("product", String(100), nullable=True),
    Column("build_version", String(50), nullable=True),
    Column("os_version", String(50), nullable=True),
    # The SCEP challenge in the profile: joins to scep_challenges.issued_fp, the identity it bought.
    Column("challenge_hash", String(64), nullable=True),
    Index("ix_enrollment_requests_serial_number", "serial_number"),
    Index("ix_enrollment_requests_at", "at"),
)


# -- Apps and Books (VPP): locations, assets, users, licences, events, installs ------------------

vpp_locations = Table(
    "vpp_locations",
    metadata,
    Column("name", String(100), primary_key=True),  # the connection's name (apple_connections.name)
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

vpp_assets = Table(
    "vpp_assets",
    metadata,
    Column("location", String(100), primary_key=True),
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

vpp_users = Table(
    "vpp_users",
    metadata,
    Column("location", String(100), primary_key=True),
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
    Column("location", String(100), nullable=False),
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

vpp_events = Table(
    "vpp_events",
    metadata,
    Column("location", String(100), primary_key=True),
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

vpp_notifications = Table(
    "vpp_notifications",
    metadata,
    # Apple may deliver a notification more than once: its id is kept to apply it once.
    Column("location", String(100), primary_key=True),
    Column("notification_id", String(64), primary_key=True),
    Column("notification_type", String(40), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)

vpp_installs = Table(
    "vpp_installs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("location", String(100), nullable=False),
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

login_failures = Table(
    "login_failures",
    metadata,
    # Failed console sign-ins per bucket (`addr:<client address>` or `key:<API key prefix>`) in the
    # current window, shared by every worker and node so the limit holds for all of them together.
    Column("bucket", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
)

# -- Device identity: refused re-enrollments, check-in signatures already seen ------------------

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
