"""The console's dashboard (issue #19 item 5), its first page: devices by enrollment state, and
every Apple credential's expiry in one table (the push certificate, each ABM/ASM token, each Apps
and Books token), shaded amber from 30 days and red from 7, so what is about to stop working is
seen before devices notice.

Both come from cheap aggregate reads through the services (`russet.devices.enrollment_states`,
`Russet.credential_expiries`, the list the expiry webhooks use). Any role may look.

Check-ins over time are not shown: Russet keeps only each device's last check-in time
(`last_seen_at`), no history of check-ins to draw from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from russet.console.common import Signed, call, expiry_class, page
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


def _read(russet: Russet) -> tuple[dict[str, int], list[dict[str, Any]]]:
    return russet.devices.enrollment_states(), credentials(russet)


@router.get("")
def dashboard(request: Request, admin: Signed) -> HTMLResponse:
    states, shown = call(_read, _russet(request))
    return page(
        request, "dashboard.html", admin, states=states, total=sum(states.values()), credentials=shown
    )
