"""Engine creation and migrations for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import ast
import collections
import contextlib
import fcntl
import functools
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, Table, create_engine, event, inspect, text
from sqlalchemy.dialects import postgresql, sqlite

from russet.kernel.errors import Conflict
from russet.storage.secretbox import DataDirError, SecretBox, private_dir

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# pg_advisory_lock(class, object) key for the first start: a fixed class, and the schema's hash as
# the object, so Russet installations in separate schemas of one database do not wait for each other.
_PG_LOCK_CLASS = 0x52555354  # "RUST"
# The largest id a BIGINT column holds: a larger one makes PostgreSQL (and SQLite from 2**63) raise
# instead of finding nothing, so services and request models check ids against it first.
MAX_DB_INT = 2**63 - 1
# SQLite's memory in one process, all connections together (see _sqlite_pragmas), in bytes.
SQLITE_HEAP_LIMIT = 32 * 1024 * 1024


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
    # ...but the pool holds up to 48 connections, and each one that reads a 100,000-device table
    # (the API's device list, the push sweep's scan) fills its own cache: measured, a server worker
    # grew by 30-50 MB, and four threads walking the devices grew a process by 100 MB. This caps
    # the page caches of all the process's connections together (process-wide, SQLite's soft heap
    # limit: past it, a connection reuses its own pages instead of allocating), so a worker's
    # memory does not grow with the fleet while one bulk writer can still have its 32 MiB.
    cur.execute(f"PRAGMA soft_heap_limit={SQLITE_HEAP_LIMIT}")
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
    """A connection for reads only: on SQLite it does not take the write lock; on PostgreSQL it
    runs without a transaction (autocommit), saving the BEGIN and ROLLBACK round trips around
    every read. That changes nothing it sees: at READ COMMITTED, PostgreSQL's default and
    Russet's, each statement reads its own snapshot, inside a transaction or not."""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        return conn.execution_options(readonly=True, isolation_level="AUTOCOMMIT")
    return conn.execution_options(readonly=True)


class HotRead:
    """A SELECT compiled once per dialect and run on a raw pooled DBAPI cursor, outside any
    transaction (one statement reads one consistent snapshot by itself).

    Why: an Idle check-in with nothing queued is one read, the device path's commonest request.
    Through a SQLAlchemy Connection that read cost about 95 µs of CPU on SQLite, 80 of them in the
    Connection (checkout, execution options, begin and reset events, result wrapping); the raw
    cursor with the pool's checkout costs 14 (measured on this machine, README "Throughput").
    SQLAlchemy still compiles the statement, supplies its literal parameters, applies its bind
    processors (datetimes on SQLite) and owns the pool; only the per-call Connection is skipped.
    The selected columns must need no result processing (strings, integers, bytes; anything
    else arrives as the driver gives it), so rows are named tuples of driver values.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement  # for the same read inside a transaction, through a Connection
        self._compiled: dict[str, tuple[Any, Any, dict[str, Any], Any]] = {}

    def _prepare(self, dialect: Any) -> tuple[Any, Any, dict[str, Any], Any]:
        compiled = self.statement.compile(dialect=dialect)
        names = [str(column.key) for column in self.statement.selected_columns]
        row_type = collections.namedtuple("HotRow", names, rename=True)  # type: ignore[misc]  # a cast's key: None
        processors = dict(compiled._bind_processors)  # SQLAlchemy's own, per dialect
        prepared = (compiled, compiled.positiontup, processors, row_type)
        self._compiled[dialect.name] = prepared
        return prepared

    def first(self, engine: Engine, params: dict[str, Any]) -> Any:
        """The first row for `params` (the statement's bind parameters by name), or None."""
        row = self._run(engine, params, many=False)
        return None if row is None else self._compiled[engine.dialect.name][3](*row)

    def all(self, engine: Engine, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Every row for `params`, as the driver's plain tuples: for a batch read of thousands of
        rows that the caller turns into its own objects anyway (no Row, no named tuple per row;
        the blueprint reconciler's records read 20,000 rows a batch)."""
        rows: list[tuple[Any, ...]] = self._run(engine, params, many=True)
        return rows

    def _run(self, engine: Engine, params: dict[str, Any], *, many: bool) -> Any:
        dialect = engine.dialect
        compiled, order, processors, _ = self._compiled.get(dialect.name) or self._prepare(dialect)
        values = compiled.construct_params(params)
        for name, process in processors.items():
            values[name] = process(values[name])
        args: Any = tuple(values[name] for name in order) if order else values
        raw = engine.raw_connection()
        try:
            # SQLite's driver runs without implicit transactions already (see _sqlite_pragmas);
            # psycopg would open one for the SELECT and cost a ROLLBACK round trip on return.
            autocommit = dialect.name != "sqlite"
            if autocommit:
                raw.driver_connection.autocommit = True  # type: ignore[union-attr]
            try:
                cursor = raw.cursor()
                cursor.execute(compiled.string, args)
                found = cursor.fetchall() if many else cursor.fetchone()
                cursor.close()
            finally:
                if autocommit:
                    raw.driver_connection.autocommit = False  # type: ignore[union-attr]
        finally:
            raw.close()  # back to the pool
        return found


def on_this_host(engine: Engine) -> bool:
    """Whether the database answers from this machine: SQLite, or a server reached over a Unix
    socket or loopback (a round trip of tens of microseconds, not a network's milliseconds)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return True
    host = url.host or url.query.get("host")  # libpq also takes the host as a query parameter
    hosts = host if isinstance(host, tuple) else (host,)
    return all(h in (None, "", "localhost", "127.0.0.1", "::1") or h.startswith("/") for h in hosts)


def make_engine(url: str, *, pool_size: int = 24) -> Engine:
    """An engine whose pool covers the server's database threads (see mdm.http), so requests
    do not open and close connections under load."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if not path or path == ":memory:":
            raise ValueError(
                "Russet needs a SQLite file (its server threads share it), not an in-memory database"
            )
        _private_sqlite_file(Path(path))
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


class NotMigrated(Conflict):
    """The database is not at the schema this Russet needs; `russet migrate` brings it there."""


@dataclass(frozen=True)
class Migration:
    """What `migrate` found and did."""

    before: str | None  # the revision the database was at (None: empty database)
    after: str
    applied: tuple[str, ...]  # revisions applied, oldest first (empty: already at head)


def _alembic_config(box: SecretBox | None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["box"] = box  # for data migrations that seal secrets (0009b)
    return cfg


# Alembic (~10 MB of memory) is imported only to apply migrations: a server worker starting on a
# database already at head (`russet serve` migrated it first) reads the revision with one SELECT
# and finds the head from the migration files' own `revision = ...` lines.
_REVISION_LINE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)


def _revision_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@functools.cache
def head_revision() -> str:
    """The newest revision among the migration files (the one no other revises), as Alembic's
    ScriptDirectory would say (tests/test_storage.py checks they agree), without importing it."""
    revisions: set[str] = set()
    revised: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        found = dict((m[0], ast.literal_eval(m[1])) for m in _REVISION_LINE.findall(path.read_text()))
        if "revision" in found:
            revisions.add(found["revision"])
            revised.update(_revision_ids(found.get("down_revision")))
    heads = revisions - revised
    assert len(heads) == 1, f"migrations must have one head, found {sorted(heads)}"
    return heads.pop()


def current_revision(conn: Connection) -> str | None:
    """The revision the database is at (Alembic's version table), None for an empty database."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    rows = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    assert len(rows) <= 1, f"the database has several heads: {rows}"
    return rows[0] if rows else None


def migrate(engine: Engine, box: SecretBox | None = None) -> Migration:
    """Bring the database to the newest schema, in one transaction; a no-op at head.

    `box` seals clear secrets found by data migrations; without it they refuse to run on a
    database that holds any. Run it under `first_start_lock` when other processes may start too.
    """
    head = head_revision()
    with engine.begin() as conn:
        before = current_revision(conn)
        if before == head:
            return Migration(before, head, ())
        from alembic import command as alembic_command
        from alembic.script import ScriptDirectory

        cfg = _alembic_config(box)
        script = ScriptDirectory.from_config(cfg)
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "heads")
    pending = [r.revision for r in script.iterate_revisions(head, before)]
    return Migration(before, head, tuple(reversed(pending)))


def require_migrated(engine: Engine) -> None:
    """Raise NotMigrated unless the database is at the newest schema (one small SELECT)."""
    with reading(engine) as conn:
        current = current_revision(conn)
    if current != head_revision():
        state = "empty" if current is None else f"at revision {current}"
        raise NotMigrated(f"the database is {state}, not {head_revision()}: run `russet migrate` first")


@contextlib.contextmanager
def first_start_lock(engine: Engine) -> Iterator[None]:
    """Serialise setup work (migrations, creating the CA and other one-time keys) between
    processes that start at once, so two servers on a new database make one CA, not two.

    PostgreSQL: a session advisory lock, held by a connection of its own for the whole block.
    SQLite: flock on a file beside the database (SQLite's own locks last one transaction, and
    setup is several); the database file is what the processes share, so that is where it lives.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(
                text("SELECT pg_advisory_lock(:c, hashtext(current_schema()))"), {"c": _PG_LOCK_CLASS}
            )
            conn.commit()
            try:
                yield
            finally:
                conn.execute(
                    text("SELECT pg_advisory_unlock(:c, hashtext(current_schema()))"),
                    {"c": _PG_LOCK_CLASS},
                )
                conn.commit()
        return
    database = engine.url.database
    assert database
    try:
        fd = os.open(f"{database}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise DataDirError(f"cannot write beside the database {database!r}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # released when the descriptor is closed, also on a crash
        yield
    finally:
        os.close(fd)


def _private_sqlite_file(path: Path) -> None:
    """Create the database file 0600 in a 0700 directory before SQLite opens it: SQLite gives
    its -wal and -shm files the database file's mode, so they are private too."""
    private_dir(path.parent)
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm"):
        candidate = Path(f"{path}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            if candidate.stat().st_mode & 0o077:
                candidate.chmod(0o600)  # a database copied in with a loose mode


def upsert(
    conn: Connection, table: Table, values: dict[str, Any], keys: list[str], update: list[str]
) -> None:
    """INSERT … ON CONFLICT DO UPDATE on either backend (both speak it, with their own builders)."""
    conn.execute(_upsert_statement(conn.dialect.name, table, tuple(keys), tuple(update)), values)


@functools.lru_cache(maxsize=256)
def _upsert_statement(dialect_name: str, table: Table, keys: tuple[str, ...], update: tuple[str, ...]) -> Any:
    """The upsert for `table`, built once: its values come as execution parameters. Building it
    per call (`excluded` makes a new alias and column collection) cost more than executing it on
    the device path, where an answer's inventory sections are stored this way."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    return stmt.on_conflict_do_update(index_elements=list(keys), set_={c: stmt.excluded[c] for c in update})
