"""Every query on the escrow tables: sealed device secrets (pending and current), the record of
who was shown one, and the Activation Lock connection with its clear requests.

A secret is sealed under `escrow:<device>:<kind>` (`purpose`), the label key rotation rebuilds
from the row (`russet.storage.rotation`); its clear form exists only in memory, never in a row.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from russet.escrow.tables import (
    escrow_activation_lock,
    escrow_activation_lock_clears,
    escrow_secret_views,
    escrow_secrets,
)
from russet.kernel.errors import Conflict
from russet.storage.db import as_utc, reading, utcnow
from russet.storage.secretbox import SecretBox


def purpose(device_id: str, kind: str) -> str:
    """The label a device's secret of `kind` is sealed under (it binds the value to its row)."""
    return f"escrow:{device_id}:{kind}"


@dataclass(frozen=True)
class Secret:
    """One escrowed secret, opened: only services hold this, never a listing."""

    id: int
    device_id: str
    kind: str
    state: str  # pending | current
    value: str
    command_uuid: str | None
    created_at: datetime
    acknowledged_at: datetime | None
    verified_at: datetime | None


class EscrowStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    # -- secrets -------------------------------------------------------------------------------

    def _secret(self, row: Any) -> Secret:
        value = self._box.open(row.sealed_secret, purpose(row.device_id, row.kind)).decode()
        return Secret(
            id=row.id,
            device_id=row.device_id,
            kind=row.kind,
            state=row.state,
            value=value,
            command_uuid=row.command_uuid,
            created_at=as_utc(row.created_at),  # type: ignore[arg-type]
            acknowledged_at=as_utc(row.acknowledged_at),
            verified_at=as_utc(row.verified_at),
        )

    def get(self, device_id: str, kind: str, state: str = "current") -> Secret | None:
        s = escrow_secrets.c
        with reading(self._engine) as conn:
            row = conn.execute(
                select(escrow_secrets).where(s.device_id == device_id, s.kind == kind, s.state == state)
            ).first()
        return None if row is None else self._secret(row)

    def by_command(self, command_uuid: str) -> Secret | None:
        """The secret a command set, or whose verification it is (current or pending)."""
        with reading(self._engine) as conn:
            row = conn.execute(
                select(escrow_secrets).where(escrow_secrets.c.command_uuid == command_uuid)
            ).first()
        return None if row is None else self._secret(row)

    def add_pending(self, device_id: str, kind: str, value: str) -> int:
        """Keep a secret about to be sent to the device; Conflict when one is already in flight."""
        try:
            with self._engine.begin() as conn:
                inserted = conn.execute(
                    insert(escrow_secrets).values(
                        device_id=device_id,
                        kind=kind,
                        state="pending",
                        sealed_secret=self._box.seal(value.encode(), purpose(device_id, kind)),
                        created_at=utcnow(),
                    )
                ).inserted_primary_key
                assert inserted is not None
                return int(inserted[0])
        except IntegrityError:
            raise Conflict(
                f"a change of the {kind} of {device_id} is already waiting for the device's answer"
            ) from None

    def set_command(self, secret_id: int, command_uuid: str | None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(escrow_secrets)
                .where(escrow_secrets.c.id == secret_id)
                .values(command_uuid=command_uuid)
            )

    def drop(self, secret_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(escrow_secrets).where(escrow_secrets.c.id == secret_id))

    def promote(self, secret_id: int) -> bool:
        """The device acknowledged a pending secret: it replaces the current one (one transaction).
        False when the row is no longer pending (a duplicate answer)."""
        s = escrow_secrets.c
        with self._engine.begin() as conn:
            row = conn.execute(
                select(s.device_id, s.kind).where(s.id == secret_id, s.state == "pending")
            ).first()
            if row is None:
                return False
            conn.execute(
                delete(escrow_secrets).where(
                    s.device_id == row.device_id, s.kind == row.kind, s.state == "current"
                )
            )
            conn.execute(
                update(escrow_secrets)
                .where(s.id == secret_id)
                .values(state="current", acknowledged_at=utcnow(), command_uuid=None)
            )
        return True

    def put_current(self, device_id: str, kind: str, value: str) -> bool:
        """Escrow a secret the device reported (FileVault key, bypass code) as the current one;
        False when it is the one already kept."""
        s = escrow_secrets.c
        existing = self.get(device_id, kind)
        if existing is not None and existing.value == value:
            return False
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                delete(escrow_secrets).where(s.device_id == device_id, s.kind == kind, s.state == "current")
            )
            conn.execute(
                insert(escrow_secrets).values(
                    device_id=device_id,
                    kind=kind,
                    state="current",
                    sealed_secret=self._box.seal(value.encode(), purpose(device_id, kind)),
                    created_at=now,
                    acknowledged_at=now,
                )
            )
        return True

    def mark_verified(self, secret_id: int, verified: bool) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(escrow_secrets)
                .where(escrow_secrets.c.id == secret_id)
                .values(verified_at=utcnow() if verified else None, command_uuid=None)
            )

    def listing(self, device_id: str) -> list[dict[str, Any]]:
        """What is escrowed for a device: kinds, states and times, never a value."""
        s = escrow_secrets.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(s.kind, s.state, s.command_uuid, s.created_at, s.acknowledged_at, s.verified_at)
                .where(s.device_id == device_id)
                .order_by(s.kind, s.state)
            ).all()
        return [
            {
                "kind": r.kind,
                "state": r.state,
                "command_uuid": r.command_uuid,
                "created_at": _iso(r.created_at),
                "acknowledged_at": _iso(r.acknowledged_at),
                "verified_at": _iso(r.verified_at),
            }
            for r in rows
        ]

    # -- who was shown a secret ----------------------------------------------------------------

    def record_view(self, viewer: str, device_id: str, kind: str, reason: str) -> datetime:
        """Append a view to the record (rows are only ever inserted)."""
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                insert(escrow_secret_views).values(
                    at=now, viewer=viewer, device_id=device_id, kind=kind, reason=reason
                )
            )
        return now

    def views(self, device_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        v = escrow_secret_views.c
        query = select(escrow_secret_views).order_by(v.id.desc()).limit(limit)
        if device_id is not None:
            query = query.where(v.device_id == device_id)
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        return [
            {"at": _iso(r.at), "viewer": r.viewer, "device": r.device_id, "kind": r.kind, "reason": r.reason}
            for r in rows
        ]

    # -- the Activation Lock connection --------------------------------------------------------

    def add_connection(self, conn: Connection, name: str, org_name: str, guid: str) -> bool:
        """Create the connection's row in the caller's transaction (or update its org name);
        True when it is new."""
        t = escrow_activation_lock.c
        if conn.execute(select(t.name).where(t.name == name)).first() is not None:
            conn.execute(update(escrow_activation_lock).where(t.name == name).values(org_name=org_name))
            return False
        conn.execute(
            insert(escrow_activation_lock).values(
                name=name, org_name=org_name, guid=guid, created_at=utcnow()
            )
        )
        return True

    def begin(self) -> AbstractContextManager[Connection]:
        """A write transaction, for adding a connection together with the registry's row."""
        return self._engine.begin()

    def connection(self, name: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(escrow_activation_lock).where(escrow_activation_lock.c.name == name)
            ).first()
        return None if row is None else {"name": row.name, "org_name": row.org_name, "guid": row.guid}

    def connections(self) -> list[dict[str, Any]]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(escrow_activation_lock).order_by(escrow_activation_lock.c.name)).all()
        return [{"name": r.name, "org_name": r.org_name, "created_at": _iso(r.created_at)} for r in rows]

    def record_clear(
        self,
        connection: str,
        device_id: str,
        serial_number: str,
        requested_by: str,
        status: int | None,
        outcome: str,
    ) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                insert(escrow_activation_lock_clears).values(
                    connection=connection,
                    device_id=device_id,
                    serial_number=serial_number,
                    requested_by=requested_by,
                    at=utcnow(),
                    status=status,
                    outcome=outcome[:300],
                )
            )

    def clears(self, device_id: str) -> list[dict[str, Any]]:
        c = escrow_activation_lock_clears.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(escrow_activation_lock_clears).where(c.device_id == device_id).order_by(c.id)
            ).all()
        return [
            {
                "connection": r.connection,
                "at": _iso(r.at),
                "requested_by": r.requested_by,
                "status": r.status,
                "outcome": r.outcome,
            }
            for r in rows
        ]


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()
