"""The apps feature's tables: the catalogue, and the Apps and Books licences blueprints asked for.

A hosted package's bytes are a file in the data directory (`RUSSET_DATA_DIR/apps/`, named by its
SHA-256), not a row: packages run to hundreds of megabytes. `app_licence_requests` is the queue
between the reconciler (synchronous, in its pass) and Apple (asynchronous, in the `apps.licences`
task): one row per app and device serial number, the newest wish winning.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Table, Text

from russet.infra.metadata import BigId, metadata

apps = Table(
    "apps",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("kind", String(12), nullable=False),  # vpp | enterprise
    Column(
        "bundle_id", String(255), nullable=False
    ),  # what ManagedApplicationList and RemoveApplication name
    Column("version", String(100), nullable=True),  # an enterprise app's bundle version
    Column("title", String(255), nullable=True),
    Column("adam_id", String(40), nullable=True),  # vpp: the App Store id
    Column("pricing", String(10), nullable=True),  # vpp: STDQ | PLUS when the admin named one
    Column("location", String(100), nullable=True),  # vpp: the Apps and Books location, when named
    Column("manifest", Text, nullable=True),  # enterprise, from a manifest: the manifest plist (XML)
    Column("package_sha256", String(64), nullable=True),  # enterprise, hosted: the package file
    Column("package_size", BigInteger, nullable=True),
    Column("package_kind", String(4), nullable=True),  # ipa | pkg
    Column("content_hash", String(64), nullable=False),  # changes when what is installed changes
    Column("created_by", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


app_licence_requests = Table(
    "app_licence_requests",
    metadata,
    Column("app_id", BigInteger, primary_key=True),
    Column("serial", String(64), primary_key=True),
    Column("device_id", String(300), nullable=False),  # the enrollment the reconciler wants it for
    Column("action", String(10), nullable=False),  # assign | return
    Column("state", String(10), nullable=False),  # todo | sent | failed
    Column("error", Text, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_app_licence_requests_state", "state"),
)
