"""Leases: a row that one holder at a time may take for a while, taken with one conditional statement.

Two uses share `take`: a connection to Apple held for a long operation (`russet.apple.connections`,
a sync or a disconnect) and a periodic task held for one run by one of the server processes
sharing the database (`TaskLeases`, for `russet.infra.tasks`).

Why one statement is enough on both backends: SQLite runs one write transaction at a time, so
the condition is checked and the row written with no other writer in between; PostgreSQL makes a
second UPDATE (or INSERT … ON CONFLICT DO UPDATE) of the same row wait for the first one's row
lock and then re-checks the condition against the row the first one committed. Of concurrent
takers exactly one sees the lease free. A lease carries its own expiry (`until`), so a holder
that crashed — and never released it — stops holding it when that time passes.

Times are each process's own clock (UTC), as everywhere in Russet: nodes need their clocks set
(NTP); a node whose clock is off by some seconds shifts a task's runs by that much, no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, Engine, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from russet.storage.db import as_utc, reading
from russet.storage.tables import task_leases

MAX_HOLDER = 200  # the width of task_leases.holder
MAX_ERROR = 2000  # characters of a failed run's error kept in the row


def is_free(until: Column[Any], now: datetime) -> ColumnElement[bool]:
    """A lease is free when it was never taken, was released (NULL) or has expired."""
    return or_(until.is_(None), until < now)


def take(
    conn: Connection,
    table: Table,
    key: Mapping[str, Any],
    until: Column[Any],
    now: datetime,
    values: Mapping[str, Any],
    *,
    also: ColumnElement[bool] | None = None,
    create: Mapping[str, Any] | None = None,
) -> bool:
    """Take the lease on `table`'s row `key` if it is free (and `also` holds), writing `values`
    (which set `until` to the new expiry, and may refer to the row's columns); True when this
    caller got it.

    `create`: the row may not exist yet; it is then inserted with these values, holding the lease,
    in the same statement (INSERT … ON CONFLICT DO UPDATE … WHERE, which both backends speak), so
    two first takers of a new row still get one lease between them. Without it a missing row is
    simply not taken.
    """
    condition = is_free(until, now) if also is None else and_(is_free(until, now), also)
    if create is None:
        where = [table.c[name] == value for name, value in key.items()]
        return bool(conn.execute(update(table).where(*where, condition).values(dict(values))).rowcount)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values({**key, **create})
    taken = conn.execute(
        stmt.on_conflict_do_update(index_elements=list(key), set_=dict(values), where=condition).returning(
            *(table.c[name] for name in key)
        )
    ).first()
    return taken is not None


class TaskLeases:
    """The `task_leases` rows: which process runs a once-across-nodes task now, and its last run."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def claim(self, name: str, holder: str, now: datetime, every: timedelta, ttl: timedelta) -> bool:
        """Take task `name` for one run if nobody holds it and its last run started at least
        `every` ago (so across all processes each interval's run starts once); the lease lasts
        `ttl` unless renewed. Counts the run and records its start."""
        t = task_leases.c
        start = {"holder": holder[:MAX_HOLDER], "until": now + ttl, "last_started": now}
        with self._engine.begin() as conn:
            return take(
                conn,
                task_leases,
                {"name": name},
                t.until,
                now,
                {**start, "runs": t.runs + 1},
                also=or_(t.last_started.is_(None), t.last_started <= now - every),
                create={**start, "runs": 1},
            )

    def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
        """Extend the lease of a run still going; False when `holder` no longer holds it (it
        expired and another process took the task)."""
        t = task_leases.c
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(task_leases)
                    .where(t.name == name, t.holder == holder[:MAX_HOLDER], t.until.is_not(None))
                    .values(until=now + ttl)
                ).rowcount
            )

    def release(self, name: str, holder: str, now: datetime, error: str | None) -> bool:
        """End a run: free the lease and record when it finished and how (`error`, None for
        success). False when `holder` no longer held it; the other holder's row is left alone."""
        t = task_leases.c
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(task_leases)
                    .where(t.name == name, t.holder == holder[:MAX_HOLDER])
                    .values(
                        until=None,
                        last_finished=now,
                        last_error=None if error is None else error[:MAX_ERROR],
                    )
                ).rowcount
            )

    def get(self, name: str) -> dict[str, Any] | None:
        rows = self.rows([name])
        return rows.get(name)

    def rows(self, names: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Name -> row (times in UTC), for `names` or every task ever run."""
        query = select(task_leases)
        if names is not None:
            query = query.where(task_leases.c.name.in_(list(names)))
        with reading(self._engine) as conn:
            found = conn.execute(query).mappings().all()
        return {
            row["name"]: {
                **row,
                "until": as_utc(row["until"]),
                "last_started": as_utc(row["last_started"]),
                "last_finished": as_utc(row["last_finished"]),
            }
            for row in found
        }
