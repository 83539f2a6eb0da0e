"""Device groups and their stored membership, owned by `russet.groups.store`.

Membership is stored for both kinds, so that "which devices does this scope reach" and "which
groups is this device in" are indexed reads: a static group's members are those an admin added;
a smart group's are its query's answer, recomputed when the query or a device's facts change.
`device_id` is the device channel's enrollment id (UDID, or EnrollmentID for User Enrollment);
it has no foreign key, the enrollments belonging to the MDM core.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from russet.infra.metadata import BigId, metadata

groups = Table(
    "groups",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(10), nullable=False),  # static | smart
    Column("query", Text, nullable=True),  # smart groups: the query, as written
    Column("description", String(500), nullable=True),
    Column("member_count", Integer, nullable=False, default=0),  # kept with every membership change
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("evaluated_at", DateTime(timezone=True), nullable=True),  # smart: last full evaluation
)


group_members = Table(
    "group_members",
    metadata,
    Column("group_id", BigInteger, ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True),
    Column("device_id", String(300), primary_key=True),
    Column("added_at", DateTime(timezone=True), nullable=False),
    # Which groups a device is in, and "is it in an excluded group" for scopes: index-only lookups.
    Index("ix_group_members_device_id_group_id", "device_id", "group_id"),
)
