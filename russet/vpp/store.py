"""Storage for Apps and Books: locations (sealed token), assets, users, licences, events.

Licence changes are reserved in the database before Apple is asked (so two admins, or two server
processes, cannot promise the same licence twice, and a request Apple refuses leaves nothing
behind: the reservation is undone), then bound to Apple's eventId, and applied when Apple says
how the event ended — each step one transaction. Counts are adjusted with clamps and a CHECK
constraint, so they never go below zero whatever Apple reports.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    and_,
    case,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from russet.apple.connection.tokens import ConnectionRows
from russet.apple.connections import ConnectionRegistry
from russet.storage.db import as_utc, reading, utcnow
from russet.vpp.errors import VppConflict, VppNotFound
from russet.vpp.records import MAX_COUNT, Failure, Notification, Outcome
from russet.vpp.tables import (
    vpp_assets,
    vpp_events,
    vpp_licences,
    vpp_locations,
    vpp_notifications,
    vpp_users,
)
from russet.vpp.token import ContentToken

RELEASING = ("disassociating", "revoking")
IN_FLIGHT = ("associating", *RELEASING)
LOCATION_CONFIG = (
    "taken_over_by",
    "location_name",
    "country",
    "uid",
    "default_platform",
    "website_url",
    "limits",
    "notify_secret_hash",
    "notification_url",
)


class NotYet(Exception):
    """A notification about an event Russet does not know (yet); Apple should deliver it again."""


class _UnknownEvent(Exception):
    pass


@dataclass(frozen=True)
class Snapshot:
    """A location as it was before a token was loaded, to put back if setting it up fails."""

    row: dict[str, Any] | None
    connection_status: str | None


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _clamped(column: Any, delta: int) -> Any:
    """`column + delta`, kept within 0..MAX_COUNT (computed wide, so it cannot overflow first)."""
    wide = cast(column, BigInteger) + delta
    return case((wide < 0, 0), (wide > MAX_COUNT, MAX_COUNT), else_=wide)


def _time(row: dict[str, Any]) -> dict[str, Any]:
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()}


def _insert_ignore(conn: Connection, table: Any, values: dict[str, Any], keys: list[str]) -> bool:
    """INSERT … ON CONFLICT DO NOTHING; whether the row was new (RETURNING: psycopg reports no
    rowcount for it)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return conn.execute(stmt.returning(table.c[keys[0]])).first() is not None


class VppStore(ConnectionRows):
    service = "vpp"
    table = vpp_locations
    expiry_column = "token_expires_at"

    # -- locations ------------------------------------------------------------------------------

    def location(self, name: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(vpp_locations).where(vpp_locations.c.name == name)).first()
        if row is None:
            return None
        out = _time(dict(row._mapping))
        out["has_token"] = out.pop("sealed_token") is not None
        out["limits"] = json.loads(out["limits"]) if out["limits"] else {}
        out["taken_over_by"] = json.loads(out["taken_over_by"]) if out["taken_over_by"] else None
        return out

    def require(self, name: str) -> dict[str, Any]:
        location = self.location(name)
        if location is None:
            raise VppNotFound(
                f"no Apps and Books location named {name!r}; "
                f"add it with `russet vpp add {name} FILE.vpptoken`",
            )
        return location

    def token(self, name: str) -> ContentToken:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(
                    vpp_locations.c.sealed_token, vpp_locations.c.token_expires_at, vpp_locations.c.org_name
                ).where(vpp_locations.c.name == name)
            ).first()
        if row is None or row.sealed_token is None:
            raise VppConflict(
                f"Apps and Books location {name!r} has no content token (it was disconnected); "
                f"load one with `russet vpp add {name} FILE.vpptoken`",
            )
        bearer = self.unseal("token", name, row.sealed_token).decode()
        expires = as_utc(row.token_expires_at)
        assert expires is not None
        return ContentToken(bearer, expires, row.org_name or "")

    def store_token(
        self, name: str, token: ContentToken, mdm_id: str, registry: ConnectionRegistry
    ) -> Snapshot:
        """Seal the token and mark the connection active, in one transaction; returns what was
        there before, for `restore`."""
        now = utcnow()
        with self._engine.begin() as conn:
            other = conn.execute(
                select(vpp_locations.c.name).where(
                    vpp_locations.c.token_sha256 == token.sha256, vpp_locations.c.name != name
                )
            ).scalar()
            if other is not None:
                raise VppConflict(
                    f"this content token is already loaded as Apps and Books location {other!r}"
                )
            row = conn.execute(select(vpp_locations).where(vpp_locations.c.name == name)).first()
            status = self.registry_status(conn, name)
            values = {
                "sealed_token": self.seal("token", name, token.bearer.encode()),
                "token_sha256": token.sha256,
                "token_expires_at": token.expires_at,
                "token_stored_at": now,
                "org_name": token.org_name,
            }
            if row is None:
                conn.execute(insert(vpp_locations).values(name=name, mdm_id=mdm_id, created_at=now, **values))
            else:
                conn.execute(update(vpp_locations).where(vpp_locations.c.name == name).values(**values))
            registry.connect(conn, "vpp", name)
        return Snapshot(None if row is None else dict(row._mapping), status)

    def restore(self, name: str, snapshot: Snapshot, registry: ConnectionRegistry) -> None:
        """Put a location back as it was before `store_token` (its set-up failed)."""
        with self._engine.begin() as conn:
            if snapshot.row is None:
                conn.execute(delete(vpp_locations).where(vpp_locations.c.name == name))
            else:
                values = {k: v for k, v in snapshot.row.items() if k != "name"}
                conn.execute(update(vpp_locations).where(vpp_locations.c.name == name).values(**values))
            registry.withdraw(conn, "vpp", name, snapshot.connection_status)

    def save_config(self, name: str, values: dict[str, Any]) -> None:
        values = {k: v for k, v in values.items() if k in LOCATION_CONFIG}
        for key in ("limits", "taken_over_by"):
            if isinstance(values.get(key), dict):
                values[key] = json.dumps(values[key], sort_keys=True)
        with self._engine.begin() as conn:
            conn.execute(update(vpp_locations).where(vpp_locations.c.name == name).values(**values))

    def verify_secret(self, name: str, secret: str) -> bool:
        """Whether `secret` is the notification secret of a connected location."""
        with reading(self._engine) as conn:
            stored = conn.execute(
                select(vpp_locations.c.notify_secret_hash).where(vpp_locations.c.name == name)
            ).scalar()
        return stored is not None and hmac.compare_digest(stored, secret_hash(secret))

    def note_sync(
        self, name: str, *, error: str | None = None, version: str | None = None, completed: bool = False
    ) -> None:
        values: dict[str, Any] = {"last_attempt_at": utcnow(), "last_error": error}
        if completed:
            values["last_sync_at"] = values["last_attempt_at"]
            values["assets_version"] = version
        with self._engine.begin() as conn:
            conn.execute(update(vpp_locations).where(vpp_locations.c.name == name).values(**values))

    # -- assets ---------------------------------------------------------------------------------

    def replace_assets(self, name: str, rows: list[dict[str, Any]], version: str | None) -> dict[str, int]:
        """Apply a complete asset listing at once: counts from Apple, unlisted assets removed."""
        now = utcnow()
        a = vpp_assets.c
        with self._engine.begin() as conn:
            known = {
                (r.adam_id, r.pricing_param)
                for r in conn.execute(select(a.adam_id, a.pricing_param).where(a.location == name))
            }
            listed = {(r["adam_id"], r["pricing_param"]) for r in rows}
            for key in known - listed:
                conn.execute(
                    delete(vpp_assets).where(
                        a.location == name, a.adam_id == key[0], a.pricing_param == key[1]
                    )
                )
            if rows:
                dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
                stmt = dialect.insert(vpp_assets)
                columns = [c for c in rows[0] if c not in ("adam_id", "pricing_param")] + ["updated_at"]
                stmt = stmt.on_conflict_do_update(
                    index_elements=["location", "adam_id", "pricing_param"],
                    set_={c: stmt.excluded[c] for c in columns},
                )
                conn.execute(stmt, [{**r, "location": name, "updated_at": now} for r in rows])
            conn.execute(
                update(vpp_locations)
                .where(vpp_locations.c.name == name)
                .values(last_sync_at=now, last_attempt_at=now, last_error=None, assets_version=version)
            )
        return {"assets": len(listed), "added": len(listed - known), "removed": len(known - listed)}

    def assets(self, name: str, adam_id: str | None = None) -> list[dict[str, Any]]:
        query = select(vpp_assets).where(vpp_assets.c.location == name)
        if adam_id is not None:
            query = query.where(vpp_assets.c.adam_id == adam_id)
        with reading(self._engine) as conn:
            rows = [_time(dict(r._mapping)) for r in conn.execute(query.order_by(vpp_assets.c.adam_id))]
            pending: dict[str, int] = dict(
                conn.execute(
                    select(vpp_licences.c.adam_id + ":" + vpp_licences.c.pricing_param, func.count())
                    .where(vpp_licences.c.location == name, vpp_licences.c.status == "associating")
                    .group_by(vpp_licences.c.adam_id, vpp_licences.c.pricing_param)
                ).all()
            )
        for row in rows:
            row.pop("location")
            row["supported_platforms"] = json.loads(row["supported_platforms"] or "[]")
            row["reserved"] = pending.get(f"{row['adam_id']}:{row['pricing_param']}", 0)
        return rows

    # -- users ----------------------------------------------------------------------------------

    def add_user(
        self, name: str, client_user_id: str, email: str | None, managed_apple_id: str | None
    ) -> None:
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                insert(vpp_users).values(
                    location=name,
                    client_user_id=client_user_id,
                    email=email,
                    managed_apple_id=managed_apple_id,
                    status="creating",
                    created_at=now,
                    updated_at=now,
                )
            )

    def forget_user(self, name: str, client_user_id: str) -> None:
        """Drop a user Apple refused to create synchronously (nothing was registered)."""
        with self._engine.begin() as conn:
            conn.execute(
                delete(vpp_users).where(
                    vpp_users.c.location == name,
                    vpp_users.c.client_user_id == client_user_id,
                    vpp_users.c.status == "creating",
                    vpp_users.c.event_id.is_(None),
                )
            )

    def users(self, name: str, client_user_id: str | None = None) -> list[dict[str, Any]]:
        query = select(vpp_users).where(vpp_users.c.location == name)
        if client_user_id is not None:
            query = query.where(vpp_users.c.client_user_id == client_user_id)
        with reading(self._engine) as conn:
            rows = [_time(dict(r._mapping)) for r in conn.execute(query.order_by(vpp_users.c.created_at))]
        for row in rows:
            row.pop("location")
            row["pending"] = json.loads(row["pending"]) if row["pending"] else None
        return rows

    def people(self, identifier: str) -> list[dict[str, Any]]:
        """Users of every location whose client user id, email or Managed Apple ID is
        `identifier` (case-insensitive), for the ledger's subject look-up."""
        key = identifier.strip().casefold()
        u = vpp_users.c
        query = select(u.location, u.client_user_id, u.email, u.managed_apple_id).where(
            (func.lower(u.client_user_id) == key)
            | (func.lower(u.email) == key)
            | (func.lower(u.managed_apple_id) == key)
        )
        with reading(self._engine) as conn:
            return [dict(r._mapping) for r in conn.execute(query.order_by(u.location, u.client_user_id))]

    def claim_user(self, name: str, client_user_id: str, pending: dict[str, Any]) -> bool:
        """Mark an update or retire as waiting for Apple; False if another one already waits."""
        u = vpp_users.c
        with self._engine.begin() as conn:
            return bool(
                conn.execute(
                    update(vpp_users)
                    .where(
                        u.location == name,
                        u.client_user_id == client_user_id,
                        u.pending.is_(None),
                        u.status.in_(("Registered", "Associated")),
                    )
                    .values(pending=json.dumps(pending), event_id=None, updated_at=utcnow())
                ).rowcount
            )

    def release_user(self, name: str, client_user_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(vpp_users)
                .where(vpp_users.c.location == name, vpp_users.c.client_user_id == client_user_id)
                .values(pending=None)
            )

    def user_event(
        self,
        name: str,
        client_user_id: str,
        event_id: str,
        event_type: str,
        reason: str,
        licence_ids: Sequence[int] = (),
    ) -> None:
        """Bind a user (and the licences a retire releases) to Apple's event, in one transaction."""
        with self._engine.begin() as conn:
            conn.execute(
                update(vpp_users)
                .where(vpp_users.c.location == name, vpp_users.c.client_user_id == client_user_id)
                .values(event_id=event_id, error=None, updated_at=utcnow())
            )
            self._new_event(conn, name, event_id, event_type, reason, 1)
            if licence_ids:
                conn.execute(
                    update(vpp_licences)
                    .where(vpp_licences.c.id.in_(list(licence_ids)))
                    .values(event_id=event_id)
                )

    def refresh_user(self, name: str, client_user_id: str, fields: dict[str, Any]) -> None:
        """Apple's current view of a user (GET users), for fields Russet does not decide."""
        values = {k: v for k, v in fields.items() if k in ("status", "invite_code", "id_hash")}
        if not values:
            return
        with self._engine.begin() as conn:
            conn.execute(
                update(vpp_users)
                .where(
                    vpp_users.c.location == name,
                    vpp_users.c.client_user_id == client_user_id,
                    vpp_users.c.pending.is_(None),
                    vpp_users.c.status != "creating",
                )
                .values(**values, updated_at=utcnow())
            )

    # -- licences -------------------------------------------------------------------------------

    def licences(
        self,
        name: str,
        *,
        adam_id: str | None = None,
        subject: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
    ) -> list[dict[str, Any]]:
        lc = vpp_licences.c
        query = select(vpp_licences).where(lc.location == name)
        for column, value in (
            (lc.adam_id, adam_id),
            (lc.subject, subject),
            (lc.status, status),
            (lc.event_id, event_id),
        ):
            if value is not None:
                query = query.where(column == value)
        with reading(self._engine) as conn:
            rows = [_time(dict(r._mapping)) for r in conn.execute(query.order_by(lc.adam_id, lc.subject))]
        for row in rows:
            row.pop("location")
        return rows

    def reserve_associate(
        self, name: str, adam_id: str, pricing: str, subjects: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], str]]:
        """Reserve licences for `subjects` ((device|user, id) -> licence id) in one transaction, or
        refuse them all when the asset has too few available; subjects already holding or getting
        one are skipped (and returned with their licence's status)."""
        lc = vpp_licences.c
        a = vpp_assets.c
        now = utcnow()
        with self._engine.begin() as conn:
            asset = conn.execute(
                select(a.available_count, a.total_count)
                .where(a.location == name, a.adam_id == adam_id, a.pricing_param == pricing)
                .with_for_update()
            ).first()
            if asset is None:
                raise VppNotFound(f"no asset {adam_id} ({pricing}) in location {name!r}")
            mine = (lc.location == name, lc.adam_id == adam_id, lc.pricing_param == pricing)
            held: dict[tuple[str, str], str] = {}
            for kind in ("device", "user"):
                ids = [s for t, s in subjects if t == kind]
                if ids:
                    rows = conn.execute(
                        select(lc.subject, lc.status).where(
                            *mine, lc.subject_type == kind, lc.subject.in_(ids)
                        )
                    )
                    held.update({(kind, r.subject): r.status for r in rows})
            skipped = {key: status for key, status in held.items() if status != "failed"}
            wanted = [key for key in subjects if key not in skipped]
            reserved = conn.execute(
                select(func.count()).where(*mine, lc.status == "associating")
            ).scalar_one()
            available = max(asset.available_count - reserved, 0)
            if len(wanted) > available:
                raise VppConflict(
                    f"not enough licences for asset {adam_id} ({pricing}) in location {name!r}: "
                    f"{len(wanted)} needed, {available} available"
                    + (f" ({reserved} more already being assigned)" if reserved else "")
                    + f" of {asset.total_count}; nothing was assigned",
                )
            if not wanted:
                return {}, skipped
            out: dict[tuple[str, str], int] = {}
            for kind, subject in wanted:
                where = (*mine, lc.subject_type == kind, lc.subject == subject)
                conn.execute(delete(vpp_licences).where(*where, lc.status == "failed"))
                out[(kind, subject)] = conn.execute(
                    insert(vpp_licences)
                    .values(
                        location=name,
                        adam_id=adam_id,
                        pricing_param=pricing,
                        subject_type=kind,
                        subject=subject,
                        status="associating",
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(lc.id)
                ).scalar_one()
        return out, skipped

    def reserve_release(
        self,
        name: str,
        status: str,
        reason: str,
        *,
        subject_type: str,
        subjects: list[str],
        adam_id: str | None = None,
        pricing: str | None = None,
        revocable_only: bool = False,
    ) -> list[dict[str, Any]]:
        """Claim assigned licences for release (disassociating / revoking): only rows still
        `assigned` are claimed, so two processes never release the same licence twice."""
        lc = vpp_licences.c
        conditions = [
            lc.location == name,
            lc.subject_type == subject_type,
            lc.subject.in_(subjects),
            lc.status == "assigned",
        ]
        if adam_id is not None:
            conditions += [lc.adam_id == adam_id, lc.pricing_param == pricing]
        if revocable_only:
            revocable = select(vpp_assets.c.adam_id).where(
                vpp_assets.c.location == name, vpp_assets.c.revocable.is_(True)
            )
            conditions.append(lc.adam_id.in_(revocable))
        with self._engine.begin() as conn:
            ids = list(conn.execute(select(lc.id).where(*conditions).with_for_update()).scalars())
            if not ids:
                return []
            conn.execute(
                update(vpp_licences)
                .where(lc.id.in_(ids), lc.status == "assigned")
                .values(
                    status=status,
                    reason=reason,
                    event_id=None,
                    error_number=None,
                    error_message=None,
                    updated_at=utcnow(),
                )
            )
            return [dict(r._mapping) for r in conn.execute(select(vpp_licences).where(lc.id.in_(ids)))]

    def undo_reservation(self, ids: list[int]) -> None:
        """Apple refused the request: nothing of it happened, so the reservations go."""
        if not ids:
            return
        lc = vpp_licences.c
        with self._engine.begin() as conn:
            self._undo(conn, lc.id.in_(ids))

    def expire_reservations(self, name: str, older_than: timedelta) -> int:
        """Reservations never bound to an event (the process stopped between reserving and
        Apple's answer) are undone after a while; the next asset sync corrects the counts."""
        lc = vpp_licences.c
        with self._engine.begin() as conn:
            return self._undo(conn, and_(lc.location == name, lc.updated_at < utcnow() - older_than))

    @staticmethod
    def _undo(conn: Connection, which: Any) -> int:
        lc = vpp_licences.c
        undone = conn.execute(
            delete(vpp_licences).where(which, lc.status == "associating", lc.event_id.is_(None))
        ).rowcount
        undone += conn.execute(
            update(vpp_licences)
            .where(which, lc.status.in_(RELEASING), lc.event_id.is_(None))
            .values(status="assigned", reason=None)
        ).rowcount
        return undone

    def licence_event(
        self, name: str, ids: list[int], event_id: str, event_type: str, reason: str, requested: int
    ) -> None:
        """Bind reserved licences to Apple's event, in one transaction with the event row."""
        with self._engine.begin() as conn:
            self._new_event(conn, name, event_id, event_type, reason, requested)
            conn.execute(update(vpp_licences).where(vpp_licences.c.id.in_(ids)).values(event_id=event_id))

    @staticmethod
    def _new_event(
        conn: Connection, name: str, event_id: str, event_type: str, reason: str, requested: int
    ) -> None:
        conn.execute(
            insert(vpp_events).values(
                location=name,
                event_id=event_id,
                event_type=event_type,
                status="PENDING",
                reason=reason[:500],
                num_requested=requested,
                created_at=utcnow(),
            )
        )

    # -- events ---------------------------------------------------------------------------------

    def events(self, name: str, *, pending_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        query = select(vpp_events).where(vpp_events.c.location == name)
        if pending_only:
            query = query.where(vpp_events.c.status == "PENDING")
        with reading(self._engine) as conn:
            rows = conn.execute(query.order_by(vpp_events.c.created_at.desc()).limit(limit)).all()
        out = []
        for r in rows:
            row = _time(dict(r._mapping))
            row.pop("location")
            row["failures"] = json.loads(row["failures"]) if row["failures"] else []
            out.append(row)
        return out

    def due_events(self, name: str, older_than: timedelta, *, force: bool = False) -> list[str]:
        """Pending events to ask Apple about: not answered within `older_than`, nor asked since."""
        e = vpp_events.c
        query = select(e.event_id).where(e.location == name, e.status == "PENDING")
        if not force:
            before = utcnow() - older_than
            query = query.where(
                e.created_at <= before, or_(e.last_polled_at.is_(None), e.last_polled_at <= before)
            )
        with reading(self._engine) as conn:
            return list(conn.execute(query.order_by(e.created_at)).scalars())

    def apply_outcome(self, name: str, event_id: str, outcome: Outcome, source: str) -> dict[str, Any]:
        with self._engine.begin() as conn:
            return self._apply(conn, name, event_id, outcome, source)

    def apply_notification(self, name: str, note: Notification) -> dict[str, Any] | None:
        """Apply one notification once (None: already applied), in one transaction.

        A notification about an event Russet has not recorded yet (Apple can post it before
        Russet has stored the eventId it just got) raises `NotYet`: nothing is kept of it, so
        Apple's next delivery attempt applies it."""
        try:
            return self._apply_notification(name, note)
        except _UnknownEvent:
            raise NotYet(note.event_id or "") from None

    def _apply_notification(self, name: str, note: Notification) -> dict[str, Any] | None:
        now = utcnow()
        with self._engine.begin() as conn:
            fresh = _insert_ignore(
                conn,
                vpp_notifications,
                {
                    "location": name,
                    "notification_id": note.notification_id,
                    "notification_type": note.notification_type,
                    "received_at": now,
                },
                ["location", "notification_id"],
            )
            if not fresh:
                return None
            if note.event_id is not None and note.outcome is not None:
                summary = self._apply(conn, name, note.event_id, note.outcome, "notification")
                if summary.get("why") == "unknown event":
                    raise _UnknownEvent  # rolls the whole transaction back, the id included
                return summary
            if note.notification_type == "USER_ASSOCIATED" and note.outcome is not None:
                changed = 0
                for cuid, fields in note.outcome.user_fields.items():
                    changed += conn.execute(
                        update(vpp_users)
                        .where(vpp_users.c.location == name, vpp_users.c.client_user_id == cuid)
                        .values(**fields, updated_at=now)
                    ).rowcount
                return {"users_associated": changed}
            if note.count_change is not None:
                adam, pricing, delta = note.count_change
                a = vpp_assets.c
                changed = conn.execute(
                    update(vpp_assets)
                    .where(a.location == name, a.adam_id == adam, a.pricing_param == pricing)
                    .values(
                        total_count=_clamped(a.total_count, delta),
                        available_count=_clamped(a.available_count, delta),
                        updated_at=now,
                    )
                ).rowcount
                return {"asset_counts_changed": changed}
            return {}

    def _apply(
        self, conn: Connection, name: str, event_id: str, outcome: Outcome, source: str
    ) -> dict[str, Any]:
        """Apply what Apple said about an event to the licences and users bound to it."""
        e = vpp_events.c
        event = conn.execute(
            select(e.status, e.event_type, e.failures, e.num_completed)
            .where(e.location == name, e.event_id == event_id)
            .with_for_update()
        ).first()
        if event is None:
            return {"event": event_id, "applied": False, "why": "unknown event"}
        if event.status != "PENDING":
            return {"event": event_id, "applied": False, "why": f"already {event.status}"}
        now = utcnow()
        summary: dict[str, Any] = {"event": event_id, "applied": True, "succeeded": 0, "failed": 0}
        remaining = self._apply_licences(conn, name, event_id, outcome, summary, now)
        remaining += self._apply_users(conn, name, event_id, outcome, summary, now)
        failures = json.loads(event.failures) if event.failures else []
        failures += [f.as_json() for f in outcome.failures]
        values: dict[str, Any] = {"failures": json.dumps(failures) if failures else None}
        if outcome.num_requested is not None:
            values["num_requested"] = outcome.num_requested
        # Apple's count when it gives one; else what notifications have reported so far.
        completed = outcome.num_completed
        if completed is None:
            completed = (event.num_completed or 0) + summary["succeeded"]
        values["num_completed"] = completed
        if source == "status":
            values["last_polled_at"] = now
        resolved = summary["succeeded"] + summary["failed"]
        # A notification carries some items; once none is left waiting, the event is over.
        if outcome.final is not None or (remaining == 0 and resolved):
            values.update(
                status=outcome.final or ("COMPLETE" if completed else "FAILED"),
                completed_at=now,
                completed_by=source,
            )
        conn.execute(update(vpp_events).where(e.location == name, e.event_id == event_id).values(**values))
        summary["status"] = values.get("status", "PENDING")
        return summary

    @staticmethod
    def _verdict(outcome: Outcome, matches: Any, explicit: bool) -> tuple[str | None, Failure | None]:
        failed = next((f for f in outcome.failures if matches(f)), None)
        if failed is not None:
            return "failed", failed
        if explicit or outcome.final == "COMPLETE":
            return "ok", None
        if outcome.final == "FAILED":
            return "failed", Failure(None, "Apple reported the event FAILED")
        return None, None  # not known yet

    def _apply_licences(
        self,
        conn: Connection,
        name: str,
        event_id: str,
        outcome: Outcome,
        summary: dict[str, Any],
        now: datetime,
    ) -> int:
        lc = vpp_licences.c
        a = vpp_assets.c
        rows = conn.execute(
            select(vpp_licences).where(lc.location == name, lc.event_id == event_id, lc.status.in_(IN_FLIGHT))
        ).all()
        remaining = 0
        for row in rows:
            explicit = (row.adam_id, row.subject_type, row.subject) in outcome.succeeded or (
                row.subject_type == "user" and row.subject in outcome.succeeded_users
            )
            verdict, failure = self._verdict(
                outcome, lambda f, r=row: f.covers(r.adam_id, r.subject_type, r.subject), explicit
            )
            if verdict is None:
                remaining += 1
                continue
            summary["succeeded" if verdict == "ok" else "failed"] += 1
            asset = and_(a.location == name, a.adam_id == row.adam_id, a.pricing_param == row.pricing_param)
            if row.status == "associating" and verdict == "ok":
                conn.execute(
                    update(vpp_licences)
                    .where(lc.id == row.id)
                    .values(
                        status="assigned",
                        assigned_at=now,
                        updated_at=now,
                        error_number=None,
                        error_message=None,
                    )
                )
                conn.execute(
                    update(vpp_assets)
                    .where(asset)
                    .values(
                        assigned_count=_clamped(a.assigned_count, 1),
                        available_count=_clamped(a.available_count, -1),
                    )
                )
            elif row.status == "associating":
                assert failure is not None
                conn.execute(
                    update(vpp_licences)
                    .where(lc.id == row.id)
                    .values(
                        status="failed",
                        error_number=failure.number,
                        error_message=failure.text,
                        updated_at=now,
                    )
                )
            elif verdict == "ok":  # released
                conn.execute(delete(vpp_licences).where(lc.id == row.id))
                conn.execute(
                    update(vpp_assets)
                    .where(asset)
                    .values(
                        assigned_count=_clamped(a.assigned_count, -1),
                        available_count=_clamped(a.available_count, 1),
                    )
                )
            else:  # the release failed: the licence is still assigned
                assert failure is not None
                conn.execute(
                    update(vpp_licences)
                    .where(lc.id == row.id)
                    .values(
                        status="assigned",
                        error_number=failure.number,
                        error_message=f"releasing it failed: {failure.text}",
                        updated_at=now,
                    )
                )
        return remaining

    def _apply_users(
        self,
        conn: Connection,
        name: str,
        event_id: str,
        outcome: Outcome,
        summary: dict[str, Any],
        now: datetime,
    ) -> int:
        u = vpp_users.c
        rows = conn.execute(
            select(vpp_users).where(
                u.location == name,
                u.event_id == event_id,
                or_(u.status == "creating", u.pending.is_not(None)),
            )
        ).all()
        remaining = 0
        for row in rows:
            verdict, failure = self._verdict(
                outcome,
                lambda f, r=row: f.covers_user(r.client_user_id),
                row.client_user_id in outcome.succeeded_users,
            )
            if verdict is None:
                remaining += 1
                continue
            summary["succeeded" if verdict == "ok" else "failed"] += 1
            fields = {
                k: v
                for k, v in outcome.user_fields.get(row.client_user_id, {}).items()
                if k in ("invite_code", "id_hash")
            }
            values: dict[str, Any] = {"updated_at": now, "pending": None}
            pending = json.loads(row.pending) if row.pending else None
            if verdict == "failed":
                assert failure is not None
                values["error"] = failure.text
                if row.status == "creating":
                    values["status"] = "failed"
            elif row.status == "creating":
                told = outcome.user_fields.get(row.client_user_id, {}).get("status")
                values.update(
                    fields,
                    error=None,
                    status=told or ("Associated" if row.managed_apple_id else "Registered"),
                )
            elif pending and pending.get("action") == "retire":
                values.update(status="Retired", error=None)
            elif pending:
                values.update(fields, error=None)
                if "email" in pending:
                    values["email"] = pending["email"]
                if "managedAppleId" in pending:
                    values["managed_apple_id"] = pending["managedAppleId"]
            conn.execute(
                update(vpp_users)
                .where(u.location == name, u.client_user_id == row.client_user_id)
                .values(**values)
            )
        return remaining

    # -- counts for people --------------------------------------------------------------------

    def counts(self, name: str) -> dict[str, int]:
        with reading(self._engine) as conn:

            def count(table: Any, *where: Any) -> int:
                return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

            return {
                "assets": count(vpp_assets, vpp_assets.c.location == name),
                "users": count(vpp_users, vpp_users.c.location == name, vpp_users.c.status != "Retired"),
                "licences": count(
                    vpp_licences, vpp_licences.c.location == name, vpp_licences.c.status == "assigned"
                ),
                "pending_events": count(
                    vpp_events, vpp_events.c.location == name, vpp_events.c.status == "PENDING"
                ),
            }
