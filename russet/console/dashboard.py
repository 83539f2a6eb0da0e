"""The console's dashboard (issue #19 item 5), its first page: devices by enrollment state, and
every Apple credential's expiry in one table (the push certificate, each ABM/ASM token, each Apps
and Books token), shaded amber from 30 days and red from 7, so what is about to stop working is
seen before devices notice.

Both come from cheap aggregate reads through the services (`russet.devices.enrollment_states`,
`Russet.credential_expiries`, the list the expiry webhooks use). Any role may look.

Check-ins over time: the last 7 days of `russet.checkins` samples (devices seen per 15 minutes,
taken by a periodic task, never on the device path) as an inline SVG bar chart, drawn on the
server (the console runs no JavaScript), and a table per day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from russet.console.common import Signed, call, expiry_class, page
from russet.mdm.checkins import SAMPLE_SECONDS, SHOWN
from russet.runtime import Russet
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/dashboard", include_in_schema=False)

SERVICES = {
    "apns": "APNs push certificate",
    "abm": "ABM/ASM server token",
    "vpp": "Apps and Books content token",
}


def page_of(service: str, name: str) -> str:
    """The console page where this credential is renewed."""
    if service == "apns":
        return "/console/push"
    return f"/console/{service}/{quote(name, safe='')}"


def credentials(russet: Russet, now: datetime | None = None) -> list[dict[str, Any]]:
    """Each credential as the table shows it: what it is, its expiry, days left and its shade."""
    now = now or datetime.now(UTC)
    shown = []
    for service, name, when in russet.credential_expiries():
        expiry = when.isoformat() if when is not None else None
        days = None if when is None else (when - now).days
        shown.append(
            {
                "what": SERVICES.get(service, service),
                "href": page_of(service, name),
                "service": service,
                "name": name,
                "expiry": expiry,
                "days": days,
                "expired": when is not None and when <= now,
                "expiry_class": expiry_class(expiry, now),
            }
        )
    return shown


CHART_WIDTH = int(SHOWN.total_seconds() // SAMPLE_SECONDS)  # one unit per 15-minute sample: 672
CHART_HEIGHT = 100


def checkins(samples: list[dict[str, Any]], now: datetime | None = None) -> dict[str, Any]:
    """The samples as the chart draws them (a bar per sample, x by time, height by devices, scaled
    to the week's peak) and a row per day (UTC): samples taken, peak and mean devices per 15 minutes."""
    now = now or datetime.now(UTC)
    since = now - SHOWN
    peak = max((s["devices"] for s in samples), default=0)
    span = SHOWN.total_seconds()
    bars = []
    for s in samples:
        height = 0.0 if peak == 0 else CHART_HEIGHT * s["devices"] / peak
        x = max(0.0, (s["start"] - since).total_seconds() / span * CHART_WIDTH)
        width = max(1.0, (s["end"] - s["start"]).total_seconds() / span * CHART_WIDTH)
        bars.append(
            {
                "x": round(x, 2),
                "y": round(CHART_HEIGHT - height, 2),
                "width": round(min(width, CHART_WIDTH - x), 2),
                "height": round(height, 2),
                "label": f"{s['end']:%Y-%m-%d %H:%M} UTC: {s['devices']} devices",
            }
        )
    days: dict[str, list[int]] = {}
    for s in samples:
        days.setdefault(f"{s['end']:%Y-%m-%d}", []).append(s["devices"])
    table = [
        {"day": day, "samples": len(counts), "peak": max(counts), "mean": round(sum(counts) / len(counts), 1)}
        for day, counts in sorted(days.items(), reverse=True)
    ]
    return {
        "bars": bars,
        "days": table,
        "peak": peak,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "since": since - timedelta(microseconds=since.microsecond),
    }


def _read(russet: Russet) -> tuple[dict[str, int], list[dict[str, Any]], list[dict[str, Any]]]:
    return russet.devices.enrollment_states(), credentials(russet), russet.checkins.recent()


@router.get("")
def dashboard(request: Request, admin: Signed) -> HTMLResponse:
    states, shown, samples = call(_read, _russet(request))
    return page(
        request,
        "dashboard.html",
        admin,
        states=states,
        total=sum(states.values()),
        credentials=shown,
        checkins=checkins(samples),
    )
