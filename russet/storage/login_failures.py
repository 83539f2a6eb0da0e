"""The console's sign-in rate limit (its store, kept below the surfaces so housekeeping can prune it
without importing the console): failed sign-ins counted per client address and per API key
prefix, in the database so that every worker and node counts together.

An API key is 256 random bits, so guessing one is hopeless anyway; the limit is there so the sign-in
form cannot be used to hammer the database or to try leaked lists of keys at speed, and so a key
prefix seen in a log cannot be completed by trying. Each bucket counts failures in a fixed window
(`WINDOW`); at `MAX_FAILURES` the bucket refuses sign-ins until its window ends (429 with
Retry-After), whether or not the key would have been right. A successful sign-in clears the
address's and the prefix's buckets.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from russet.storage.db import as_utc, reading, utcnow
from russet.storage.tables import login_failures

MAX_FAILURES = 10
WINDOW = timedelta(minutes=5)
MAX_BUCKET_CHARS = 200  # the column's width


def buckets(address: str | None, key: str) -> list[str]:
    """The buckets a sign-in attempt counts in: its client address, and its key's prefix (what
    `russet apikey list` shows, so an admin can tell which key is being tried)."""
    found = [f"addr:{address or 'unknown'}"[:MAX_BUCKET_CHARS]]
    if key:
        found.append(f"key:{key[:10]}")
    return found


class LoginLimiter:
    def __init__(self, engine: Engine, max_failures: int = MAX_FAILURES, window: timedelta = WINDOW) -> None:
        self._engine = engine
        self.max_failures = max_failures
        self.window = window

    def retry_after(self, names: Sequence[str], now: datetime | None = None) -> int | None:
        """Seconds until one of these buckets may sign in again, or None when none is blocked."""
        now = now or utcnow()
        f = login_failures.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(f.failures, f.window_start).where(
                    f.bucket.in_(list(names)), f.failures >= self.max_failures
                )
            ).all()
        waits = [
            (as_utc(row.window_start) + self.window - now).total_seconds()  # type: ignore[operator]
            for row in rows
        ]
        waits = [w for w in waits if w > 0]
        return math.ceil(max(waits)) if waits else None

    def failed(self, names: Sequence[str], now: datetime | None = None) -> None:
        """Count one failure in each bucket: one conditional UPDATE (a window that has ended starts
        again at 1), or an INSERT for a new bucket, so concurrent failures are all counted."""
        now = now or utcnow()
        f = login_failures.c
        ended = f.window_start <= now - self.window
        for name in names:
            for _ in range(3):  # an INSERT racing another worker's INSERT of the same bucket: update it
                with self._engine.begin() as conn:
                    counted = conn.execute(
                        update(login_failures)
                        .where(f.bucket == name)
                        .values(
                            failures=case((ended, 1), else_=f.failures + 1),
                            window_start=case((ended, now), else_=f.window_start),
                        )
                    )
                    if counted.rowcount:
                        break
                try:
                    with self._engine.begin() as conn:
                        conn.execute(insert(login_failures).values(bucket=name, failures=1, window_start=now))
                    break
                except IntegrityError:
                    continue

    def succeeded(self, names: Sequence[str]) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(login_failures).where(login_failures.c.bucket.in_(list(names))))

    def prune(self, now: datetime | None = None) -> int:
        """Delete buckets whose window has ended (housekeeping)."""
        cutoff = (now or utcnow()) - self.window
        with self._engine.begin() as conn:
            gone = conn.execute(delete(login_failures).where(login_failures.c.window_start <= cutoff))
        return gone.rowcount
