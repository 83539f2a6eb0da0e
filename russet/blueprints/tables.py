"""The blueprints feature's tables: blueprints with their items and scopes, what the reconciler
did on each device (so it removes only what it installed), and its pass lease.

`blueprint_device_items` deliberately has no foreign key to `blueprints`: when a blueprint is
deleted, its rows stay until the reconciler has removed from each device what the blueprint put
there. Device ids are enrollment ids (`enrollments.id`) but not a foreign key either: the MDM core
owns enrollments, and a device that left keeps its rows until the reconciler forgets them.
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
    String,
    Table,
    Text,
)

from russet.infra.metadata import BigId, metadata

blueprints = Table(
    "blueprints",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


blueprint_items = Table(
    "blueprint_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("blueprint_id", BigInteger, ForeignKey("blueprints.id", ondelete="CASCADE"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("kind", String(10), nullable=False),  # profile | setting | app
    # profile: the library's profile ref; setting: device_name | time_zone; app: the app's ref
    Column("ref", String(255), nullable=False),
    Column("version", Integer, nullable=True),  # a pinned profile version; NULL: the latest
    Column("value", Text, nullable=True),  # a setting's value (a device name may use variables)
    # The PayloadIdentifier a profile item claims (resolved when saved): one blueprint each, the
    # unique constraint making two concurrent saves claiming one identifier fail rather than both win.
    Column("payload_identifier", String(255), nullable=True, unique=True),
    Index("ix_blueprint_items_blueprint_id", "blueprint_id"),
)


blueprint_scopes = Table(
    "blueprint_scopes",
    metadata,
    Column("blueprint_id", BigInteger, ForeignKey("blueprints.id", ondelete="CASCADE"), primary_key=True),
    Column("group_id", BigInteger, primary_key=True),
    Column("mode", String(10), nullable=False),  # include | exclude
)


blueprint_device_items = Table(
    "blueprint_device_items",
    metadata,
    Column("device_id", String(300), primary_key=True),  # enrollment id
    Column("kind", String(10), primary_key=True),  # profile | setting
    Column("ident", String(255), primary_key=True),  # PayloadIdentifier, or the Settings Item
    Column("blueprint_id", BigInteger, nullable=False),  # the blueprint that wanted it (may be deleted)
    Column("ref", String(255), nullable=True),
    Column("version", Integer, nullable=True),
    Column("payload_uuid", String(255), nullable=True),
    Column("content_hash", String(128), nullable=True),
    Column("value", Text, nullable=True),  # a setting's expanded value, queued or applied
    Column("state", String(10), nullable=False),  # pending | in_sync | failed
    Column("action", String(20), nullable=False),  # install_profile | remove_profile | settings
    Column("installed", Boolean, nullable=False),  # an InstallProfile of ours was acknowledged
    Column("command_uuid", String(64), nullable=True),  # the command in flight
    Column("error", Text, nullable=True),  # JSON: Apple's ErrorChain or why the command ended
    Column("queued_at", DateTime(timezone=True), nullable=True),
    Column("acked_at", DateTime(timezone=True), nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_blueprint_device_items_command_uuid", "command_uuid"),
)


blueprint_devices = Table(
    "blueprint_devices",
    metadata,
    Column("device_id", String(300), primary_key=True),
    Column("recheck_uuid", String(64), nullable=True),  # the ProfileList the reconciler asked
    Column("recheck_at", DateTime(timezone=True), nullable=True),
    Column("dirty", Boolean, nullable=False),  # a result came in: reconcile this device soon
    # reconcile.settled_token of the last pass that found nothing to do here; a full pass skips
    # the device while its blueprints, reports and records give the same token.
    Column("settled", String(32), nullable=True),
)


blueprint_runs = Table(
    "blueprint_runs",
    metadata,
    Column("name", String(20), primary_key=True),  # "pass": the one reconcile pass at a time
    Column("holder", String(64), nullable=True),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=True),  # a blueprint or scope changed
    Column("full_pass_at", DateTime(timezone=True), nullable=True),  # the last full pass started
)


blueprint_ade_setups = Table(
    "blueprint_ade_setups",
    metadata,
    # An ADE device held in Setup Assistant (TokenUpdate with AwaitingConfiguration): its items
    # first, then DeviceConfigured, queued once. One row per device, for its latest enrollment.
    Column("device_id", String(300), primary_key=True),  # enrollment id of the device channel
    Column("enrolled_at", DateTime(timezone=True), nullable=True),  # the Authenticate it is for
    Column("awaiting_since", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),  # DeviceConfigured queued
    Column("reason", String(20), nullable=True),  # items_done | no_blueprint | timeout
    Column("incomplete", Text, nullable=True),  # JSON: the items not in sync when released
    Column("command_uuid", String(64), nullable=True),  # the DeviceConfigured command
    Column("answered_at", DateTime(timezone=True), nullable=True),
    Column("answer", String(20), nullable=True),  # Acknowledged | Error | CommandFormatError
    Index("ix_blueprint_ade_setups_released_at", "released_at"),
)
