"""Enrollments: who is enrolled, which identity certificate is bound to them, push tokens.

The push token and PushMagic are sealed together in one column (`sealed_push`): whoever holds
both can wake the device through APNs with Russet's certificate, and the pusher opens them for
up to 100,000 devices per sweep, so one AES-GCM opening per device rather than two.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Row

from russet.mdm.bootstrap import forget_bootstrap_token
from russet.mdm.channels import Channel
from russet.mdm.ports import AdeIdentities
from russet.mdm.reenroll import Bound, ReenrollmentStore, takeover_allowed
from russet.mdm.tables import command_queue, enrollments, inventory
from russet.scep.challenges import renews
from russet.storage.db import reading, upsert, utcnow
from russet.storage.secretbox import SecretBox

log = logging.getLogger("russet.storage")

ACTIVE_STATUSES = ("queued", "sent", "notnow")
SUMMARY_COLUMNS = (
    "serial_number",
    "model",
    "model_name",
    "product_name",
    "device_name",
    "os_version",
    "build_version",
)


def push_purpose(enrollment_id: str) -> str:
    return f"push:{enrollment_id}"


def pack_push(token: bytes, push_magic: str) -> bytes:
    """Token and PushMagic as one plaintext: the token's length (2 bytes), the token, the magic."""
    return len(token).to_bytes(2, "big") + token + push_magic.encode()


def unpack_push(plain: bytes) -> tuple[bytes, str]:
    size = int.from_bytes(plain[:2], "big")
    return plain[2 : 2 + size], plain[2 + size :].decode()


class EnrollmentConflict(Exception):
    """The identity certificate is bound to another enrollment; nothing was stored."""


class NotEnrolled(Exception):
    """No enrollment matches; nothing was stored."""


def fit_summary(values: dict[str, Any]) -> dict[str, str]:
    """The device-list columns in `values` as the database can hold them on every backend.

    These are descriptions the device gives of itself (serial number, name, OS version), not
    keys: a value longer than its column is cut to fit and logged, rather than failing the
    whole check-in or result on PostgreSQL (a 500 the device would retry forever) while SQLite
    stores it; NUL characters, which PostgreSQL text refuses, are dropped. Empty and non-text
    values are left out, so they never blank a stored column.
    """
    fitted: dict[str, str] = {}
    for column in SUMMARY_COLUMNS:
        value = values.get(column)
        if not isinstance(value, str):
            continue
        value = value.replace("\x00", "")
        limit: int | None = getattr(enrollments.c[column].type, "length", None)
        if limit is not None and len(value) > limit:
            log.warning("device %s of %d characters cut to its column's %d", column, len(value), limit)
            value = value[:limit]
        if value:
            fitted[column] = value
    return fitted


class TakeoverRefused(EnrollmentConflict):
    """Another identity for an enrolled device, without a reason to accept it (see reenroll)."""

    def __init__(self, reason: str, bound_fp: str | None) -> None:
        super().__init__(reason)
        self.bound_fp = bound_fp


class Forgotten(Exception):
    """An admin forgot the device: it is to be told ErrorUnrecognizedDevice (and unenroll)."""


@dataclass(frozen=True)
class DeviceFacts:
    """What Authenticate tells about the device (all optional); `columns` fits them for storage."""

    serial_number: str | None = None
    model: str | None = None
    model_name: str | None = None
    product_name: str | None = None
    device_name: str | None = None
    os_version: str | None = None
    build_version: str | None = None

    def columns(self) -> dict[str, str]:
        return fit_summary(vars(self))


def cancel_active(conn: Connection, device_id: str, reason: str) -> int:
    """Close every undelivered command of a device and its user channels, with a reason.

    Commands are never deleted silently: they end as `cancelled` and say why.
    """
    channel_ids = select(enrollments.c.id).where(enrollments.c.device_id == device_id).scalar_subquery()
    res = conn.execute(
        update(command_queue)
        .where(command_queue.c.enrollment_id.in_(channel_ids), command_queue.c.status.in_(ACTIVE_STATUSES))
        .values(status="cancelled", status_reason=reason, reported_at=utcnow())
    )
    return res.rowcount


TARGET_BATCH = 500  # ids per IN (...) when reading command targets
TARGET_SECTIONS = ("DeviceInformation", "SecurityInfo")  # what says which commands a device runs
_EXISTING = select(enrollments.c.id).where(enrollments.c.id.in_(bindparam("ids", expanding=True)))


def existing_ids(conn: Connection, ids: list[str]) -> set[str]:
    """Which of `ids` are enrollments, read on `conn` (the command queue asks inside its
    enqueue's transaction, the stores and services through `EnrollmentStore.existing`)."""
    return set(conn.execute(_EXISTING, {"ids": ids}).scalars())


# command_targets' reads, built once: every queued command makes them, and building a statement
# cost SQLAlchemy more CPU than running it (measured on POST /api/v1/commands, bench/device_path.py).
_TARGETS = select(
    enrollments.c.id, enrollments.c.device_id, enrollments.c.channel, enrollments.c.enrollment_type
).where(enrollments.c.id.in_(bindparam("ids", expanding=True)))
_TARGET_FACTS = select(inventory.c.enrollment_id, inventory.c.section, inventory.c.data).where(
    inventory.c.enrollment_id.in_(bindparam("devices", expanding=True)),
    inventory.c.section.in_(TARGET_SECTIONS),
)


@dataclass(frozen=True)
class TargetFacts:
    """A command target as `command_targets` reads it: enough to say what it can run."""

    channel: str  # device | user
    enrollment_type: str  # device | user_enrollment | user | shared_ipad
    inventory: dict[str, Any]  # its device's DeviceInformation and SecurityInfo answers


class EnrollmentStore:
    def __init__(self, engine: Engine, box: SecretBox, ade: AdeIdentities) -> None:
        """`ade`: which identities were issued for a device's ADE enrollment (enrollment's log),
        for the re-enrollment rule (`russet.mdm.reenroll`)."""
        self._engine = engine
        self._box = box
        self._ade = ade

    # -- check-in messages -------------------------------------------------------------------

    def authenticate(
        self, ch: Channel, identity_fp: str, topic: str, facts: DeviceFacts, policy: str = "strict"
    ) -> str | None:
        """Record a (re-)enrollment; returns None for a new device, else why it was accepted again.

        A known device re-enrolling has its undelivered commands cancelled and stays disabled
        until its TokenUpdate, so nothing queued for its previous life reaches it. Another
        identity than the bound one is accepted only as `russet.mdm.reenroll` allows (with
        policy "strict"); otherwise TakeoverRefused is raised, nothing changes and the attempt
        is recorded.
        """
        now = utcnow()
        try:
            with self._engine.begin() as conn:
                self._refuse_foreign_identity(conn, identity_fp, ch.device_id)
                e = enrollments.c
                row = conn.execute(
                    select(
                        e.identity_fp, e.serial_number, e.checked_out_at, e.forgotten_at, e.reenroll_until
                    ).where(e.id == ch.enrollment_id)
                ).first()
                why = None
                if row is not None:
                    why = self._admit(conn, ch.device_id, Bound(*row), identity_fp, facts, policy, now)
                values: dict[str, Any] = {
                    "enabled": False,
                    "identity_fp": identity_fp,
                    "topic": topic,
                    "authenticated_at": now,
                    "checked_out_at": None,
                    **facts.columns(),
                }
                if row is not None:
                    cancel_active(conn, ch.device_id, "the device enrolled again (Authenticate)")
                    conn.execute(
                        update(enrollments)
                        .where(enrollments.c.device_id == ch.device_id)
                        .values(enabled=False, forgotten_at=None)
                    )
                    conn.execute(
                        update(enrollments).where(enrollments.c.id == ch.enrollment_id).values(**values)
                    )
                else:
                    conn.execute(
                        insert(enrollments).values(
                            id=ch.enrollment_id,
                            device_id=ch.device_id,
                            channel="device",
                            enrollment_type=ch.enrollment_type,
                            awaiting_configuration=False,
                            created_at=now,
                            **values,
                        )
                    )
        except TakeoverRefused as refused:
            ReenrollmentStore(self._engine).record_refusal(
                ch.device_id,
                facts.columns().get("serial_number"),  # cut and NUL-free, as stored everywhere
                identity_fp,
                refused.bound_fp,
                str(refused),
            )
            raise
        return why

    def _admit(
        self,
        conn: Connection,
        device_id: str,
        bound: Bound,
        identity_fp: str,
        facts: DeviceFacts,
        policy: str,
        now: datetime,
    ) -> str:
        """Why this Authenticate of a known device is accepted; raises Forgotten or TakeoverRefused."""
        if bound.identity_fp == identity_fp:
            if bound.forgotten_at is not None:
                raise Forgotten("an admin forgot this device; it must enroll again with a new identity")
            return "same identity"
        why = takeover_allowed(conn, device_id, bound, identity_fp, now, self._ade)
        if why is not None:
            return why
        if policy == "open":
            return "RUSSET_REENROLL_POLICY=open"
        raise TakeoverRefused(
            "another identity certificate for an enrolled device: refused unless its old identity "
            "was given up or expired, the new one is bound to it (ADE), or an admin opened "
            "re-enrollment (russet device allow-reenroll)",
            bound.identity_fp,
        )

    def token_update(
        self,
        ch: Channel,
        identity_fp: str,
        topic: str,
        token: bytes,
        push_magic: str,
        unlock_token: bytes | None,
        awaiting_configuration: bool,
    ) -> None:
        """Store fresh push credentials; the first one completes the enrollment."""
        now = utcnow()
        values: dict[str, Any] = {
            "enabled": True,
            "topic": topic,
            "sealed_push": self.seal_push(ch.enrollment_id, token, push_magic),
            "awaiting_configuration": awaiting_configuration,
            "token_updated_at": now,
            "last_seen_at": now,
        }
        if unlock_token:  # an absent UnlockToken keeps the stored one (Apple §a.4.2)
            values["sealed_unlock_token"] = self._box.seal(unlock_token, f"unlock-token:{ch.device_id}")
        with self._engine.begin() as conn:
            device = self._bound_device(conn, ch.device_id, identity_fp)
            if not ch.is_user:
                conn.execute(update(enrollments).where(enrollments.c.id == ch.enrollment_id).values(**values))
                return
            if not device.enabled:
                raise NotEnrolled("the device channel has not completed enrollment (no TokenUpdate yet)")
            upsert(
                conn,
                enrollments,
                {
                    "id": ch.enrollment_id,
                    "device_id": ch.device_id,
                    "channel": "user",
                    "enrollment_type": ch.enrollment_type,
                    "user_id": ch.user_id,
                    "user_short_name": ch.user_short_name,
                    "user_long_name": ch.user_long_name,
                    "identity_fp": identity_fp,
                    "created_at": now,
                    **values,
                },
                ["id"],
                ["user_short_name", "user_long_name", "identity_fp", *values],
            )

    def check_out(self, ch: Channel, identity_fp: str) -> None:
        """The MDM profile was removed: disable every channel, close its queue, and drop the
        escrowed bootstrap token (a secret nobody may ask for any more)."""
        with self._engine.begin() as conn:
            self._bound_device(conn, ch.device_id, identity_fp)
            cancel_active(conn, ch.device_id, "the device removed its MDM profile (CheckOut)")
            forget_bootstrap_token(conn, ch.device_id)
            conn.execute(
                update(enrollments)
                .where(enrollments.c.device_id == ch.device_id)
                .values(enabled=False, checked_out_at=utcnow())
            )

    def require_bound(self, device_id: str, identity_fp: str, *, enrolled: bool = True) -> None:
        """Check that `identity_fp` is (or renews) the certificate bound to the device, and with
        `enrolled` that the device completed enrollment; raises NotEnrolled or EnrollmentConflict."""
        with self._engine.begin() as conn:
            row = self._bound_device(conn, device_id, identity_fp)
        if enrolled and not row.enabled:
            raise NotEnrolled("the device is not enrolled (checked out, or no TokenUpdate yet)")

    def user_channels(self, device_id: str) -> list[dict[str, Any]]:
        """The user channels of a device (macOS users, Shared iPad users, User Enrollment users)."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(enrollments)
                .where(enrollments.c.device_id == device_id, enrollments.c.channel == "user")
                .order_by(enrollments.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def user_channel_named(self, device_id: str, user: str) -> str | None:
        """The id of the device's user channel whose user id or short name is `user`, if exactly one."""
        with reading(self._engine) as conn:
            ids = list(
                conn.execute(
                    select(enrollments.c.id).where(
                        enrollments.c.device_id == device_id,
                        enrollments.c.channel == "user",
                        or_(enrollments.c.user_id == user, enrollments.c.user_short_name == user),
                    )
                ).scalars()
            )
        return ids[0] if len(ids) == 1 else None

    def adopt_renewal(self, device_id: str, identity_fp: str) -> bool:
        """Rebind a device whose certificate was renewed over SCEP; False if it was not."""
        try:
            with self._engine.begin() as conn:
                self._bound_device(conn, device_id, identity_fp)
        except (EnrollmentConflict, NotEnrolled):
            return False
        return True

    def _refuse_foreign_identity(self, conn: Connection, identity_fp: str, device_id: str) -> None:
        other = conn.execute(
            select(enrollments.c.device_id)
            .where(enrollments.c.identity_fp == identity_fp, enrollments.c.device_id != device_id)
            .limit(1)
        ).first()
        if other is not None:
            raise EnrollmentConflict("this identity certificate belongs to another enrolled device")

    def _bound_device(self, conn: Connection, device_id: str, identity_fp: str) -> Row[Any, Any, Any]:
        row = conn.execute(
            select(enrollments.c.identity_fp, enrollments.c.enabled, enrollments.c.forgotten_at).where(
                enrollments.c.id == device_id
            )
        ).first()
        if row is None:
            raise NotEnrolled("unknown device: it has not sent Authenticate")
        if row.forgotten_at is not None:
            raise Forgotten("an admin forgot this device")
        if row.identity_fp != identity_fp:
            if row.identity_fp is None or not renews(conn, identity_fp, row.identity_fp):
                raise EnrollmentConflict("the identity certificate is not the one bound to this device")
            # The bound certificate was renewed over SCEP (RenewalReq signed by it): move the
            # device and its user channels to the new one; the old one is refused from now on.
            conn.execute(
                update(enrollments)
                .where(enrollments.c.device_id == device_id, enrollments.c.identity_fp == row.identity_fp)
                .values(identity_fp=identity_fp)
            )
        return row

    # -- reads ------------------------------------------------------------------------------

    def get(self, enrollment_id: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(enrollments).where(enrollments.c.id == enrollment_id)).first()
            if row is None:
                return None
            sections = conn.execute(
                select(inventory.c.section, inventory.c.data).where(
                    inventory.c.enrollment_id == enrollment_id
                )
            ).all()
        data = dict(row._mapping)
        data["inventory"] = {s.section: json.loads(s.data) for s in sections}
        return data

    def page(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        search: str | None = None,
        channel: str = "device",
    ) -> list[dict[str, Any]]:
        """A page of enrollments in id order (keyset pagination: pass the last id as `after`).

        A search that names a device exactly (its UDID/EnrollmentID or serial number, as typed or
        upper-cased) is answered from the indexes alone; any other term is a case-insensitive
        substring of the id, serial number or device name, which walks the table in id order."""
        if search and after is None:
            exact = self._exact(search.strip(), channel, limit)
            if exact:
                return exact
        query = (
            select(enrollments)
            .where(enrollments.c.channel == channel)
            .order_by(enrollments.c.id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(enrollments.c.id > after)
        if search:
            like = f"%{search.lower()}%"
            query = query.where(
                or_(
                    func.lower(enrollments.c.id).like(like),
                    func.lower(enrollments.c.serial_number).like(like),
                    func.lower(enrollments.c.device_name).like(like),
                )
            )
        with reading(self._engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def _exact(self, term: str, channel: str, limit: int) -> list[dict[str, Any]]:
        """Enrollments whose id or serial number is `term` (or its upper case): index look-ups."""
        names = sorted({term, term.upper()})
        e = enrollments.c
        query = (
            select(enrollments)
            .where(e.channel == channel, or_(e.id.in_(names), e.serial_number.in_(names)))
            .order_by(e.id)
            .limit(limit)
        )
        with reading(self._engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def count(self, channel: str = "device") -> int:
        with reading(self._engine) as conn:
            return conn.execute(select(func.count()).where(enrollments.c.channel == channel)).scalar_one()

    def enrolled_count(self) -> int:
        """Devices enrolled now (device channels that are enabled), for the metrics."""
        e = enrollments.c
        with reading(self._engine) as conn:
            query = select(func.count()).where(e.channel == "device", e.enabled.is_(True))
            return conn.execute(query).scalar_one()

    def state_counts(self) -> dict[tuple[bool, bool], int]:
        """Device channels by (enabled, awaiting configuration): one GROUP BY, for the dashboard."""
        e = enrollments.c
        query = (
            select(e.enabled, e.awaiting_configuration, func.count())
            .where(e.channel == "device")
            .group_by(e.enabled, e.awaiting_configuration)
        )
        with reading(self._engine) as conn:
            return {(bool(on), bool(waiting)): n for on, waiting, n in conn.execute(query)}

    def existing(self, ids: list[str]) -> set[str]:
        with reading(self._engine) as conn:
            return existing_ids(conn, ids)

    def command_targets(self, ids: list[str]) -> dict[str, TargetFacts]:
        """What a command's targets are, in bulk (batches of `TARGET_BATCH` ids): each known id's
        channel and enrollment type, and its device's DeviceInformation and SecurityInfo answers
        (a user channel runs on its device). Unknown ids are left out."""
        found: dict[str, TargetFacts] = {}
        with reading(self._engine) as conn:
            for start in range(0, len(ids), TARGET_BATCH):
                batch = ids[start : start + TARGET_BATCH]
                rows = conn.execute(_TARGETS, {"ids": batch}).all()
                devices = sorted({r.device_id for r in rows})
                sections: dict[str, dict[str, Any]] = {}
                for device_id, section, data in conn.execute(_TARGET_FACTS, {"devices": devices}):
                    sections.setdefault(device_id, {})[section] = json.loads(data)
                for r in rows:
                    found[r.id] = TargetFacts(r.channel, r.enrollment_type, sections.get(r.device_id, {}))
        return found

    def aliases(self, identifier: str) -> set[str]:
        """The other identifiers of the device that `identifier` names (UDID <-> serial number),
        whatever its case. As typed, upper- or lower-cased (how UDIDs and serials are written) it is
        found through the indexes; only an identifier in some other case reads the whole table."""
        e = enrollments.c
        spellings = sorted({identifier, identifier.upper(), identifier.lower()})
        key = identifier.casefold()
        with reading(self._engine) as conn:
            for where in (
                or_(e.id.in_(spellings), e.serial_number.in_(spellings)),
                or_(func.lower(e.id) == key, func.lower(e.serial_number) == key),
            ):
                rows = conn.execute(
                    select(e.device_id, e.serial_number).where(where, e.channel == "device")
                ).all()
                if rows:
                    break
        return {value for row in rows for value in (row.device_id, row.serial_number) if value}

    def subject_links(self, identifier: str) -> list[tuple[str, str]]:
        """(kind, value) pairs linked to a UDID, serial number, enrollment id or user (a Managed
        Apple Account on a Shared iPad or a user enrollment, a macOS user), for the ledger's
        subject look-up: the device's UDID and serial, its users, a user's devices."""
        key = identifier.strip().casefold()
        e = enrollments.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(e.id, e.device_id, e.channel, e.serial_number, e.user_id, e.user_short_name).where(
                    or_(
                        func.lower(e.id) == key,
                        func.lower(e.device_id) == key,
                        func.lower(e.serial_number) == key,
                        func.lower(e.user_short_name) == key,
                        func.lower(e.user_id) == key,
                    )
                )
            ).all()
        out: list[tuple[str, str]] = []
        for r in rows:
            out.append(("udid", r.device_id))
            if r.serial_number:
                out.append(("serial", r.serial_number))
            if r.channel == "user":
                out.append(("enrollment", r.id))
            if r.user_short_name:
                kind = "managed_apple_id" if "@" in r.user_short_name else "mdm_user"
                out.append((kind, r.user_short_name))
        return out

    def seal_push(self, enrollment_id: str, token: bytes, push_magic: str) -> bytes:
        """The `sealed_push` value for a push token and PushMagic."""
        return self._box.seal(pack_push(token, push_magic), push_purpose(enrollment_id))

    def open_push(self, enrollment_id: str, sealed: bytes) -> tuple[str, str]:
        """A `sealed_push` value as (token in hex, PushMagic), as APNs wants them."""
        token, magic = unpack_push(self._box.open(sealed, push_purpose(enrollment_id)))
        return token.hex(), magic

    def push_credentials(self, enrollment_id: str) -> tuple[str, str] | None:
        """The enrollment's push token (hex) and PushMagic, or None before its TokenUpdate."""
        with reading(self._engine) as conn:
            sealed = conn.execute(
                select(enrollments.c.sealed_push).where(enrollments.c.id == enrollment_id)
            ).scalar()
        return None if sealed is None else self.open_push(enrollment_id, sealed)

    def unlock_token(self, device_id: str) -> bytes | None:
        with reading(self._engine) as conn:
            sealed = conn.execute(
                select(enrollments.c.sealed_unlock_token).where(enrollments.c.id == device_id)
            ).scalar()
        return None if sealed is None else self._box.open(sealed, f"unlock-token:{device_id}")

    # -- writes from other parts ---------------------------------------------------------------

    def touch(self, seen: dict[str, datetime]) -> None:
        """Record last-seen times in one batch (the device hot path only collects them)."""
        if not seen:
            return
        stmt = (
            update(enrollments)
            .where(
                and_(
                    enrollments.c.id == bindparam("eid"),
                    or_(enrollments.c.last_seen_at.is_(None), enrollments.c.last_seen_at < bindparam("seen")),
                )
            )
            .values(last_seen_at=bindparam("seen"))
        )
        with self._engine.begin() as conn:
            conn.execute(stmt, [{"eid": k, "seen": v} for k, v in seen.items()])


def merge_inventory(
    conn: Connection, enrollment_id: str, sections: dict[str, Any], summary: dict[str, Any]
) -> None:
    """Store inventory sections from a command result and refresh the device's list columns."""
    now = utcnow()
    for section, data in sections.items():
        upsert(
            conn,
            inventory,
            {"enrollment_id": enrollment_id, "section": section, "data": json.dumps(data), "updated_at": now},
            ["enrollment_id", "section"],
            ["data", "updated_at"],
        )
    columns = fit_summary(summary)
    if columns:
        values = {f"b_{name}": value for name, value in columns.items()}
        conn.execute(_summary_update(tuple(columns)), {"b_eid": enrollment_id, **values})


@functools.lru_cache(maxsize=64)
def _summary_update(columns: tuple[str, ...]) -> Any:
    """The UPDATE of these device-list columns, built once per set of columns (answers name the
    same few sets): building it per answer cost about as much as executing it."""
    return (
        update(enrollments)
        .where(enrollments.c.id == bindparam("b_eid"))
        .values({name: bindparam(f"b_{name}") for name in columns})
    )
