"""Engine creation and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite hands timestamps back naive; Russet stores UTC, so say so."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets device requests read while one writes; busy_timeout makes writers queue
    # instead of failing when several server workers share the file.
    dbapi_connection.isolation_level = None  # SQLAlchemy's begin hook below emits BEGIN itself
    cur = dbapi_connection.cursor()
    # 8 KiB pages for a new database (a no-op on an existing one): the ledger's indexes of random
    # fingerprints take a fifth less CPU to insert into than with 4 KiB (measured; PostgreSQL's size).
    cur.execute("PRAGMA page_size=8192")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    # 32 MiB of page cache (SQLite's default is 2 MiB): the ledger's fingerprint indexes take
    # inserts at random places, and with the default cache a bulk write re-reads most of their
    # pages (measured: ~20% of the ledger writer's CPU). A ceiling, filled only as pages are read.
    cur.execute("PRAGMA cache_size=-32768")
    cur.close()


class _SqliteWriters:
    """Serialises this process's write transactions before they ask SQLite for its lock.

    A deferred transaction that reads and then writes can fail at once with "database is
    locked" when another writer got in between, so writes take SQLite's lock up front (BEGIN
    IMMEDIATE). Threads of one process queue on a plain lock first: SQLite's own busy handler
    sleeps and retries, which starves some waiters for seconds under load; busy_timeout is left
    for contention between processes. Pure reads ask for readonly and take neither lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def begin(self, conn: Connection) -> None:
        if conn.get_execution_options().get("readonly"):
            conn.exec_driver_sql("BEGIN")
            return
        self._lock.acquire()
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self._lock.release()
            raise
        conn.info["russet_writer"] = True

    def end(self, conn: Connection) -> None:
        if conn.info.pop("russet_writer", False):
            self._lock.release()


def reading(engine: Engine) -> Connection:
    """A connection for reads only: on SQLite it does not take the write lock."""
    return engine.connect().execution_options(readonly=True)


def make_engine(url: str, *, pool_size: int = 24) -> Engine:
    """An engine whose pool covers the server's database threads (see mdm.http), so requests
    do not open and close connections under load."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:":
            raise ValueError(
                "Russet needs a SQLite file (its server threads share it), not an in-memory database"
            )
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Pooled connections are handed between the server's threads, hence check_same_thread.
        engine = create_engine(
            url, connect_args={"check_same_thread": False}, pool_size=pool_size, max_overflow=pool_size
        )
        writers = _SqliteWriters()
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        return engine
    # No pre-ping (a round trip per checkout): a dropped connection fails one request and is
    # replaced, and connections are recycled before servers time them out.
    return create_engine(url, pool_size=pool_size, max_overflow=8, pool_recycle=1800)


def migrate(engine: Engine) -> None:
    """Bring the database to the newest schema; safe to run on every start."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "heads")


def upsert(
    conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update: list[str]
) -> None:
    """INSERT … ON CONFLICT DO UPDATE on either backend (both speak it, with their own builders)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in update})
    conn.execute(stmt)
