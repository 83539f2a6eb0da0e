"""Check-ins over time (issue #19 item 5): the `checkins.sample` task counts the device channels
seen in each window since the previous sample (not user channels, not devices seen earlier or
later), keeps 30 days, and the dashboard draws the last 7 as an inline SVG chart and a table per
day. On SQLite and PostgreSQL (RUSSET_TEST_DATABASE_URL)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from russet.console.dashboard import CHART_HEIGHT, checkins
from russet.mdm.checkins import KEEP, LAG, SAMPLE_SECONDS
from russet.mdm.tables import checkin_samples, enrollments
from russet.runtime import Russet
from russet.storage.db import reading
from tests.test_console import log_in
from tests.test_console_dashboard import enroll

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(seconds=SAMPLE_SECONDS)


def seen(russet: Russet, prefix: str, when: datetime) -> None:
    """Set the last check-in of every enrollment whose id starts with `prefix`."""
    with russet.storage.engine.begin() as conn:
        conn.execute(update(enrollments).where(enrollments.c.id.startswith(prefix)).values(last_seen_at=when))


def stored(russet: Russet) -> list[tuple[datetime, datetime, int]]:
    c = checkin_samples.c
    with reading(russet.storage.engine) as conn:
        rows = conn.execute(select(c.window_start, c.window_end, c.devices).order_by(c.window_end)).all()
    return [(s.replace(tzinfo=UTC), e.replace(tzinfo=UTC), n) for s, e, n in rows]


def test_each_sample_counts_the_devices_seen_since_the_previous_one(russet: Russet) -> None:
    enroll(russet, "A", 3)
    enroll(russet, "B", 2)
    enroll(russet, "U", 4, channel="user")  # user channels are not devices
    seen(russet, "A", T0 - timedelta(minutes=5))
    seen(russet, "U", T0 - timedelta(minutes=5))
    seen(russet, "B", T0 - timedelta(hours=3))  # before the first window
    history = russet.checkins

    assert history.sample(T0 + LAG)["devices"] == 3  # the first window: the 15 minutes before it
    seen(russet, "B", T0 + timedelta(minutes=10))
    seen(russet, "A0", T0 + timedelta(minutes=14))  # seen again: counted in the new window
    assert history.sample(T0 + WINDOW + LAG)["devices"] == 3
    assert history.sample(T0 + 2 * WINDOW + LAG)["devices"] == 0  # nobody since
    assert history.sample(T0 + 2 * WINDOW + LAG)["devices"] is None  # nothing new to count
    assert stored(russet) == [
        (T0 - WINDOW, T0, 3),
        (T0, T0 + WINDOW, 3),
        (T0 + WINDOW, T0 + 2 * WINDOW, 0),
    ]
    # The windows tile the time: each starts where the previous ended.
    assert [s[0] for s in stored(russet)[1:]] == [s[1] for s in stored(russet)[:-1]]


def test_a_device_seen_after_the_lag_waits_for_the_next_window(russet: Russet) -> None:
    """A check-in still in some process's buffer has a last-seen time before the sample: the window
    ends LAG before the sample, so it is counted next time rather than lost."""
    enroll(russet, "A", 1)
    russet.checkins.sample(T0)
    seen(russet, "A", T0 - timedelta(seconds=10))  # flushed just after the sample ran
    assert russet.checkins.sample(T0 + WINDOW)["devices"] == 1


def test_samples_older_than_30_days_are_deleted(russet: Russet) -> None:
    history = russet.checkins
    history.sample(T0)
    history.sample(T0 + WINDOW)
    assert len(stored(russet)) == 2
    later = T0 + KEEP + timedelta(minutes=1)
    result = history.sample(later)
    assert result["pruned"] == 1  # the first is past 30 days, the second not yet
    assert [e for _, e, _ in stored(russet)] == [T0 + WINDOW - LAG, later - LAG]
    # After a long stop the one catch-up sample covers no more than what is kept.
    start, end, _ = stored(russet)[-1]
    assert end - start <= KEEP
    with reading(russet.storage.engine) as conn:
        assert conn.execute(select(func.count()).select_from(checkin_samples)).scalar_one() == 2


def test_recent_reads_the_last_7_days(russet: Russet) -> None:
    history = russet.checkins
    for i in range(3):
        history.sample(T0 + i * timedelta(days=4))
    shown = history.recent(T0 + timedelta(days=8, minutes=1))
    assert [s["end"] for s in shown] == [T0 + timedelta(days=4) - LAG, T0 + timedelta(days=8) - LAG]
    assert all(s["end"].tzinfo is not None for s in shown)


def test_the_task_is_declared_once_across_nodes(russet: Russet) -> None:
    [task] = [t for t in russet.tasks() if t.name == "checkins.sample"]
    assert task.every_seconds == 15 * 60 and task.once_across_nodes


def test_chart_scales_bars_to_the_peak_and_tables_days() -> None:
    now = T0 + timedelta(days=7)
    samples = [
        {
            "start": T0 + timedelta(days=6, hours=h),
            "end": T0 + timedelta(days=6, hours=h, minutes=15),
            "devices": n,
        }
        for h, n in ((0, 10), (1, 5), (13, 0))
    ]
    drawn = checkins(samples, now)
    assert [b["height"] for b in drawn["bars"]] == [CHART_HEIGHT, CHART_HEIGHT / 2, 0]
    assert drawn["bars"][0]["x"] == 576 and drawn["bars"][0]["width"] == 1
    assert drawn["days"] == [
        {"day": "2026-12-08", "samples": 1, "peak": 0, "mean": 0.0},
        {"day": "2026-12-07", "samples": 2, "peak": 10, "mean": 7.5},
    ]
    assert checkins([], now)["bars"] == []


def test_dashboard_shows_the_chart(client: TestClient, russet: Russet) -> None:
    log_in(client, russet.storage.api_keys.create("auditor-person", role="auditor"))
    empty = client.get("/console/dashboard").text
    assert "No check-in samples yet" in empty
    enroll(russet, "A", 4)
    now = datetime.now(UTC)
    seen(russet, "A", now - timedelta(minutes=3))
    russet.checkins.sample(now)
    html = client.get("/console/dashboard").text
    assert len(re.findall(r'<rect class="bar" ', html)) == 1
    assert re.search(r"<title>[^<]*: 4 devices</title>", html)
    day = f"{now - LAG:%Y-%m-%d}"
    assert f'<tr data-day="{day}"><td>{day}</td><td>1</td><td>4</td><td>4.0</td></tr>' in html
