"""The ledger: one row per field per exchange with Apple, values kept only as keyed fingerprints.

A fingerprint is keyed BLAKE2b (a MAC, like HMAC but several times cheaper) under a key sealed
in Russet's settings, so "did we send this serial number?" can be answered by fingerprinting the
serial again, while a copy of the ledger alone reveals no value. Rows are buffered as tuples,
grouped by what they share, and written in batches by a background thread (COPY on PostgreSQL,
one JSON-fed INSERT per group on SQLite), so recording a push costs microseconds, not a database
round trip.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Engine, delete, func, select

from russet.apple.catalogue import CATALOGUE, SERVICE_NAMES
from russet.apple.tables import ledger, ledger_counts
from russet.storage.db import as_utc, reading
from russet.storage.settings import SettingsStore

log = logging.getLogger("russet.ledger")

# The report's columns as (key, title): the "Service | Data | Direction | Used for" table.
REPORT_COLUMNS = [
    ("service_name", "Service"),
    ("field", "Data"),
    ("direction", "Direction"),
    ("used_for", "Used for"),
    ("times", "Times"),
    ("distinct_subjects", "Distinct subjects"),
    ("first", "First"),
    ("last", "Last"),
]


FINGERPRINT_KEY_SETTING = "ledger.fingerprint_key"


class Fingerprinter:
    """Keyed BLAKE2b of identifiers. The keyed state is made once and copied per value (half the
    cost of keying afresh), and the fingerprints of values that recur (device ids, push tokens,
    topics) are kept in a bounded cache, so a device pushed again costs no hashing."""

    CACHE_SIZE = 1 << 17  # entries; the cache is emptied when full (cheaper than LRU bookkeeping)

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._keyed = hashlib.blake2b(digest_size=16, key=key)
        self._cache: dict[str, str] = {}

    @classmethod
    def load(cls, settings: SettingsStore) -> Fingerprinter:
        key = settings.get_secret(FINGERPRINT_KEY_SETTING)
        if key is None:
            key = os.urandom(32)
            settings.set_secret(FINGERPRINT_KEY_SETTING, key)
        return cls(key)

    def __call__(self, value: str | bytes | int | None) -> str | None:
        """Identifiers differ in case between sources (serials, UDIDs, emails), so text is casefolded."""
        if value is None:
            return None
        raw = value if isinstance(value, bytes) else str(value).strip().casefold().encode()
        digest = self._keyed.copy()
        digest.update(raw)
        return digest.hexdigest()

    def cached(self, value: str | bytes | int | None) -> str | None:
        """The same fingerprint, remembered: for values seen again and again."""
        if not isinstance(value, str):
            return self(value)
        found = self._cache.get(value)
        if found is None:
            if len(self._cache) >= self.CACHE_SIZE:
                self._cache.clear()
            found = self._cache[value] = self(value) or ""
        return found


# One ledger row, in COLUMNS order (what `Ledger.add` takes).
LedgerRow = tuple[datetime, str, str, str, str, str, str, str | None, str | None, str, int | None, str | None]
COLUMNS = (
    "at",
    "service",
    "connection",
    "endpoint",
    "direction",
    "field",
    "subject_type",
    "subject_fp",
    "value_fp",
    "purpose",
    "status",
    "request_id",
)
# Rows are buffered in groups that share what one exchange (or a batch of alike exchanges, such
# as a batch of pushes) has in common, so that is neither repeated per row nor re-encoded.
LedgerHead = tuple[datetime, str, str, str, str]  # at, service, connection, endpoint, purpose
HEAD_COLUMNS = ("at", "service", "connection", "endpoint", "purpose")
# direction, field, subject_type, subject_fp, value_fp, status, request_id
LedgerCells = tuple[str, str, str, str | None, str | None, int | None, str | None]
CELL_COLUMNS = ("direction", "field", "subject_type", "subject_fp", "value_fp", "status", "request_id")

_TARGET = f"ledger ({', '.join(HEAD_COLUMNS + CELL_COLUMNS)})"
# SQLite: a whole group is one statement whose cells arrive as one JSON array, unpacked by SQLite
# itself. The driver then runs the insert in one step without the GIL: row by row, executemany
# takes and gives back the GIL per row, and a busy event loop starves it (measured: 30x slower).
_SQLITE_INSERT = (
    f"INSERT INTO {_TARGET} SELECT ?, ?, ?, ?, ?, "
    + ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(CELL_COLUMNS)))
    + " FROM json_each(?)"
)
# Groups smaller than this (single exchanges) go together, one statement per service,
# connection, endpoint and purpose, each row with its own time.
_SQLITE_GROUP = 64
_SQLITE_INSERT_TIMED = (
    f"INSERT INTO {_TARGET} SELECT json_extract(value, '$[0]'), ?, ?, ?, ?, "
    + ", ".join(f"json_extract(value, '$[{i + 1}]')" for i in range(len(CELL_COLUMNS)))
    + " FROM json_each(?)"
)
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"  # how SQLAlchemy stores DateTime on SQLite
# Rows per transaction: bigger ones cost less per row (each commit rewrites every index page it
# touched, and random fingerprints touch many) but hold the writer lock longer (~7 µs per row).
_SQLITE_CHUNK = 40_000
_SQLITE_PAUSE = 0.002  # seconds between two transactions of one flush
_COPY = f"COPY {_TARGET} FROM STDIN"


class Ledger:
    """Buffers rows and writes them in batches; `flush()` makes everything recorded durable."""

    def __init__(self, engine: Engine, fingerprint: Fingerprinter, flush_interval: float = 0.5) -> None:
        self._engine = engine
        self.fingerprint = fingerprint
        self._buffer: list[tuple[LedgerHead, list[LedgerCells]]] = []
        self._pending = 0
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._interval = flush_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="russet-ledger", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # the rows stay buffered and are retried on the next tick
                log.exception("could not write ledger rows")

    def add(self, rows: Iterable[LedgerRow]) -> None:
        """Buffer whole rows (grouped here by what they share)."""
        groups: list[tuple[LedgerHead, list[LedgerCells]]] = []
        head: LedgerHead | None = None
        cells: list[LedgerCells] = []
        for r in rows:
            this = (r[0], r[1], r[2], r[3], r[9])
            if this != head:
                cells = []
                groups.append((this, cells))
                head = this
            cells.append((r[4], r[5], r[6], r[7], r[8], r[10], r[11]))
        with self._lock:
            for group in groups:
                self._buffer.append(group)
                self._pending += len(group[1])

    def add_group(self, head: LedgerHead, cells: list[LedgerCells]) -> None:
        """Buffer rows that share `head` (time, service, connection, endpoint, purpose)."""
        if cells:
            with self._lock:
                self._buffer.append((head, cells))
                self._pending += len(cells)

    def pending(self) -> int:
        return self._pending

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                groups, self._buffer = self._buffer, []
                count, self._pending = self._pending, 0
            if not groups:
                return 0
            try:
                self._write(groups)  # removes from `groups` what it has committed
            except Exception:
                with self._lock:  # put the rest back in front: nothing recorded is dropped
                    self._buffer[:0] = groups
                    self._pending += sum(len(cells) for _, cells in groups)
                raise
            return count

    def _write(self, groups: list[tuple[LedgerHead, list[LedgerCells]]]) -> None:
        """Write `groups`, removing each from the list once committed. The drivers' bulk paths:
        an order of magnitude faster than SQLAlchemy's executemany."""
        if self._engine.dialect.name == "postgresql":
            with self._engine.begin() as conn:
                raw: Any = conn.connection.driver_connection
                with raw.cursor() as cur, cur.copy(_COPY) as copy:
                    write = copy.write_row
                    for head, cells in groups:
                        for c in cells:
                            write(head + c)
            groups.clear()
            return
        # SQLite: one statement per big group (see _SQLITE_INSERT), small groups (one exchange
        # each) together per call shape; the JSON made before the writer lock (one
        # per database) is taken, and transactions of at most _SQLITE_CHUNK rows with a pause
        # between them, so pushes or a sync waiting to write their own state get in.
        groups[:] = _merged(groups)
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        while groups:
            statements: list[tuple[str, tuple[Any, ...]]] = []
            singles: dict[tuple[str, str, str, str], list[tuple[Any, ...]]] = {}
            done, rest, budget = 0, None, _SQLITE_CHUNK
            for head, cells in groups:
                part = cells[:budget]
                # Timestamps in the text form SQLAlchemy uses on SQLite, so ranges compare right.
                at = head[0].astimezone(UTC).strftime(_SQLITE_TIME)
                if len(part) >= _SQLITE_GROUP:
                    statements.append((_SQLITE_INSERT, (at, *head[1:], dumps(part))))
                else:
                    singles.setdefault(head[1:], []).extend((at, *c) for c in part)
                budget -= len(part)
                if len(part) < len(cells):
                    rest = (head, cells[len(part) :])
                    break
                done += 1
                if budget <= 0:
                    break
            for shape, rows in singles.items():
                statements.append((_SQLITE_INSERT_TIMED, (*shape, dumps(rows))))
            with self._engine.begin() as conn:
                raw = conn.connection.driver_connection
                for sql, params in statements:
                    raw.execute(sql, params)
            del groups[:done]
            if rest is not None:
                groups[0] = rest
            if groups:
                time.sleep(_SQLITE_PAUSE)

    # -- reading -------------------------------------------------------------------------------

    def report(self, *, since: datetime | None = None, service: str | None = None) -> list[dict[str, Any]]:
        """Per catalogue field: how often it was exchanged, about how many subjects, first/last time.

        Fields declared but never exchanged are listed with zero counts.
        """
        self.flush()
        query = select(
            ledger.c.service,
            ledger.c.field,
            ledger.c.direction,
            func.count().label("times"),
            func.count(func.distinct(ledger.c.subject_fp)).label("subjects"),
            func.min(ledger.c.at).label("first"),
            func.max(ledger.c.at).label("last"),
        ).group_by(ledger.c.service, ledger.c.field, ledger.c.direction)
        if since is not None:
            query = query.where(ledger.c.at >= since)
        if service is not None:
            query = query.where(ledger.c.service == service)
        # What retention or an erasure folded into per-day counts (russet.apple.retention) adds to
        # the times and first/last; distinct subjects are those of the detail still kept.
        c = ledger_counts.c
        folded = select(
            c.service,
            c.field,
            c.direction,
            func.sum(c.times).label("times"),
            func.min(c.first_at).label("first"),
            func.max(c.last_at).label("last"),
        ).group_by(c.service, c.field, c.direction)
        if since is not None:
            folded = folded.where(c.last_at >= since)
        if service is not None:
            folded = folded.where(c.service == service)
        with reading(self._engine) as conn:
            seen: dict[tuple[str, str, str], Any] = {
                (r.service, r.field, r.direction): r for r in conn.execute(query)
            }
            for r in conn.execute(folded):
                key = (r.service, r.field, r.direction)
                kept = seen.get(key)
                seen[key] = _Merged(
                    (kept.times if kept else 0) + int(r.times),
                    kept.subjects if kept else 0,
                    _earliest(kept.first if kept else None, r.first),
                    _latest(kept.last if kept else None, r.last),
                )
        out = []
        for spec in CATALOGUE:
            if service is not None and spec.service != service:
                continue
            row = seen.pop((spec.service, spec.name, spec.direction), None)
            out.append(
                {
                    "service": spec.service,
                    "service_name": SERVICE_NAMES[spec.service],
                    "field": spec.name,
                    "direction": spec.direction,
                    "about": spec.subject,
                    "used_for": spec.used_for,
                    "times": row.times if row else 0,
                    "distinct_subjects": row.subjects if row else 0,
                    "first": as_utc(row.first) if row else None,
                    "last": as_utc(row.last) if row else None,
                }
            )
        for (svc, field, direction), row in seen.items():  # rows of fields since removed from the catalogue
            out.append(
                {
                    "service": svc,
                    "service_name": SERVICE_NAMES.get(svc, svc),
                    "field": field,
                    "direction": direction,
                    "about": "?",
                    # `?path`: a field Apple sent that the endpoint does not declare (russet.apple.wire).
                    "used_for": "(sent by Apple, not in the catalogue)"
                    if field.startswith("?")
                    else "(no longer in the catalogue)",
                    "times": row.times,
                    "distinct_subjects": row.subjects,
                    "first": as_utc(row.first),
                    "last": as_utc(row.last),
                }
            )
        return out

    def about(self, identifiers: Sequence[str], limit: int = 1000) -> list[dict[str, Any]]:
        """Every exchange about, or carrying, any of these identifiers (serial, UDID, user id...)."""
        self.flush()
        fps = [fp for fp in {self.fingerprint(i) for i in identifiers} if fp]
        query = (
            select(ledger)
            .where((ledger.c.subject_fp.in_(fps)) | (ledger.c.value_fp.in_(fps)))
            .order_by(ledger.c.at, ledger.c.id)
            .limit(limit)
        )
        with reading(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for r in rows:
            r["at"] = as_utc(r["at"])
            r["matched"] = "subject" if r["subject_fp"] in fps else "value"
        return rows

    def prune(self, before: datetime) -> int:
        self.flush()
        with self._engine.begin() as conn:
            return conn.execute(delete(ledger).where(ledger.c.at < before)).rowcount


class _Merged(NamedTuple):
    times: int
    subjects: int
    first: datetime | None
    last: datetime | None


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = as_utc(a), as_utc(b)
    return b if a is None else a if b is None else min(a, b)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    a, b = as_utc(a), as_utc(b)
    return b if a is None else a if b is None else max(a, b)


def _merged(
    groups: list[tuple[LedgerHead, list[LedgerCells]]],
) -> list[tuple[LedgerHead, list[LedgerCells]]]:
    """Groups with the same head, one after the other, as one (single exchanges recorded in the
    same microsecond by one call, or a batch added in parts)."""
    out: list[tuple[LedgerHead, list[LedgerCells]]] = []
    for head, cells in groups:
        if out and out[-1][0] == head:
            out[-1] = (head, out[-1][1] + cells)
        else:
            out.append((head, cells))
    return out
