"""The ledger: one row per field per exchange with Apple, values kept only as keyed fingerprints.

A fingerprint is keyed BLAKE2b (a MAC, like HMAC but several times cheaper) under a key sealed
in Russet's settings, so "did we send this serial number?" can be answered by fingerprinting the
serial again, while a copy of the ledger alone reveals no value. Rows are buffered as tuples
and written in batches by a background thread (COPY on PostgreSQL, executemany on SQLite), so
recording a push costs microseconds, not a database round trip.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, delete, func, select

from russet.apple.catalogue import CATALOGUE, SERVICE_NAMES
from russet.storage.db import as_utc, reading
from russet.storage.schema import ledger
from russet.storage.settings import SettingsStore

log = logging.getLogger("russet.ledger")
FINGERPRINT_KEY_SETTING = "ledger.fingerprint_key"


class Fingerprinter:
    def __init__(self, key: bytes) -> None:
        self._key = key

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
        return hashlib.blake2b(raw, digest_size=16, key=self._key).hexdigest()


# One ledger row, in COLUMNS order: a plain tuple, because millions are made on the push path.
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


_INSERT = f"INSERT INTO ledger ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
_SQLITE_TIME = "%Y-%m-%d %H:%M:%S.%f"
_COPY = f"COPY ledger ({', '.join(COLUMNS)}) FROM STDIN"


class Ledger:
    """Buffers rows and writes them in batches; `flush()` makes everything recorded durable."""

    def __init__(self, engine: Engine, fingerprint: Fingerprinter, flush_interval: float = 0.5) -> None:
        self._engine = engine
        self.fingerprint = fingerprint
        self._buffer: list[LedgerRow] = []
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
        with self._lock:
            self._buffer.extend(rows)

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        with self._flush_lock:
            with self._lock:
                rows, self._buffer = self._buffer, []
            if not rows:
                return 0
            try:
                self._write(rows)
            except Exception:
                with self._lock:  # put them back in front: nothing recorded is dropped
                    self._buffer[:0] = rows
                raise
            return len(rows)

    def _write(self, rows: list[LedgerRow]) -> None:
        # The driver's bulk paths: an order of magnitude faster than SQLAlchemy's executemany.
        with self._engine.begin() as conn:
            raw = conn.connection.driver_connection
            if conn.dialect.name == "postgresql":
                with raw.cursor() as cur, cur.copy(_COPY) as copy:  # type: ignore[union-attr]
                    for row in rows:
                        copy.write_row(row)
            else:
                # Timestamps in the text form SQLAlchemy uses on SQLite, so range queries compare right.
                raw.executemany(  # type: ignore[union-attr]
                    _INSERT, [(r[0].astimezone(UTC).strftime(_SQLITE_TIME), *r[1:]) for r in rows]
                )

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
        with reading(self._engine) as conn:
            seen = {(r.service, r.field, r.direction): r for r in conn.execute(query)}
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
                    "used_for": "(no longer in the catalogue)",
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
