"""Infrastructure tables: settings, certificates, API keys, console sign-in failures, task leases.

They sit with their stores in `russet.storage` (`settings.py`, `certificates.py`, `apikeys.py`)
because no single feature owns them: settings hold every feature's switches and the sealed
secrets of first start, certificates hold Russet's own identities and every certificate it
issued (the PKI writes them, SCEP and the MDM core look them up), and API keys gate the admin
API, the CLI's remote use and the console alike; sign-in failures are counted beside the keys they guard.
Task leases belong to the server's background-task runner, which every feature's periodic work uses.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from russet.infra.metadata import BigId, metadata

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
    # admin | operator | auditor (russet.access.roles); keys made before roles existed are admin
    Column("role", String(16), nullable=False, server_default="admin"),
)


login_failures = Table(
    "login_failures",
    metadata,
    # Failed console sign-ins per bucket (`addr:<client address>` or `key:<API key prefix>`) in the
    # current window, shared by every worker and node so the limit holds for all of them together
    # (russet.storage.login_failures).
    Column("bucket", String(200), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
)


task_leases = Table(
    "task_leases",
    metadata,
    # One row per periodic task that runs once across the nodes sharing this database
    # (russet.storage.leases, russet.infra.tasks): who holds it and until when, and the last run.
    Column("name", String(100), primary_key=True),
    Column("holder", String(200), nullable=True),  # the process that last took it (host:pid:random)
    Column("until", DateTime(timezone=True), nullable=True),  # held until then; NULL once released
    Column("last_started", DateTime(timezone=True), nullable=True),
    Column("last_finished", DateTime(timezone=True), nullable=True),
    Column("last_error", Text, nullable=True),  # the last finished run's error; NULL when it succeeded
    Column("runs", Integer, nullable=False),  # runs started, all nodes together
)
