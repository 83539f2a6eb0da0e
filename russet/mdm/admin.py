"""A device's identity, administered: open re-enrollment with another identity (one use,
expiring), forget a device (it is told to unenroll), and list the re-enrollments that were refused.

`DeviceService` (russet.mdm.devices) offers these to the surfaces; they are kept apart because
they act on who a device is, not on its commands or inventory.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from russet.kernel.durations import parse_duration
from russet.kernel.errors import Invalid, NotFound
from russet.mdm.ports import DevicePushes
from russet.mdm.reenroll import REFUSALS_KEPT, ReenrollmentStore
from russet.storage.db import utcnow

DEFAULT_OPENING = "24h"
MAX_OPENING = timedelta(days=365)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


class IdentityAdmin:
    """Re-enrollment openings, forgetting, and refused takeovers, over the re-enrollment store."""

    def __init__(self, reenrollment: ReenrollmentStore, pushes: DevicePushes) -> None:
        self._store = reenrollment
        self._pushes = pushes

    def allow_reenroll(self, device_id: str, duration: str | None = None) -> dict[str, Any]:
        """Let the next Authenticate with another identity for this device through, until it expires."""
        length: timedelta = parse_duration(
            duration or DEFAULT_OPENING, option="--for", what="a re-enrollment window lasts", most=MAX_OPENING
        )
        until = utcnow() + length
        if not self._store.allow(device_id, until):
            raise NotFound(f"no device with id {device_id!r}")
        return {"device": device_id, "reenroll_until": _iso(until), "uses": 1}

    def forget(self, device_id: str) -> dict[str, Any]:
        """Mark the device forgotten: its undelivered commands are cancelled, a push asks it to
        connect, and its next request is answered ErrorUnrecognizedDevice, on which it unenrolls."""
        if not self._store.forget(device_id):
            raise NotFound(f"no device with id {device_id!r}")
        self._pushes.request([device_id])
        return {"device": device_id, "forgotten": True}

    def refusals(self, limit: int = 100, device_id: str | None = None) -> list[dict[str, Any]]:
        """Refused re-enrollments (another identity for an enrolled device), newest first."""
        if not 1 <= limit <= 1000:
            raise Invalid("limit must be between 1 and 1000")
        rows = self._store.refusals(limit, device_id)
        return [{**row, "at": _iso(row["at"])} for row in rows]

    def prune_refusals(self) -> int:
        """Housekeeping: refusals older than REFUSALS_KEPT (an attacker's attempts must not pile up)."""
        return self._store.prune_refusals(utcnow() - REFUSALS_KEPT)
