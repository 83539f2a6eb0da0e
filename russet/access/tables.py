"""The access feature's tables: console users (local accounts and single sign-on people) and the
audit log with its head row.

The audit log is append-only and hash-chained: each row stores the previous row's hash and its own
(SHA-256 over its contents and that previous hash, `russet.access.audit`). `audit_head` holds one
row (id 1) that every writer updates first, so concurrent writers on PostgreSQL (row lock) and
SQLite (the write lock) append one after the other and never fork the chain; it also holds the
last row's sequence number and hash, so a removed tail shows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, String, Table, Text

from russet.infra.metadata import BigId, metadata

console_users = Table(
    "console_users",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("email", String(254), nullable=False, unique=True),  # lower-cased
    Column("role", String(16), nullable=False),  # admin | operator | auditor
    Column("password_hash", String(255), nullable=True),  # Argon2id; None: single sign-on only
    Column("source", String(8), nullable=False),  # local (russet user add) | sso (made at sign-in)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_sign_in_at", DateTime(timezone=True), nullable=True),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),  # 1, 2, ... without gaps
    Column("at", String(32), nullable=False),  # ISO 8601 UTC with microseconds: hashed as stored
    Column("actor", String(300), nullable=False),  # api:<key> | user:<email> | cli:<os user> | task:<name>
    Column("surface", String(16), nullable=False),  # api | console | cli | task | system
    Column("action", String(300), nullable=False),  # e.g. POST /api/v1/commands, cli apikey create
    Column("target", String(1000), nullable=False),
    Column("source", String(300), nullable=False),  # the client's address, or the host for the CLI
    Column("outcome", String(16), nullable=False),  # ok | denied | refused | failed
    Column("status", Integer, nullable=True),  # HTTP status or exit code
    Column("detail", Text, nullable=False),  # JSON object, never a secret
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)
Index("ix_audit_log_actor", audit_log.c.actor)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", BigInteger, nullable=False),  # the last row's seq (0: none yet)
    Column("hash", String(64), nullable=False),  # the last row's hash (GENESIS: none yet)
)
