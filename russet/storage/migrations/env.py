"""Alembic environment: runs on the connection Russet hands it (see storage.db.migrate)."""

from __future__ import annotations

from alembic import context

from russet.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - Russet always passes its connection
    raise RuntimeError("run migrations through russet.storage.db.migrate()")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
