"""Admin operations on a device's identity, shared by the CLI and the API: open re-enrollment
with another identity (one use, expiring), forget a device (it is told to unenroll), and list
the re-enrollments that were refused."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from russet.enrollment.admin import parse_lifetime
from russet.kernel.errors import Invalid, NotFound
from russet.mdm.reenroll import ReenrollmentStore
from russet.runtime import Russet
from russet.storage.db import utcnow

DEFAULT_OPENING = "24h"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def allow_reenroll(russet: Russet, device_id: str, duration: str | None = None) -> dict[str, Any]:
    """Let the next Authenticate with another identity for this device through, until it expires."""
    try:
        length: timedelta = parse_lifetime(duration or DEFAULT_OPENING)
    except Invalid as exc:
        raise Invalid(str(exc).replace("expires", "--for", 1)) from None
    until = utcnow() + length
    if not ReenrollmentStore(russet.storage.engine).allow(device_id, until):
        raise NotFound(f"no device with id {device_id!r}")
    return {"device": device_id, "reenroll_until": _iso(until), "uses": 1}


def forget(russet: Russet, device_id: str) -> dict[str, Any]:
    """Mark the device forgotten: its undelivered commands are cancelled, a push asks it to
    connect, and its next request is answered ErrorUnrecognizedDevice, on which it unenrolls."""
    if not ReenrollmentStore(russet.storage.engine).forget(device_id):
        raise NotFound(f"no device with id {device_id!r}")
    russet.pusher.state.request([device_id])
    return {"device": device_id, "forgotten": True}


def refusals(russet: Russet, limit: int = 100, device_id: str | None = None) -> list[dict[str, Any]]:
    """Refused re-enrollments (another identity for an enrolled device), newest first."""
    if not 1 <= limit <= 1000:
        raise Invalid("limit must be between 1 and 1000")
    rows = ReenrollmentStore(russet.storage.engine).refusals(limit, device_id)
    return [{**row, "at": _iso(row["at"])} for row in rows]
