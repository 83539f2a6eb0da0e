"""The MDM core's read model of what devices last reported, read in bulk.

Features that act on devices by intent (the blueprints' reconciler) need, for thousands of devices
at a time, each one's installed profiles (its last ProfileList answer, and when), its managed apps
(its last ManagedApplicationList), the facts a name pattern uses (serial number, model, name) and
how many commands are in flight to it. `DeviceReports.reports` answers that in three queries per
chunk of devices, never one round trip per device. It reads only the core's own tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from russet.mdm.enrollments import ACTIVE_STATUSES
from russet.mdm.tables import command_queue, commands, enrollments, inventory
from russet.storage.db import as_utc, reading

log = logging.getLogger("russet.mdm")

CHUNK = 2000  # device ids per IN list: within every database's bound-parameter limit
_SECTIONS = ("ProfileList", "ManagedApplicationList", "DeviceInformation")


@dataclass(frozen=True, slots=True)
class Reported:
    """What one device channel last told the MDM core about itself."""

    # PayloadIdentifier -> PayloadUUID of each profile in its last ProfileList answer.
    profiles: Mapping[str, str] = field(default_factory=dict)
    profiles_at: datetime | None = None  # when that answer came; None: never answered
    # Bundle id -> Status of each app in its last ManagedApplicationList answer.
    apps: Mapping[str, str] = field(default_factory=dict)
    apps_at: datetime | None = None
    serial_number: str | None = None
    model: str | None = None
    device_name: str | None = None
    facts_at: datetime | None = None  # when it last answered DeviceInformation
    in_flight: int = 0  # commands queued, sent or NotNow: not answered yet


def _profiles(data: Any) -> dict[str, str]:
    if not isinstance(data, list):
        return {}
    return {
        e["PayloadIdentifier"]: e["PayloadUUID"]
        for e in data
        if isinstance(e, dict)
        and isinstance(e.get("PayloadIdentifier"), str)
        and isinstance(e.get("PayloadUUID"), str)
    }


def _apps(data: Any) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    return {
        bundle: entry["Status"]
        for bundle, entry in data.items()
        if isinstance(entry, dict) and isinstance(entry.get("Status"), str)
    }


class DeviceReports:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- by serial number (ABM's EnrolledDevices port) ------------------------------------------------

    def by_serial(self, serials: Collection[str]) -> dict[str, dict[str, Any]]:
        """The device-channel enrollment of each serial: an enabled one first, then the latest seen."""
        items = sorted(set(serials))
        best: dict[str, dict[str, Any]] = {}
        e = enrollments.c
        with reading(self._engine) as conn:
            for start in range(0, len(items), CHUNK):
                rows = conn.execute(
                    select(e.id, e.serial_number, e.enabled, e.device_name, e.os_version, e.last_seen_at)
                    .where(e.channel == "device", e.serial_number.in_(items[start : start + CHUNK]))
                )
                for r in rows:
                    candidate = {
                        "id": r.id,
                        "enrolled": bool(r.enabled),
                        "device_name": r.device_name,
                        "os_version": r.os_version,
                        "last_seen_at": as_utc(r.last_seen_at),
                    }
                    current = best.get(r.serial_number)
                    if current is None or _rank(candidate) > _rank(current):
                        best[r.serial_number] = candidate
        return best

    def live_by_serial(self, serials: Collection[str]) -> dict[str, list[str]]:
        """The device channel ids of each serial's enrollments that are not forgotten, in id order."""
        items = sorted(set(serials))
        found: dict[str, list[str]] = {}
        e = enrollments.c
        with reading(self._engine) as conn:
            for start in range(0, len(items), CHUNK):
                for device_id, serial in conn.execute(
                    select(e.id, e.serial_number)
                    .where(
                        e.channel == "device",
                        e.forgotten_at.is_(None),
                        e.serial_number.in_(items[start : start + CHUNK]),
                    )
                    .order_by(e.id)
                ):
                    found.setdefault(serial, []).append(device_id)
        return found

    def reports(self, device_ids: Collection[str]) -> dict[str, Reported]:
        """Each known enrollment's last report, by id; ids the core does not know are left out."""
        ids = list(dict.fromkeys(device_ids))
        out: dict[str, Reported] = {}
        for start in range(0, len(ids), CHUNK):
            out.update(self._chunk(ids[start : start + CHUNK]))
        return out

    def _chunk(self, ids: list[str]) -> dict[str, Reported]:
        e, inv, q = enrollments.c, inventory.c, command_queue.c
        with reading(self._engine) as conn:
            facts = conn.execute(
                select(e.id, e.serial_number, e.model, e.device_name).where(e.id.in_(ids))
            ).all()
            sections = conn.execute(
                select(inv.enrollment_id, inv.section, inv.data, inv.updated_at).where(
                    inv.enrollment_id.in_(ids), inv.section.in_(_SECTIONS)
                )
            ).all()
            busy = conn.execute(
                select(q.enrollment_id, func.count())
                .where(q.enrollment_id.in_(ids), q.status.in_(ACTIVE_STATUSES))
                .group_by(q.enrollment_id)
            ).all()
        by_device: dict[str, dict[str, tuple[Any, datetime | None]]] = {}
        for enrollment_id, section, data, updated_at in sections:
            if section == "DeviceInformation":
                parsed = None  # only its time is used; its values are the enrollment's columns
            else:
                try:
                    parsed = json.loads(data)
                except ValueError:
                    log.warning("inventory %s of %s is not JSON; ignored", section, enrollment_id)
                    continue
            by_device.setdefault(enrollment_id, {})[section] = (parsed, as_utc(updated_at))
        in_flight = {enrollment_id: int(n) for enrollment_id, n in busy}
        out: dict[str, Reported] = {}
        for row in facts:
            got = by_device.get(row.id, {})
            profiles, profiles_at = got.get("ProfileList", (None, None))
            apps, apps_at = got.get("ManagedApplicationList", (None, None))
            out[row.id] = Reported(
                profiles=_profiles(profiles),
                profiles_at=profiles_at,
                apps=_apps(apps),
                apps_at=apps_at,
                serial_number=row.serial_number,
                model=row.model,
                device_name=row.device_name,
                facts_at=got.get("DeviceInformation", (None, None))[1],
                in_flight=in_flight.get(row.id, 0),
            )
        return out

    # -- devices that left ---------------------------------------------------------------------------

    def departed(self, since: Mapping[str, datetime | None]) -> dict[str, str]:
        """Of these serial numbers, the devices that left, serial -> why: unenrolled (CheckOut, and
        no device channel with the serial still enabled) or erased (an EraseDevice acknowledged
        after the serial's time in `since`: Apps and Books gives when it assigned the licence)."""
        serials = list(since)
        out: dict[str, str] = {}
        for start in range(0, len(serials), CHUNK):
            out.update(self._departed(serials[start : start + CHUNK], since))
        return out

    def _departed(self, serials: list[str], since: Mapping[str, datetime | None]) -> dict[str, str]:
        e, q = enrollments.c, command_queue.c
        states: dict[str, list[Any]] = {}
        with reading(self._engine) as conn:
            for row in conn.execute(
                select(e.serial_number, e.enabled, e.checked_out_at).where(
                    e.channel == "device", e.serial_number.in_(serials)
                )
            ):
                states.setdefault(row.serial_number, []).append(row)
            erased = dict(
                conn.execute(
                    select(e.serial_number, func.max(q.reported_at))
                    .join(command_queue, q.enrollment_id == e.id)
                    .join(commands, commands.c.id == q.command_id)
                    .where(
                        e.serial_number.in_(serials),
                        commands.c.request_type == "EraseDevice",
                        q.status == "acknowledged",
                    )
                    .group_by(e.serial_number)
                ).all()
            )
        out = {}
        for serial, rows in states.items():
            if not any(r.enabled for r in rows) and any(r.checked_out_at is not None for r in rows):
                out[serial] = "the device unenrolled (CheckOut)"
                continue
            wiped, after = as_utc(erased.get(serial)), as_utc(since.get(serial))
            if wiped is not None and wiped > (after or datetime.min.replace(tzinfo=UTC)):
                out[serial] = "the device was erased (EraseDevice)"
        return out


def _rank(enrollment: dict[str, Any]) -> tuple[bool, datetime]:
    return enrollment["enrolled"], enrollment["last_seen_at"] or datetime.min.replace(tzinfo=UTC)
