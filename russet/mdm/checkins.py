"""Check-ins over time (issue #19 item 5), for the console's dashboard.

A device's check-ins write only its `last_seen_at` (batched by `last_seen.flush`); no history is
kept on the device path, and none is added there. Instead the `checkins.sample` task, every 15
minutes in one process of the cluster, counts the device channels whose last check-in falls in
the window since the previous sample and stores that number (`checkin_samples`); samples older
than 30 days are deleted by the same task. So a bar is "devices seen in those 15 minutes", each
device once, by its latest check-in up to the sample: a device that checks in every 5 minutes
counts once per window, and one seen again before the sample counts in the window of its latest
check-in only (its earlier one was overwritten).

The window ends `LAG` before the sample, so the last-seen times every process still holds in
memory (flushed each second) have reached the database before their window is counted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, delete, func, insert, select

from russet.kernel.tasks import PeriodicTask
from russet.mdm.tables import checkin_samples, enrollments
from russet.storage.db import as_utc, reading, utcnow

SAMPLE_SECONDS = 15 * 60
KEEP = timedelta(days=30)
LAG = timedelta(seconds=60)  # well past the last-seen flush (1 s) of every process
SHOWN = timedelta(days=7)  # what the dashboard draws


class CheckinHistory:
    """The samples: taken by the periodic task, read by the dashboard (one indexed range read)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def sample(self, now: datetime | None = None) -> dict[str, Any]:
        """Count the devices seen since the previous sample's window, store it, prune past 30 days.
        The first sample covers the 15 minutes before it. Returns what was done, for the task log."""
        now = now or utcnow()
        end = now - LAG
        e = enrollments.c
        # The count reads every device channel (no index on last_seen_at: one would cost every
        # last-seen flush), so it runs outside the write transaction: on SQLite the writers
        # (device requests) never wait for it, only for the short delete and insert below.
        with reading(self._engine) as conn:
            last = as_utc(conn.execute(select(func.max(checkin_samples.c.window_end))).scalar_one())
            start = last if last is not None else end - timedelta(seconds=SAMPLE_SECONDS)
            start = max(start, end - KEEP)  # after a long stop, one sample for what is still kept
            seen: int | None = None
            if end > start:
                seen = conn.execute(
                    select(func.count())
                    .select_from(enrollments)
                    .where(e.channel == "device", e.last_seen_at > start, e.last_seen_at <= end)
                ).scalar_one()
        with self._engine.begin() as conn:
            pruned = conn.execute(delete(checkin_samples).where(checkin_samples.c.window_end < now - KEEP))
            if seen is not None:
                conn.execute(insert(checkin_samples).values(window_end=end, window_start=start, devices=seen))
        return {"devices": seen, "pruned": pruned.rowcount}

    def recent(self, now: datetime | None = None, span: timedelta = SHOWN) -> list[dict[str, Any]]:
        """The samples of the last `span` (7 days), oldest first."""
        since = (now or utcnow()) - span
        c = checkin_samples.c
        query = (
            select(c.window_start, c.window_end, c.devices)
            .where(c.window_end >= since)
            .order_by(c.window_end)
        )
        with reading(self._engine) as conn:
            return [
                {"start": as_utc(r.window_start), "end": as_utc(r.window_end), "devices": r.devices}
                for r in conn.execute(query)
            ]

    def tasks(self) -> list[PeriodicTask]:
        return [
            PeriodicTask(
                "checkins.sample",
                SAMPLE_SECONDS,
                self.sample,
                once_across_nodes=True,
                first_delay=SAMPLE_SECONDS,
                description="count the devices seen in the last 15 minutes for the dashboard's "
                "check-ins chart; delete samples older than 30 days",
            )
        ]
