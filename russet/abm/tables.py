"""Apple Business / School Manager tables: device assignment servers ("DEP"), their devices and
profiles, owned by `russet.abm.store`.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, LargeBinary, String, Table, Text

from russet.apple.connection.columns import OwnedTables, connection_name
from russet.infra.metadata import metadata

# Every table but abm_servers holds rows of one connection, named in its "connection" column.
owned = OwnedTables(metadata, "connection")

abm_servers = Table(
    "abm_servers",
    metadata,
    connection_name("name"),  # the connection's own row
    Column("certificate_der", LargeBinary, nullable=False),  # public half, uploaded to ABM/ASM
    Column("sealed_key", LargeBinary, nullable=True),  # SecretBox; NULL once destroyed
    Column("sealed_token", LargeBinary, nullable=True),  # SecretBox: consumer and access key/secret
    Column("access_token_expiry", DateTime(timezone=True), nullable=True),
    Column("token_stored_at", DateTime(timezone=True), nullable=True),
    Column("default_profile_uuid", String(64), nullable=True),  # assigned to newly added devices
    Column("created_at", DateTime(timezone=True), nullable=False),
)


abm_accounts = owned.table(
    "abm_accounts",
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


abm_sync_state = owned.table(
    "abm_sync_state",
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


abm_devices = owned.table(
    "abm_devices",
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


abm_profiles = owned.table(
    "abm_profiles",
    Column("profile_uuid", String(64), primary_key=True),
    Column("profile_name", Text, nullable=False),
    Column("profile", Text, nullable=False),  # JSON of the profile exactly as sent
    Column("created_at", DateTime(timezone=True), nullable=False),
    # The blueprint (its id; Russet's side, never sent to Apple) that applies to the devices this
    # profile enrolls. Not a foreign key: blueprints are another feature's tables.
    Column("blueprint_id", BigInteger, nullable=True),
)


abm_profile_results = owned.table(
    "abm_profile_results",
    # Apple's answer for the last profile assignment or removal of each device.
    Column("serial_number", String(64), primary_key=True),
    Column("action", String(10), nullable=False),  # assign | remove
    Column("profile_uuid", String(64), nullable=True),
    Column("status", String(40), nullable=False),  # SUCCESS | NOT_ACCESSIBLE | FAILED | THROTTLED | ...
    Column("at", DateTime(timezone=True), nullable=False),
)
