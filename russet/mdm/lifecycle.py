"""Where each device channel is in its enrollment life, read in bulk: enrolled or not, and when it
last (re-)enrolled (its Authenticate).

Features that send a device what it should hold (declarations) must send it again after the device
was erased and enrolled anew with the same UDID: its new Authenticate is later than their last
send. One query per chunk of devices, never one per device; reads only the core's own table.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, select

from russet.mdm.tables import enrollments
from russet.storage.db import as_utc, reading

CHUNK = 2000


@dataclass(frozen=True, slots=True)
class Life:
    enrolled: bool  # enabled (TokenUpdate done), not checked out, not forgotten
    authenticated_at: datetime | None  # the latest Authenticate: a re-enrollment moves it


class EnrollmentLives:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def lives(self, device_ids: Collection[str]) -> dict[str, Life]:
        """Each known device channel among `device_ids`; unknown ones are left out."""
        e = enrollments.c
        enrolled = and_(e.enabled, e.checked_out_at.is_(None), e.forgotten_at.is_(None)).label("enrolled")
        ids = sorted(set(device_ids))
        found: dict[str, Life] = {}
        with reading(self._engine) as conn:
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                rows = conn.execute(
                    select(e.id, enrolled, e.authenticated_at).where(e.channel == "device", e.id.in_(chunk))
                )
                for device_id, is_enrolled, authenticated_at in rows:
                    found[device_id] = Life(bool(is_enrolled), as_utc(authenticated_at))
        return found
