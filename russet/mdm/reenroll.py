"""Who may take over an enrolled device's UDID with another identity certificate.

Anyone holding an enrollment profile gets a fresh identity; if Authenticate with a known UDID
simply rebound the device, that person would cancel the device's queue and receive its commands.
So a different identity for an enrolled device is accepted (strict policy, the default) only when:

* the old identity was given up: the device checked out with it, an admin forgot the device, or
  the old certificate expired;
* the new identity renews the old one over SCEP (a RenewalReq signed by it);
* the new identity is bound to this device: its SCEP challenge was handed out in a profile for
  this device's verified ADE MachineInfo (same UDID or serial number);
* an admin opened re-enrollment for the device (`russet device allow-reenroll`): one use, expiring.

Anything else is refused and recorded in `enrollment_refusals`. `RUSSET_REENROLL_POLICY=open`
restores the permissive behaviour (every re-enrollment accepted, still logged).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update

from russet.mdm.ports import AdeIdentities
from russet.mdm.tables import enrollment_refusals, enrollments
from russet.scep.challenges import renews
from russet.storage.db import as_utc, reading, utcnow
from russet.storage.tables import certificates

POLICIES = ("strict", "open")
REFUSALS_KEPT = timedelta(days=90)  # housekeeping deletes older refusals


@dataclass(frozen=True)
class Bound:
    """The enrolled device's row, as far as the takeover decision needs it."""

    identity_fp: str | None
    serial_number: str | None
    checked_out_at: datetime | None
    forgotten_at: datetime | None
    reenroll_until: datetime | None


def takeover_allowed(
    conn: Connection, device_id: str, bound: Bound, new_fp: str, now: datetime, ade: AdeIdentities
) -> str | None:
    """Why `new_fp` may replace the device's bound identity, or None when it may not. `ade` says
    whether an identity was issued for the device's ADE enrollment (enrollment's log).

    An admin's opening is consumed here (in the caller's transaction), so it admits one identity.
    """
    old_fp = bound.identity_fp
    if old_fp is None:
        return "no identity was bound"
    if bound.forgotten_at is not None:
        return "an admin forgot the device"
    if bound.checked_out_at is not None:
        return "the device checked out with its old identity"
    old_after = conn.execute(
        select(certificates.c.not_after).where(certificates.c.fingerprint == old_fp)
    ).scalar()
    if old_after is not None and as_utc(old_after) <= now:  # type: ignore[operator]
        return "the old identity certificate expired"
    if renews(conn, new_fp, old_fp):
        return "the new identity renews the old one (SCEP)"
    if ade.issued_for_ade(conn, device_id, bound.serial_number, new_fp):
        return "the identity was issued for this device's ADE enrollment"
    if bound.reenroll_until is not None and as_utc(bound.reenroll_until) > now:  # type: ignore[operator]
        opened = conn.execute(
            update(enrollments)
            .where(enrollments.c.id == device_id, enrollments.c.reenroll_until > now)
            .values(reenroll_until=None)
        )
        if opened.rowcount == 1:
            return "an admin opened re-enrollment"
    return None


class ReenrollmentStore:
    """Admin openings, forgetting, and the record of refused takeovers."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def allow(self, device_id: str, until: datetime) -> bool:
        """Let one other identity enroll as this device until `until`; False for an unknown device."""
        with self._engine.begin() as conn:
            res = conn.execute(
                update(enrollments)
                .where(enrollments.c.id == device_id, enrollments.c.channel == "device")
                .values(reenroll_until=until)
            )
        return res.rowcount == 1

    def forget(self, device_id: str) -> bool:
        """Mark the device (and its user channels) forgotten; False for an unknown device."""
        from russet.mdm.enrollments import cancel_active  # enrollments imports this module

        now = utcnow()
        with self._engine.begin() as conn:
            e = enrollments.c
            known = conn.execute(select(e.id).where(e.id == device_id, e.channel == "device")).first()
            if known is None:
                return False
            conn.execute(
                update(enrollments)
                .where(enrollments.c.device_id == device_id, enrollments.c.forgotten_at.is_(None))
                .values(forgotten_at=now)
            )
            cancel_active(conn, device_id, "an admin forgot the device")
        return True

    def record_refusal(
        self, device_id: str, serial: str | None, presented_fp: str, bound_fp: str | None, reason: str
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(enrollment_refusals).values(
                    at=utcnow(),
                    device_id=device_id[:300],
                    serial_number=None if serial is None else serial[:64],
                    presented_fp=presented_fp,
                    bound_fp=bound_fp,
                    reason=reason,
                )
            )

    def prune_refusals(self, before: datetime) -> int:
        """Delete refusals recorded before `before` (an attacker's attempts must not pile up)."""
        with self._engine.begin() as conn:
            res = conn.execute(delete(enrollment_refusals).where(enrollment_refusals.c.at < before))
        return int(res.rowcount or 0)

    def refusals(self, limit: int = 100, device_id: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        query = select(enrollment_refusals).order_by(enrollment_refusals.c.id.desc()).limit(limit)
        if device_id is not None:
            query = query.where(enrollment_refusals.c.device_id == device_id)
        with reading(self._engine) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["at"] = as_utc(row["at"])
        return rows
