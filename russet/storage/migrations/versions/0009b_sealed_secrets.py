"""Seal the secrets that were kept in the clear: push token and PushMagic (one sealed column),
the bodies and device answers of commands that carry secrets (UnlockToken, PINs, profiles).

Sealing needs the master key, which `russet.storage.db.migrate` hands over; a database holding
clear secrets refuses to migrate without it. The clear columns are dropped in place (ALTER TABLE
… DROP COLUMN on both backends): SQLite's batch copy would drop and recreate `enrollments`, and
with foreign keys on, that would cascade into the inventory and command queue.

Revision ID: 0009b
Revises: 0009d
Create Date: 2026-12-14
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import context, op

revision = "0009b"
down_revision = "0009d"
branch_labels = None
depends_on = None

# The request types that carried secrets when this migration was written (russet.commands.secrets);
# frozen here so the migration does the same whatever later code marks.
SECRET_TYPES = (
    "ClearPasscode",
    "RequestUnlockToken",
    "DeviceLock",
    "EraseDevice",
    "InstallProfile",
    "ActivationLockBypassCode",
    "SetRecoveryLock",
    "VerifyRecoveryLock",
    "SetFirmwarePassword",
    "VerifyFirmwarePassword",
    "SetAutoAdminPassword",
    "RotateFileVaultKey",
)
_BATCH = 1000

enrollments = sa.table(
    "enrollments",
    sa.column("id", sa.String),
    sa.column("push_token", sa.String),
    sa.column("push_magic", sa.String),
    sa.column("sealed_push", sa.LargeBinary),
)
commands = sa.table(
    "commands",
    sa.column("id", sa.BigInteger),
    sa.column("request_type", sa.String),
    sa.column("body_template", sa.LargeBinary),
)
command_queue = sa.table(
    "command_queue",
    sa.column("id", sa.BigInteger),
    sa.column("command_id", sa.BigInteger),
    sa.column("command_uuid", sa.String),
    sa.column("result", sa.LargeBinary),
)


def _box() -> Any:
    box = context.config.attributes.get("box")
    if box is None:
        raise RuntimeError("migration 0009b seals stored secrets and needs the master key")
    return box


def _pack_push(token_hex: str, magic: str | None) -> bytes:
    token = bytes.fromhex(token_hex)  # as storage.enrollments.pack_push
    return len(token).to_bytes(2, "big") + token + (magic or "").encode()


def _in_batches(conn: Any, table: Any, where: Any) -> Any:
    """Rows in id order, a batch at a time, so a large table is never held in memory at once."""
    last: Any = None
    while True:
        query = sa.select(table).where(where).order_by(table.c.id).limit(_BATCH)
        if last is not None:
            query = query.where(table.c.id > last)
        rows = conn.execute(query).all()
        if not rows:
            return
        yield rows
        last = rows[-1].id


def upgrade() -> None:
    conn = op.get_bind()
    op.add_column("enrollments", sa.Column("sealed_push", sa.LargeBinary(), nullable=True))
    for rows in _in_batches(conn, enrollments, enrollments.c.push_token.is_not(None)):
        box = _box()
        conn.execute(
            enrollments.update().where(enrollments.c.id == sa.bindparam("b_id")),
            [
                {
                    "b_id": r.id,
                    "sealed_push": box.seal(_pack_push(r.push_token, r.push_magic), f"push:{r.id}"),
                }
                for r in rows
            ],
        )
    op.execute("ALTER TABLE enrollments DROP COLUMN push_token")
    op.execute("ALTER TABLE enrollments DROP COLUMN push_magic")

    secret = commands.c.request_type.in_(SECRET_TYPES)
    for rows in _in_batches(conn, commands, secret):
        box = _box()
        conn.execute(
            commands.update().where(commands.c.id == sa.bindparam("b_id")),
            [
                {"b_id": r.id, "body_template": box.seal(r.body_template, f"command-body:{r.id}")}
                for r in rows
            ],
        )
    answered = sa.and_(
        command_queue.c.result.is_not(None),
        command_queue.c.command_id.in_(sa.select(commands.c.id).where(secret)),
    )
    for rows in _in_batches(conn, command_queue, answered):
        box = _box()
        conn.execute(
            command_queue.update().where(command_queue.c.id == sa.bindparam("b_id")),
            [{"b_id": r.id, "result": box.seal(r.result, f"command-result:{r.command_uuid}")} for r in rows],
        )


def downgrade() -> None:
    raise NotImplementedError("sealed secrets are not unsealed into clear columns again")
