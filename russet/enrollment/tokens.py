"""OTA enrollment tokens, stored as SHA-256 hashes only, and the log of profiles handed out.

A token is what an enrollment URL (`/mdm/enroll?token=...`) carries. Like API keys it is 256
random bits, so a plain hash makes a stolen table useless and a fetch costs one indexed UPDATE.
That UPDATE is also the use counter: it only matches a live token with uses left and adds one in
the same statement, so two fetches racing for a token's last use get one profile between them.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, func, insert, or_, select, update

from russet.abm.tables import abm_devices
from russet.enrollment.tables import enrollment_requests, enrollment_tokens
from russet.scep.challenges import MAX_RENEWAL_HOPS
from russet.scep.tables import scep_challenges, scep_renewals
from russet.storage.db import as_utc, reading, utcnow

TOKEN_PREFIX = "enr_"
# How an enrollment profile was asked for (enrollment_requests.method).
METHODS = ("ota", "ade", "ade_signin", "account")
# The methods that proved which device asked, by an Apple-signed MachineInfo.
ADE_METHODS = ("ade", "ade_signin")
_PEOPLE_CHUNK = 400  # people cleared per UPDATE (two IN lists: bound parameters stay few)


@dataclass(frozen=True)
class Person:
    """Who signed in before a profile was handed out: the identity provider's subject (or a local
    account's name), and the email and name it gave. Personal data: the ledger's subject look-up
    and the purge rules cover it."""

    id: str
    email: str | None = None
    name: str | None = None


class TokenRejected(Exception):
    """The token cannot buy a profile now; ``str()`` says why. Nothing was counted."""


@dataclass(frozen=True)
class EnrollmentToken:
    id: int
    prefix: str
    note: str | None
    created_at: datetime
    expires_at: datetime
    max_uses: int | None
    uses: int
    last_used_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        """active | revoked | expired | used up, in that order of precedence."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.uses >= self.max_uses:
            return "used up"
        return "active"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token(row: Any) -> EnrollmentToken:
    return EnrollmentToken(
        id=row.id,
        prefix=row.prefix,
        note=row.note,
        created_at=as_utc(row.created_at),  # type: ignore[arg-type]
        expires_at=as_utc(row.expires_at),  # type: ignore[arg-type]
        max_uses=row.max_uses,
        uses=row.uses,
        last_used_at=as_utc(row.last_used_at),
        revoked_at=as_utc(row.revoked_at),
    )


class EnrollmentTokenStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self, lifetime: timedelta, max_uses: int | None = None, note: str | None = None
    ) -> tuple[str, EnrollmentToken]:
        """Store a new token and return it; this is the only time the clear token exists."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        with self._engine.begin() as conn:
            row_id = conn.execute(
                insert(enrollment_tokens).values(
                    token_hash=token_hash(token),
                    prefix=token[:12],
                    note=note,
                    created_at=now,
                    expires_at=now + lifetime,
                    max_uses=max_uses,
                    uses=0,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            row = conn.execute(select(enrollment_tokens).where(enrollment_tokens.c.id == row_id)).one()
        return token, _token(row)

    def consume(self, token: str) -> int:
        """Count one use of ``token`` and return its id, or raise TokenRejected saying why not."""
        digest = token_hash(token)
        t = enrollment_tokens.c
        now = utcnow()
        with self._engine.begin() as conn:
            counted = conn.execute(
                update(enrollment_tokens)
                .where(
                    t.token_hash == digest,
                    t.revoked_at.is_(None),
                    t.expires_at > now,
                    or_(t.max_uses.is_(None), t.uses < t.max_uses),
                )
                .values(uses=t.uses + 1, last_used_at=now)
            )
            if counted.rowcount == 1:
                return int(conn.execute(select(t.id).where(t.token_hash == digest)).scalar_one())
        with reading(self._engine) as conn:
            row = conn.execute(select(enrollment_tokens).where(t.token_hash == digest)).first()
        if row is None:
            raise TokenRejected("unknown enrollment token")
        found = _token(row)
        status = found.status(utcnow())
        if status == "revoked":
            raise TokenRejected(f"the enrollment token was revoked at {found.revoked_at:%Y-%m-%d %H:%M} UTC")
        if status == "expired":
            raise TokenRejected(f"the enrollment token expired at {found.expires_at:%Y-%m-%d %H:%M} UTC")
        raise TokenRejected(f"the enrollment token has been used {found.uses} of {found.max_uses} times")

    def revoke(self, token_id: int) -> bool:
        with self._engine.begin() as conn:
            res = conn.execute(
                update(enrollment_tokens)
                .where(enrollment_tokens.c.id == token_id, enrollment_tokens.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return res.rowcount > 0

    def get(self, token_id: int) -> EnrollmentToken | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(enrollment_tokens).where(enrollment_tokens.c.id == token_id)).first()
        return None if row is None else _token(row)

    def list(self) -> list[EnrollmentToken]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(enrollment_tokens).order_by(enrollment_tokens.c.id)).all()
        return [_token(r) for r in rows]


def _chunks(items: Collection[str], size: int = 500) -> list[list[str]]:
    ordered = sorted(set(items))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


class EnrollmentRequestLog:
    """Every profile /mdm/enroll handed out: which token or which device, and the challenge in it."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        method: str,
        *,
        token_id: int | None = None,
        challenge: str | None = None,
        device: dict[str, str | None] | None = None,
        person: Person | None = None,
    ) -> None:
        """``method``: one of METHODS. ``device``: udid, serial_number, product, build_version,
        os_version (from a verified MachineInfo). ``person``: who signed in (ade_signin, account)."""
        if method not in METHODS:
            raise ValueError(f"unknown enrollment method {method!r}")
        people = (
            {}
            if person is None
            else {"person_id": person.id, "person_email": person.email, "person_name": person.name}
        )
        with self._engine.begin() as conn:
            conn.execute(
                insert(enrollment_requests).values(
                    at=utcnow(),
                    method=method,
                    token_id=token_id,
                    challenge_hash=None if challenge is None else token_hash(challenge),
                    **(device or {}),
                    **people,
                )
            )

    def ade_identifiers(self, identifiers: Collection[str] | None) -> set[str]:
        """The UDIDs and serial numbers (among `identifiers`, or all when None) that were handed a
        profile for their Apple-signed ADE MachineInfo: the device facts' `enrollment_type`."""
        r = enrollment_requests.c
        query = select(r.udid, r.serial_number).where(r.method.in_(ADE_METHODS))
        found: set[str] = set()
        queries = _for_devices(query, identifiers)
        with reading(self._engine) as conn:
            for each in queries:
                for udid, serial in conn.execute(each).all():
                    found.update(v for v in (udid, serial) if v)
        if identifiers is not None:
            found &= set(identifiers)
        return found

    def signed_in_people(self, identifiers: Collection[str] | None) -> dict[str, Person]:
        """UDID or serial number -> the person who signed in during Setup Assistant, for the
        devices (among `identifiers`, all when None) whose latest installed ADE profile (its SCEP
        challenge redeemed) came after a sign-in, with their name: the Mac's primary account
        pre-fill (primary_account.py). A later ADE enrollment without sign-in unbinds the person.
        (The device view and facts use `origins`, by identity.)"""
        r = enrollment_requests.c
        query = (
            select(r.udid, r.serial_number, r.method, r.person_id, r.person_email, r.person_name)
            .join(scep_challenges, scep_challenges.c.challenge_hash == r.challenge_hash)
            .where(r.method.in_(ADE_METHODS), scep_challenges.c.consumed_at.is_not(None))
            .order_by(r.id)
        )
        queries = _for_devices(query, identifiers)
        latest: dict[str, Person | None] = {}
        with reading(self._engine) as conn:
            for each in queries:
                for udid, serial, method, person_id, email, name in conn.execute(each).all():
                    person = Person(person_id, email, name) if method == "ade_signin" and person_id else None
                    for key in (udid, serial):
                        if key:
                            latest[key] = person  # rows in id order: the latest wins
        return {k: v for k, v in latest.items() if v is not None}

    def subject_links(self, identifier: str) -> list[tuple[str, str]]:
        """For the ledger's subject look-up (personal data): the devices a person signed in for
        during Setup Assistant (by person id or email), or the people who signed in for a device
        (by UDID or serial number), as (kind, value): email, person, udid, serial. Account-driven
        enrollment's requests (method account) name the person too, without a device."""
        r = enrollment_requests.c
        key = identifier.strip()
        if not key or len(key) > 320:
            return []
        lowered = key.lower()
        query = select(r.udid, r.serial_number, r.person_id, r.person_email).where(
            r.person_id.is_not(None),  # ade_signin and account: a person signed in first
            or_(
                r.person_id == key,
                func.lower(r.person_email) == lowered,
                r.udid == key,
                func.upper(r.serial_number) == key.upper(),
            ),
        )
        found: dict[tuple[str, str], None] = {}
        with reading(self._engine) as conn:
            for udid, serial, person_id, email in conn.execute(query.order_by(r.id)).all():
                for kind, value in (
                    ("email", email),
                    ("person", person_id),
                    ("udid", udid),
                    ("serial", serial),
                ):
                    if value and value.lower() != lowered:
                        found[(kind, value)] = None
        return list(found)

    def person_emails(self, limit: int) -> list[str]:
        """The distinct emails (compared in any case) of the people who signed in before a
        profile (ade_signin, account), each as first recorded, first seen first, at most `limit`:
        Apps and Books registers them as users (the `SignedInPeople` port)."""
        r = enrollment_requests.c
        first = (
            select(func.min(r.id))
            .where(r.person_email.is_not(None), r.person_email != "")
            .group_by(func.lower(r.person_email))
        )
        query = select(r.person_email).where(r.id.in_(first)).order_by(r.id).limit(max(0, limit))
        with reading(self._engine) as conn:
            return [email for (email,) in conn.execute(query)]

    def forget_people(self, conn: Connection, people: Collection[str]) -> int:
        """Clear person_id, person_email and person_name on the requests naming these people (by
        person id, or email in any case), in the caller's transaction: the ledger's subject
        erasure. The request itself (how and when a profile was handed out, for which device)
        stays; the device then has no `enrolled_by` and no primary account pre-fill."""
        r = enrollment_requests.c
        ids = sorted({p.strip() for p in people if p and p.strip()})
        if not ids:
            return 0
        changed = 0
        for start in range(0, len(ids), _PEOPLE_CHUNK):
            part = ids[start : start + _PEOPLE_CHUNK]
            lowered = sorted({p.lower() for p in part})
            result = conn.execute(
                update(enrollment_requests)
                .where(or_(r.person_id.in_(part), func.lower(r.person_email).in_(lowered)))
                .values(person_id=None, person_email=None, person_name=None)
            )
            changed += result.rowcount
        return changed

    def issued_for_ade(self, conn: Connection, device_id: str, serial: str | None, identity_fp: str) -> bool:
        """Whether `identity_fp` was bought with a SCEP challenge from a profile handed out for this
        device's Apple-signed MachineInfo (the only profile request that proves which device asked),
        read in the caller's transaction: the MDM core's `AdeIdentities` port (re-enrollment)."""
        r = enrollment_requests.c
        match = r.udid == device_id if serial is None else (r.udid == device_id) | (r.serial_number == serial)
        found = conn.execute(
            select(r.id)
            .join(scep_challenges, scep_challenges.c.challenge_hash == r.challenge_hash)
            .where(scep_challenges.c.issued_fp == identity_fp, r.method.in_(ADE_METHODS), match)
            .limit(1)
        ).first()
        return found is not None

    def origins(self, identity_fps: Collection[str] | None) -> dict[str, tuple[str, str | None]]:
        """How each identity was enrolled and who signed in: the MDM core's `EnrollmentOrigins`
        port (device facts `enrollment_method`, `enrolled_by`; the device view). A profile's SCEP
        challenge (hashed here and in scep_challenges) names the identity it bought; an identity
        renewed by SCEP (scep_renewals, new -> old) has the origin of the one it renewed."""
        with reading(self._engine) as conn:
            if identity_fps is None:
                direct = self._origins(conn, None)
                renewed = dict(conn.execute(select(scep_renewals.c.new_fp, scep_renewals.c.old_fp)).all())
                found = dict(direct)
                for fp in renewed:
                    current: str | None = fp
                    for _ in range(MAX_RENEWAL_HOPS):
                        current = renewed.get(current or "")
                        if current is None or current in direct:
                            break
                    if current is not None and current in direct:
                        found[fp] = direct[current]
                return found
            found = self._origins(conn, identity_fps)
            asked = {fp: fp for fp in set(identity_fps) - set(found)}  # an older identity -> the asked one
            for _ in range(MAX_RENEWAL_HOPS):
                if not asked:
                    break
                older: dict[str, str] = {}
                for chunk in _chunks(asked):
                    for new_fp, old_fp in conn.execute(
                        select(scep_renewals.c.new_fp, scep_renewals.c.old_fp).where(
                            scep_renewals.c.new_fp.in_(chunk)
                        )
                    ):
                        older[old_fp] = asked[new_fp]
                direct = self._origins(conn, older)
                found.update({older[fp]: origin for fp, origin in direct.items()})
                asked = {fp: first for fp, first in older.items() if fp not in direct}
        return found

    @staticmethod
    def _origins(conn: Connection, fps: Collection[str] | None) -> dict[str, tuple[str, str | None]]:
        """Identity -> (method, person) for identities bought with a handed-out profile's challenge."""
        r, c = enrollment_requests.c, scep_challenges.c
        query = (
            select(c.issued_fp, r.method, r.person_email, r.person_id)
            .join(scep_challenges, c.challenge_hash == r.challenge_hash)
            .where(c.issued_fp.is_not(None))
        )
        queries = [query] if fps is None else [query.where(c.issued_fp.in_(chunk)) for chunk in _chunks(fps)]
        found: dict[str, tuple[str, str | None]] = {}
        for each in queries:
            for fp, method, email, person_id in conn.execute(each):
                found[fp] = (method, email or person_id)
        return found

    def abm_connections(self, serial: str) -> list[str]:
        """The ABM/ASM connections whose last sync lists this serial."""
        with reading(self._engine) as conn:
            return list(
                conn.execute(
                    select(abm_devices.c.connection)
                    .where(abm_devices.c.serial_number == serial)
                    .order_by(abm_devices.c.connection)
                ).scalars()
            )

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """Newest first, with whether the profile's SCEP challenge has bought an identity yet."""
        r = enrollment_requests.c
        query = (
            select(
                enrollment_requests,
                scep_challenges.c.consumed_at.label("identity_issued_at"),
                scep_challenges.c.issued_fp,
            )
            .outerjoin(scep_challenges, scep_challenges.c.challenge_hash == r.challenge_hash)
            .order_by(r.id.desc())
            .limit(limit)
        )
        with reading(self._engine) as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
            serials = sorted({row["serial_number"] for row in rows if row["serial_number"]})
            in_abm: dict[str, list[str]] = {}
            if serials:
                for serial, connection in conn.execute(
                    select(abm_devices.c.serial_number, abm_devices.c.connection).where(
                        abm_devices.c.serial_number.in_(serials)
                    )
                ):
                    in_abm.setdefault(serial, []).append(connection)
        for row in rows:
            row.pop("challenge_hash")
            row["at"] = as_utc(row["at"])
            row["identity_issued_at"] = as_utc(row["identity_issued_at"])
            row["abm_connections"] = sorted(in_abm.get(row["serial_number"] or "", []))
        return rows


def _for_devices(query: Select[Any], identifiers: Collection[str] | None) -> list[Select[Any]]:
    """`query` over every request (None), or over the requests of these UDIDs or serial numbers,
    500 a statement (a bound-parameter count every database takes)."""
    if identifiers is None:
        return [query]
    r = enrollment_requests.c
    items = sorted(set(identifiers))
    return [
        query.where(or_(r.udid.in_(chunk), r.serial_number.in_(chunk)))
        for chunk in (items[i : i + 500] for i in range(0, len(items), 500))
    ]
