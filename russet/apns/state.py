"""Push state per enrollment (table `apns_push`): who wants a push, what APNs last answered.

Requests are rows with `requested_at` set, written in the transaction that queues a command, so
a command queued by another process is pushed by the running server. Workers take requests with
one UPDATE … RETURNING that clears the flag, so several server workers never push the same
request twice. A token APNs called dead (410, BadDeviceToken) is skipped until the device sends
a TokenUpdate after that moment (`enrollments.token_updated_at > dead_at`): comparing the two
times needs no hook in the check-in path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from russet.apns.certificate import PUSH_KIND
from russet.storage.db import as_utc, reading, utcnow
from russet.storage.schema import apns_push, certificates, command_queue, enrollments

STOP_SETTING = "apns.stopped"  # set when APNs refuses the certificate: {"fingerprint", "status", ...}
ACTIVE = ("queued", "sent", "notnow")
_p = apns_push.c
_e = enrollments.c


@dataclass(slots=True)
class Target:
    """One enrollment to push, with what the push needs and what its state says."""

    enrollment_id: str
    device_id: str
    token: str | None
    magic: str | None
    enabled: bool
    token_updated_at: datetime | None
    dead_at: datetime | None
    sweep_count: int
    attempts: int

    @property
    def token_dead(self) -> bool:
        return is_dead(self.dead_at, self.token_updated_at)


def is_dead(dead_at: datetime | None, token_updated_at: datetime | None) -> bool:
    if dead_at is None:
        return False
    updated = as_utc(token_updated_at)
    return updated is None or updated <= as_utc(dead_at)  # type: ignore[operator]


def _insert(conn: Connection) -> Any:
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(apns_push)


def request_pushes(conn: Connection, enrollment_ids: Iterable[str], now: datetime | None = None) -> None:
    """Ask for a push to each enrollment, inside the caller's transaction (coalesced: one row
    per enrollment however many commands were queued). Resets the sweep's backoff."""
    ids = list(dict.fromkeys(enrollment_ids))
    if not ids:
        return
    when = now or utcnow()
    stmt = _insert(conn)
    stmt = stmt.on_conflict_do_update(
        index_elements=["enrollment_id"],
        set_={"requested_at": stmt.excluded.requested_at, "sweep_count": 0},
    )
    conn.execute(
        stmt, [{"enrollment_id": i, "requested_at": when, "sweep_count": 0, "attempts": 0} for i in ids]
    )


def _ensure_rows(conn: Connection, ids: Sequence[str]) -> None:
    if ids:
        stmt = _insert(conn).on_conflict_do_nothing(index_elements=["enrollment_id"])
        conn.execute(stmt, [{"enrollment_id": i, "sweep_count": 0, "attempts": 0} for i in ids])


_TARGET_COLUMNS = (
    _e.id,
    _e.device_id,
    _e.push_token,
    _e.push_magic,
    _e.enabled,
    _e.token_updated_at,
    _p.dead_at,
    _p.sweep_count,
    _p.attempts,
)

# One statement per outcome kind, run as executemany; built once.
_WRITE_PUSHED = (
    update(apns_push)
    .where(_p.enrollment_id == bindparam("b_eid"))
    .values(
        outcome=bindparam("b_outcome"),
        outcome_at=bindparam("b_now"),
        last_push_at=bindparam("b_now"),
        last_status=bindparam("b_status"),
        last_reason=bindparam("b_reason"),
        last_apns_id=bindparam("b_apns_id"),
        attempts=bindparam("b_attempts"),
        retry_at=bindparam("b_retry_at"),
        dead_at=bindparam("b_dead_at"),
        next_sweep_at=bindparam("b_next_sweep"),
        # A request made while this push was in flight stays; b_request re-asks (retry, stop).
        requested_at=func.coalesce(_p.requested_at, bindparam("b_request")),
    )
)
_WRITE_SKIPPED = (
    update(apns_push)
    .where(_p.enrollment_id == bindparam("b_eid"))
    .values(
        outcome=bindparam("b_outcome"),
        outcome_at=bindparam("b_now"),
        last_reason=bindparam("b_reason"),
        next_sweep_at=bindparam("b_next_sweep"),
        requested_at=func.coalesce(_p.requested_at, bindparam("b_request")),
    )
)


class PushStateStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- requests and claims --------------------------------------------------------------------

    def request(self, enrollment_ids: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            request_pushes(conn, enrollment_ids)

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Target]:
        """Take up to `limit` due requests for this worker (atomically: no other worker gets them).

        The sweep's next time is set a lease ahead, so a worker that dies mid-push leaves its
        devices to the sweep rather than forgotten.
        """
        with self._engine.begin() as conn:
            due = (
                select(_p.enrollment_id)
                .where(_p.requested_at.is_not(None), or_(_p.retry_at.is_(None), _p.retry_at <= now))
                .order_by(_p.requested_at)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            ids = list(
                conn.execute(
                    update(apns_push)
                    .where(_p.enrollment_id.in_(due.scalar_subquery()), _p.requested_at.is_not(None))
                    .values(requested_at=None, next_sweep_at=now + lease)
                    .returning(_p.enrollment_id)
                ).scalars()
            )
            if not ids:
                return []
            return self._targets(conn, ids)

    @staticmethod
    def _targets(conn: Connection, ids: Sequence[str]) -> list[Target]:
        out: list[Target] = []
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            rows = conn.execute(
                select(*_TARGET_COLUMNS)
                .select_from(enrollments.join(apns_push, _p.enrollment_id == _e.id))
                .where(_e.id.in_(chunk))
            )
            out.extend(
                Target(
                    r.id,
                    r.device_id,
                    r.push_token,
                    r.push_magic,
                    bool(r.enabled),
                    r.token_updated_at,
                    r.dead_at,
                    r.sweep_count or 0,
                    r.attempts or 0,
                )
                for r in rows
            )
        return out

    def targets(self, ids: Sequence[str]) -> list[Target]:
        """The named enrollments as push targets (for pushes on demand); unknown ids are left out."""
        with self._engine.begin() as conn:
            known = list(conn.execute(select(_e.id).where(_e.id.in_(ids))).scalars())
            _ensure_rows(conn, known)
            return self._targets(conn, known)

    def write(self, pushed: list[dict[str, Any]], skipped: list[dict[str, Any]]) -> None:
        """Record outcomes (parameter dicts for the statements above), in one transaction."""
        if not pushed and not skipped:
            return
        with self._engine.begin() as conn:
            if pushed:
                conn.execute(_WRITE_PUSHED, pushed)
            if skipped:
                conn.execute(_WRITE_SKIPPED, skipped)

    def next_retry(self) -> datetime | None:
        """The soonest time a request waiting in backoff becomes due."""
        with reading(self._engine) as conn:
            return as_utc(
                conn.execute(
                    select(func.min(_p.retry_at)).where(
                        _p.requested_at.is_not(None), _p.retry_at.is_not(None)
                    )
                ).scalar()
            )

    # -- the sweep --------------------------------------------------------------------------------

    def sweep(self, now: datetime, limit: int = 10000) -> int:
        """Request a push for devices with pending commands that have not connected since their
        last push and whose backoff has passed (or that were never pushed); returns how many."""
        pending = exists().where(command_queue.c.enrollment_id == _e.id, command_queue.c.status.in_(ACTIVE))
        not_dead = or_(
            _p.dead_at.is_(None), and_(_e.token_updated_at.is_not(None), _e.token_updated_at > _p.dead_at)
        )
        unseen = or_(_e.last_seen_at.is_(None), _p.last_push_at.is_(None), _e.last_seen_at < _p.last_push_at)
        query = (
            select(_e.id, _p.enrollment_id.label("has_row"))
            .select_from(enrollments.outerjoin(apns_push, _p.enrollment_id == _e.id))
            .where(
                _e.enabled,
                _e.push_token.is_not(None),
                pending,
                or_(
                    _p.enrollment_id.is_(None),
                    and_(_p.requested_at.is_(None), _p.next_sweep_at <= now, not_dead, unseen),
                ),
            )
            .limit(limit)
        )
        with self._engine.begin() as conn:
            rows = conn.execute(query).all()
            fresh = [r.id for r in rows if r.has_row is None]
            again = [r.id for r in rows if r.has_row is not None]
            count = 0
            if fresh:
                stmt = _insert(conn).on_conflict_do_nothing(index_elements=["enrollment_id"])
                conn.execute(
                    stmt,
                    [
                        {"enrollment_id": i, "requested_at": now, "sweep_count": 0, "attempts": 0}
                        for i in fresh
                    ],
                )
                count += len(fresh)
            for start in range(0, len(again), 5000):
                # Conditional, so two workers sweeping at once request each device only once.
                count += conn.execute(
                    update(apns_push)
                    .where(
                        _p.enrollment_id.in_(again[start : start + 5000]),
                        _p.requested_at.is_(None),
                        _p.next_sweep_at <= now,
                    )
                    .values(requested_at=now, sweep_count=_p.sweep_count + 1)
                ).rowcount
        return count

    # -- reads ---------------------------------------------------------------------------------------

    def device(self, enrollment_id: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(
                select(apns_push, _e.token_updated_at)
                .select_from(apns_push.join(enrollments, _e.id == _p.enrollment_id))
                .where(_p.enrollment_id == enrollment_id)
            ).first()
        if row is None:
            return None
        iso = _iso
        return {
            "outcome": row.outcome,
            "outcome_at": iso(row.outcome_at),
            "requested": row.requested_at is not None,
            "requested_at": iso(row.requested_at),
            "last_push_at": iso(row.last_push_at),
            "last_status": row.last_status,
            "last_reason": row.last_reason,
            "last_apns_id": row.last_apns_id,
            "token_dead": is_dead(row.dead_at, row.token_updated_at),
            "dead_since": iso(row.dead_at),
            "attempts": row.attempts,
            "retry_at": iso(row.retry_at),
            "sweep_count": row.sweep_count,
            "next_sweep_at": iso(row.next_sweep_at),
        }

    def counts(self) -> dict[str, Any]:
        with reading(self._engine) as conn:
            by_outcome = {
                r.outcome or "none": r.n
                for r in conn.execute(select(_p.outcome, func.count().label("n")).group_by(_p.outcome))
            }
            requested = conn.execute(select(func.count()).where(_p.requested_at.is_not(None))).scalar_one()
            dead = conn.execute(
                select(func.count())
                .select_from(apns_push.join(enrollments, _e.id == _p.enrollment_id))
                .where(
                    _p.dead_at.is_not(None),
                    or_(_e.token_updated_at.is_(None), _e.token_updated_at <= _p.dead_at),
                )
            ).scalar_one()
        return {"by_outcome": by_outcome, "requested": requested, "dead_tokens": dead}

    def certificate_fingerprint(self) -> str | None:
        """The installed push certificate's fingerprint (cheap: no key is decrypted)."""
        with reading(self._engine) as conn:
            return conn.execute(
                select(certificates.c.fingerprint)
                .where(certificates.c.kind == PUSH_KIND, certificates.c.sealed_key.is_not(None))
                .order_by(certificates.c.id.desc())
                .limit(1)
            ).scalar()


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()
