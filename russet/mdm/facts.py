"""Device facts: the MDM core's read model of what is known of each device, in bulk.

Smart groups test these facts (`russet.groups.ports.DeviceFacts` is the contract). They come from
the MDM core's own tables (enrollments, the DeviceInformation inventory), and, through small
ports the composition root wires, from features that know more: which ABM/ASM connections list a
serial number (`AbmAccounts`), which devices were handed an ADE enrollment profile
(`AdeEnrollments`) and how each identity was enrolled, by whom (`EnrollmentOrigins`). Every read
is a handful of queries for any number of devices, never one per device: 100,000 devices are
read in well under a second.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Iterator
from typing import Any, Protocol

from sqlalchemy import Engine, and_, cast, func, or_, select
from sqlalchemy.dialects.postgresql import JSONB

from russet.mdm.ports import EnrollmentOrigins
from russet.mdm.tables import enrollments, inventory
from russet.storage.db import as_utc, reading

# The answers device facts are read from (the DeviceInformation inventory section, beside the
# enrollment's own columns): only these change a device's facts, so only these make the MDM core
# publish DeviceFactsChanged (smart groups and declarations re-evaluated on the device's request).
FACT_REQUEST_TYPES = frozenset({"DeviceInformation"})


IN_CHUNK = 500


class AbmAccounts(Protocol):
    """Which ABM/ASM connections list each serial number (the ABM feature answers)."""

    def connections_by_serial(self, serials: Collection[str] | None) -> dict[str, tuple[str, ...]]:
        """Serial -> connection names, for these serials (every listed serial when None)."""
        ...


class AdeEnrollments(Protocol):
    """Which devices were handed an enrollment profile for their Apple-signed ADE MachineInfo."""

    def ade_identifiers(self, identifiers: Collection[str] | None) -> set[str]:
        """The UDIDs and serial numbers among `identifiers` (all of them when None) that were."""
        ...


class DeclaredStatus(Protocol):
    """Facts devices report through DDM status subscriptions (the declarative feature answers)."""

    def status_facts(self, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
        """Device id -> its status facts (`STATUS_FIELDS`, None when unknown), for the devices
        among `device_ids` (all when None) that reported any."""
        ...


# Facts only DDM status reports give; every device has them (None until it reports).
STATUS_FIELDS = (
    "battery_health",
    "passcode_compliant",
    "passcode_present",
    "update_state",
    "pending_version",
)


# ProductName prefix -> platform, longest prefixes first where they overlap.
_PLATFORMS = (
    ("iPhone", "iOS"),
    ("iPod", "iOS"),
    ("iPad", "iPadOS"),
    ("AppleTV", "tvOS"),
    ("Watch", "watchOS"),
    ("RealityDevice", "visionOS"),
    ("VirtualMac", "macOS"),
    ("MacBook", "macOS"),
    ("Macmini", "macOS"),
    ("MacPro", "macOS"),
    ("iMac", "macOS"),
    ("Mac", "macOS"),
)


@functools.lru_cache(maxsize=4096)
def platform_of(*names: str | None) -> str | None:
    """The OS family of a device from its product name (iPad13,1), else its model or model name."""
    for name in names:
        if not name:
            continue
        for prefix, platform in _PLATFORMS:
            if name.startswith(prefix):
                return platform
    return None


def _chunks(items: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == IN_CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _flag(value: Any) -> bool | None:
    """IsSupervised as each backend extracts it from the JSON: 1/0 (SQLite), 'true'/'false' (PostgreSQL)."""
    if value in (1, True, "true", "1"):
        return True
    if value in (0, False, "false", "0"):
        return False
    return None


class MdmDeviceFacts:
    """Implements `russet.groups.ports.DeviceFacts` over the MDM core's tables."""

    def __init__(
        self,
        engine: Engine,
        abm: AbmAccounts,
        ade: AdeEnrollments,
        declared: DeclaredStatus | None = None,
        origins: EnrollmentOrigins | None = None,
    ) -> None:
        self._engine = engine
        self._abm = abm
        self._ade = ade
        self._declared = declared
        self._origins = origins
        self._query = (
            select(
                enrollments.c.id,
                enrollments.c.enrollment_type,
                enrollments.c.serial_number,
                enrollments.c.model,
                enrollments.c.model_name,
                enrollments.c.product_name,
                enrollments.c.device_name,
                enrollments.c.os_version,
                # Worked out in the database: each date column read costs a parse per row.
                and_(
                    enrollments.c.enabled,
                    enrollments.c.checked_out_at.is_(None),
                    enrollments.c.forgotten_at.is_(None),
                ).label("enrolled"),
                # TokenUpdate and every later contact set last_seen_at; before them, Authenticate.
                func.coalesce(enrollments.c.last_seen_at, enrollments.c.authenticated_at).label(
                    "last_checkin"
                ),
                self._supervised(engine.dialect.name).label("supervised"),
                enrollments.c.identity_fp,
            )
            .select_from(
                enrollments.outerjoin(
                    inventory,
                    and_(
                        inventory.c.enrollment_id == enrollments.c.id,
                        inventory.c.section == "DeviceInformation",
                    ),
                )
            )
            .where(enrollments.c.channel == "device")
        )

    @staticmethod
    def _supervised(dialect: str) -> Any:
        """DeviceInformation's IsSupervised, read inside the database (parsing 100,000 inventory
        sections in Python would take seconds)."""
        if dialect == "postgresql":
            return cast(inventory.c.data, JSONB).op("->>")("IsSupervised")
        return func.json_extract(inventory.c.data, "$.IsSupervised")

    def facts(self, device_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        rows: list[Any] = []
        with reading(self._engine) as conn:
            if device_ids is None:
                rows = list(conn.execute(self._query).all())
                with_users = set(
                    conn.execute(
                        select(enrollments.c.device_id).where(enrollments.c.channel == "user").distinct()
                    ).scalars()
                )
            else:
                with_users = set()
                for chunk in _chunks(sorted(set(device_ids))):
                    rows.extend(conn.execute(self._query.where(enrollments.c.id.in_(chunk))).all())
                    with_users.update(
                        conn.execute(
                            select(enrollments.c.device_id)
                            .where(enrollments.c.channel == "user", enrollments.c.device_id.in_(chunk))
                            .distinct()
                        ).scalars()
                    )
        serials = {r.serial_number for r in rows if r.serial_number}
        accounts = self._abm.connections_by_serial(None if device_ids is None else serials)
        ade = self._ade.ade_identifiers(None if device_ids is None else serials | {r.id for r in rows})
        origins: dict[str, tuple[str, str | None]] = {}
        if self._origins is not None:
            fps = {r.identity_fp for r in rows if r.identity_fp}
            origins = self._origins.origins(None if device_ids is None else fps)
        found = [self._facts(r, with_users, accounts, ade, origins) for r in rows]
        reported = self._declared.status_facts(device_ids) if self._declared is not None else {}
        for facts in found:
            status = reported.get(facts["device_id"])
            if status is None:
                facts.update(dict.fromkeys(STATUS_FIELDS))
                continue
            facts.update({name: status.get(name) for name in STATUS_FIELDS})
            if status.get("os_version"):  # sent by the device as it changes: fresher than inventory
                facts["os_version"] = status["os_version"]
        return found

    @staticmethod
    def _facts(
        row: Any,
        with_users: set[str],
        accounts: dict[str, tuple[str, ...]],
        ade: set[str],
        origins: dict[str, tuple[str, str | None]],
    ) -> dict[str, Any]:
        # Unpacked by position: a Row's attribute access costs several times more, 100,000 times.
        (
            device_id,
            enrollment_type,
            serial,
            model,
            model_name,
            product_name,
            device_name,
            os_version,
            enrolled,
            last_checkin,
            supervised,
            identity_fp,
        ) = row
        user_enrollment = enrollment_type == "user_enrollment"
        if user_enrollment:
            kind = "user"
        elif device_id in ade or (serial and serial in ade):
            kind = "ade"
        else:
            kind = "ota"
        method, enrolled_by = origins.get(identity_fp, (None, None)) if identity_fp else (None, None)
        return {
            "device_id": device_id,
            "udid": None if user_enrollment else device_id,
            "serial": serial,
            "model": model,
            "model_name": model_name,
            "product_name": product_name,
            "device_name": device_name,
            "os_version": os_version,
            "platform": platform_of(product_name, model, model_name),
            "enrollment_type": kind,
            "enrollment_method": method,
            "enrolled_by": enrolled_by,
            "supervised": _flag(supervised),
            "user_channel": device_id in with_users,
            "enrolled": bool(enrolled),
            "abm_account": accounts.get(serial, ()) if serial else (),
            "last_checkin": as_utc(last_checkin) if last_checkin is not None else None,
        }

    def resolve(self, identifiers: Collection[str]) -> dict[str, list[str]]:
        """Identifier (UDID, EnrollmentID or serial, any case) -> device channel ids it names.

        Matched exactly on the indexed columns as given, upper- and lower-cased, then by
        casefolding: a lower() in SQL would read every row once per batch.
        """
        wanted = {i.casefold(): i for i in identifiers}
        variants = {v for i in identifiers for v in (i, i.upper(), i.lower())}
        by_key: dict[str, set[str]] = {}
        e = enrollments.c
        with reading(self._engine) as conn:
            for chunk in _chunks(sorted(variants)):
                for device_id, serial in conn.execute(
                    select(e.id, e.serial_number).where(
                        e.channel == "device", or_(e.id.in_(chunk), e.serial_number.in_(chunk))
                    )
                ):
                    for key in (device_id, serial):
                        if key and key.casefold() in wanted:
                            by_key.setdefault(key.casefold(), set()).add(device_id)
        return {
            ident: sorted(by_key[ident.casefold()]) for ident in identifiers if ident.casefold() in by_key
        }
