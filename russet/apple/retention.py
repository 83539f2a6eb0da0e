"""Ledger detail kept N days per service, then only counts (issue #16, item 5).

Past a service's retention, its ledger rows are folded into `ledger_counts` (per UTC day,
connection, direction and field: how many rows, first and last time) and the rows themselves are
deleted, in one transaction: the report's totals do not change, the detail (subjects, values,
endpoints, request ids) is gone. Erasing one subject's detail (`russet.apple.subjects`) folds its
rows the same way.

`LedgerRetention.apply()` runs in the `housekeeping` task (a PeriodicTask once across nodes).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, case, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.ledger import Ledger
from russet.apple.tables import ledger, ledger_counts, ledger_retention
from russet.kernel.errors import Invalid
from russet.storage.db import as_utc, reading, utcnow

MAX_RETENTION_DAYS = 36_500
_CHUNK = 500  # ids per statement when folding chosen rows


def day_of(column: Any, dialect: str) -> ColumnElement[str]:
    """The UTC day (YYYY-MM-DD) of a timestamp column, the same text on both backends."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return func.substr(column, 1, 10)  # SQLite keeps UTC text: "2026-12-07 06:12:27.123456"


def fold(conn: Connection, where: ColumnElement[bool]) -> int:
    """Fold the ledger rows matching `where` into `ledger_counts` and delete them; returns how many.

    Runs in the caller's transaction: the counts and the deletion commit together.
    """
    day = day_of(ledger.c.at, conn.dialect.name).label("day")
    groups = conn.execute(
        select(
            day,
            ledger.c.service,
            ledger.c.connection,
            ledger.c.direction,
            ledger.c.field,
            func.count().label("times"),
            func.min(ledger.c.at).label("first_at"),
            func.max(ledger.c.at).label("last_at"),
        )
        .where(where)
        .group_by(day, ledger.c.service, ledger.c.connection, ledger.c.direction, ledger.c.field)
    ).all()
    if not groups:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    c = ledger_counts.c
    for g in groups:
        stmt = dialect.insert(ledger_counts).values(
            day=g.day,
            service=g.service,
            connection=g.connection,
            direction=g.direction,
            field=g.field,
            times=g.times,
            first_at=as_utc(g.first_at),
            last_at=as_utc(g.last_at),
        )
        ex = stmt.excluded
        stmt = stmt.on_conflict_do_update(
            index_elements=["day", "service", "connection", "direction", "field"],
            set_={
                "times": c.times + ex.times,
                "first_at": case((ex.first_at < c.first_at, ex.first_at), else_=c.first_at),
                "last_at": case((ex.last_at > c.last_at, ex.last_at), else_=c.last_at),
            },
        )
        conn.execute(stmt)
    removed = conn.execute(delete(ledger).where(where)).rowcount
    folded = sum(g.times for g in groups)
    if removed != folded:  # rows written between the two statements: the transaction is undone
        raise RuntimeError(f"ledger changed while folding ({folded} counted, {removed} deleted)")
    return removed


def fold_ids(conn: Connection, ids: Sequence[int]) -> int:
    """Fold these ledger rows (by id) into counts."""
    done = 0
    for start in range(0, len(ids), _CHUNK):
        done += fold(conn, ledger.c.id.in_(list(ids[start : start + _CHUNK])))
    return done


class LedgerRetention:
    """Per-service retention of ledger detail: set, shown, applied."""

    def __init__(self, engine: Engine, ledger_: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger_

    def set_policy(self, service: str, days: int, *, by: str | None = None) -> dict[str, Any]:
        if service not in SERVICE_NAMES:
            raise Invalid(f"unknown service {service!r}; expected one of {', '.join(SERVICE_NAMES)}")
        if isinstance(days, bool) or not isinstance(days, int) or not 0 <= days <= MAX_RETENTION_DAYS:
            raise Invalid(f"days {days!r}: expected a whole number from 0 to {MAX_RETENTION_DAYS}")
        now = utcnow()
        dialect = postgresql if self._engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(ledger_retention).values(service=service, days=days, set_by=by, set_at=now)
        stmt = stmt.on_conflict_do_update(
            index_elements=["service"], set_={"days": days, "set_by": by, "set_at": now}
        )
        with self._engine.begin() as conn:
            conn.execute(stmt)
        return self.policy(service)

    def policy(self, service: str) -> dict[str, Any]:
        return next(p for p in self.policies() if p["service"] == service)

    def policies(self) -> list[dict[str, Any]]:
        """Every service with its policy (None: detail kept until the global prune) and what the
        ledger holds for it: detail rows, counted rows, the oldest detail."""
        self._ledger.flush()
        with reading(self._engine) as conn:
            set_ = {r.service: r for r in conn.execute(select(ledger_retention))}
            detail = {
                r.service: (r.n, r.oldest)
                for r in conn.execute(
                    select(
                        ledger.c.service, func.count().label("n"), func.min(ledger.c.at).label("oldest")
                    ).group_by(ledger.c.service)
                )
            }
            counted = dict(
                conn.execute(
                    select(ledger_counts.c.service, func.sum(ledger_counts.c.times)).group_by(
                        ledger_counts.c.service
                    )
                ).all()
            )
        out = []
        for service in SERVICE_NAMES:
            row = set_.get(service)
            n, oldest = detail.get(service, (0, None))
            out.append(
                {
                    "service": service,
                    "service_name": SERVICE_NAMES[service],
                    "detail_days": row.days if row else None,
                    "set_by": row.set_by if row else None,
                    "set_at": _iso(row.set_at) if row else None,
                    "applied_at": _iso(row.applied_at) if row else None,
                    "last_folded": row.last_aggregated if row else None,
                    "detail_rows": int(n),
                    "oldest_detail": _iso(oldest),
                    "counted_rows": int(counted.get(service) or 0),
                }
            )
        return out

    def apply(self, now: datetime | None = None) -> dict[str, int]:
        """Fold each service's ledger rows older than its policy into counts; rows folded per service."""
        now = now or utcnow()
        self._ledger.flush()
        with reading(self._engine) as conn:
            policies = conn.execute(select(ledger_retention.c.service, ledger_retention.c.days)).all()
        out: dict[str, int] = {}
        for service, days in policies:
            cutoff = now - timedelta(days=days)
            with self._engine.begin() as conn:
                folded = fold(conn, (ledger.c.service == service) & (ledger.c.at < cutoff))
                conn.execute(
                    ledger_retention.update()
                    .where(ledger_retention.c.service == service)
                    .values(applied_at=now, last_aggregated=folded)
                )
            out[service] = folded
        return out


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()
