"""Check-in signatures already used, shared through the database (table `seen_signatures`).

Replay protection kept in one process's memory lets a replay through to another worker or node;
here the first INSERT of a signature's digest wins on every backend (primary key, ON CONFLICT DO
NOTHING), so exactly one of several servers accepts it. Rows are only needed while the signing
time is inside the accepted window, and housekeeping deletes them after that.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, delete
from sqlalchemy.dialects import postgresql, sqlite

from russet.mdm.tables import seen_signatures


class SeenSignatures:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def first_use(self, digest: bytes, expires_at: datetime) -> bool:
        """Record `digest`; False when some request (on any worker) recorded it before."""
        with self._engine.begin() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = (
                dialect.insert(seen_signatures)
                .values(digest=digest.hex(), expires_at=expires_at)
                .on_conflict_do_nothing(index_elements=["digest"])
                .returning(seen_signatures.c.digest)  # rowcount is not reliable here on psycopg
            )
            return conn.execute(stmt).first() is not None

    def prune(self, now: datetime) -> int:
        """Delete digests whose signatures are now outside the window anyway; returns how many."""
        with self._engine.begin() as conn:
            return int(
                conn.execute(delete(seen_signatures).where(seen_signatures.c.expires_at < now)).rowcount or 0
            )
