"""The ledger as Microsoft's "Data Intune sends to Apple" table, with Russet's live counts
(issue #16, item 1): per reference row, the catalogue fields that carry the datum in Russet, how
often Russet sent and received them, first and last time, and where Russet differs.

`differs` is one of:
- `same`: Russet sends this datum too, and did in the period;
- `sends less`: Russet declares it but did not send it in the period;
- `never sends`: Russet's catalogue has no field that sends it (at most it receives it from Apple);
- `sends more`: a field Russet declares (and may send) that the reference table does not list.

Counts are the ledger's detail rows plus the counts kept after retention or erasure
(`ledger_counts`), so folding detail into counts never changes a total.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from russet.apple.catalogue import CATALOGUE, SERVICE_NAMES
from russet.apple.ledger import Ledger
from russet.apple.reference import INTUNE_ROWS, SERVICE_LABELS, SOURCE
from russet.apple.retention import day_of
from russet.apple.tables import ledger, ledger_counts
from russet.storage.db import as_utc, reading, utcnow

SAME, LESS, NEVER, MORE = "same", "sends less", "never sends", "sends more"
# The table's columns as (key, title), for text, CSV and PDF alike.
TABLE_COLUMNS = [
    ("service_label", "Service"),
    ("data", "Data"),
    ("used_for", "Used for"),
    ("sent", "Russet sent"),
    ("received", "Russet received"),
    ("first", "First seen"),
    ("last", "Last seen"),
    ("differs", "Differs"),
]
MAX_TIMELINE_DAYS = 366


@dataclass
class Totals:
    times: int = 0
    subjects: int = 0  # distinct subjects among the detail rows (counts keep none)
    first: datetime | None = None
    last: datetime | None = None

    def add(self, times: int, first: datetime | None, last: datetime | None) -> None:
        self.times += int(times)
        first, last = as_utc(first), as_utc(last)
        if first is not None and (self.first is None or first < self.first):
            self.first = first
        if last is not None and (self.last is None or last > self.last):
            self.last = last


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class LedgerReports:
    """Reads of the ledger and its counts for the report, its chart and the retention view."""

    def __init__(self, engine: Engine, ledger_: Ledger) -> None:
        self._engine = engine
        self._ledger = ledger_

    def totals(
        self, *, since: datetime | None = None, service: str | None = None
    ) -> dict[tuple[str, str, str], Totals]:
        """(service, direction, field) -> totals over detail rows and kept counts."""
        self._ledger.flush()
        detail = select(
            ledger.c.service,
            ledger.c.direction,
            ledger.c.field,
            func.count().label("times"),
            func.count(func.distinct(ledger.c.subject_fp)).label("subjects"),
            func.min(ledger.c.at).label("first"),
            func.max(ledger.c.at).label("last"),
        ).group_by(ledger.c.service, ledger.c.direction, ledger.c.field)
        c = ledger_counts.c
        counted = select(
            c.service,
            c.direction,
            c.field,
            func.sum(c.times).label("times"),
            func.min(c.first_at).label("first"),
            func.max(c.last_at).label("last"),
        ).group_by(c.service, c.direction, c.field)
        if since is not None:
            detail = detail.where(ledger.c.at >= since)
            counted = counted.where(c.last_at >= since)  # counts are per day: a day that ends after `since`
        if service is not None:
            detail = detail.where(ledger.c.service == service)
            counted = counted.where(c.service == service)
        out: dict[tuple[str, str, str], Totals] = {}
        with reading(self._engine) as conn:
            for r in conn.execute(detail):
                t = out.setdefault((r.service, r.direction, r.field), Totals())
                t.add(r.times, r.first, r.last)
                t.subjects = int(r.subjects)
            for r in conn.execute(counted):
                out.setdefault((r.service, r.direction, r.field), Totals()).add(r.times, r.first, r.last)
        return out

    def timeline(self, days: int = 30, *, now: datetime | None = None) -> list[dict[str, Any]]:
        """Rows exchanged per UTC day and service over the last `days` days (detail and counts)."""
        days = max(1, min(int(days), MAX_TIMELINE_DAYS))
        now = now or utcnow()
        first_day = (now - timedelta(days=days - 1)).date()
        start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=now.tzinfo)
        self._ledger.flush()
        by_day: dict[str, dict[str, int]] = {}
        with reading(self._engine) as conn:
            day = day_of(ledger.c.at, conn.dialect.name).label("day")
            detail = (
                select(day, ledger.c.service, func.count().label("n"))
                .where(ledger.c.at >= start)
                .group_by(day, ledger.c.service)
            )
            c = ledger_counts.c
            counted = (
                select(c.day, c.service, func.sum(c.times).label("n"))
                .where(c.day >= first_day.isoformat())
                .group_by(c.day, c.service)
            )
            for query in (detail, counted):
                for r in conn.execute(query):
                    slot = by_day.setdefault(r.day, {})
                    slot[r.service] = slot.get(r.service, 0) + int(r.n)
        out = []
        for i in range(days):
            key = (first_day + timedelta(days=i)).isoformat()
            counts = by_day.get(key, {})
            out.append({"day": key, **{s: counts.get(s, 0) for s in SERVICE_NAMES}})
        return out


def intune_table(
    totals: dict[tuple[str, str, str], Totals], *, service: str | None = None
) -> list[dict[str, Any]]:
    """The reference rows with Russet's counts, then the fields Russet sends beyond them."""
    declared = {(f.service, f.direction, f.name): f for f in CATALOGUE}
    mapped: set[tuple[str, str, str]] = set()
    rows: list[dict[str, Any]] = []
    for ref in INTUNE_ROWS:
        if service is not None and ref.service != service:
            continue
        keys = [(ref.service, d, name) for d, name in ref.russet if (ref.service, d, name) in declared]
        mapped.update(keys)
        sent, received, span = 0, 0, Totals()
        for key in keys:
            t = totals.get(key)
            if t is None:
                continue
            span.add(0, t.first, t.last)
            if key[1] == "sent":
                sent += t.times
            else:
                received += t.times
        sends = [k for k in keys if k[1] == "sent"]
        if not sends:
            differs = NEVER
            note = "Russet only receives it from Apple" if keys else "not in Russet's catalogue"
        elif sent:
            differs, note = SAME, ""
        else:
            differs, note = LESS, "declared, not sent in this period"
        rows.append(
            _row(ref.service, ref.data, ref.used_for, keys, sent, received, span, differs, ref.note or note)
        )
    for (svc, direction, name), spec in declared.items():
        if direction != "sent" or (svc, direction, name) in mapped:
            continue
        if service is not None and svc != service:
            continue
        t = totals.get((svc, direction, name), Totals())
        came_back = totals.get((svc, "received", name))
        span = Totals()
        span.add(0, t.first, t.last)
        note = "not in the reference table" + ("" if t.times else "; declared, not sent in this period")
        rows.append(
            _row(
                svc,
                name,
                spec.used_for,
                [(svc, direction, name)],
                t.times,
                came_back.times if came_back else 0,
                span,
                MORE,
                note,
            )
        )
    return rows


def _row(
    service: str,
    data: str,
    used_for: str,
    keys: list[tuple[str, str, str]],
    sent: int,
    received: int,
    span: Totals,
    differs: str,
    note: str,
) -> dict[str, Any]:
    return {
        "service": service,
        "service_label": SERVICE_LABELS.get(service, service),
        "data": data,
        "used_for": used_for,
        "russet_fields": [f"{d}:{name}" for _, d, name in keys],
        "sent": sent,
        "received": received,
        "first": _iso(span.first),
        "last": _iso(span.last),
        "differs": differs,
        "note": note,
    }


def summary(rows: list[dict[str, Any]]) -> dict[str, int]:
    out = {SAME: 0, LESS: 0, NEVER: 0, MORE: 0}
    for row in rows:
        out[row["differs"]] += 1
    return out


def reference_source() -> str:
    return SOURCE
