"""Push state per enrollment (table `apns_push`): who wants a push, what APNs last answered.

Requests are rows with `requested_at` set, written in the transaction that queues a command, so
a command queued by another process is pushed by the running server. Workers take requests with
one UPDATE … RETURNING that clears the flag, so several server workers never push the same
request twice. A token APNs called dead (410, BadDeviceToken) is skipped until the device sends
a TokenUpdate after that moment (`enrollments.token_updated_at > dead_at`): comparing the two
times needs no hook in the check-in path.

Push economy: one push per device until it connects. While a push is outstanding (claimed and
in flight, `outcome = 'pushing'`; or accepted by APNs, `delivered`, and the device has not
connected since, `last_seen_at < last_push_at`), a new request is kept but not claimed: the
device will fetch every queued command when the outstanding push brings it. It becomes
claimable when the device connects (its last-seen time passes the push) or when the sweep's
re-push is due (`next_sweep_at`; APNs keeps an undelivered push 24 h, longer than the sweep's
12 h cap, so a second push before then would only replace the first). Once the device has
connected, a request older than that connection is dropped unclaimed if no command is still
`queued` for the enrollment (the connection fetched them); any other is pushed. The decision is
taken in the claim's one UPDATE, so concurrent requests and workers make one push between them.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    and_,
    bindparam,
    case,
    exists,
    func,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from russet.apns.certificate import PUSH_KIND
from russet.apns.tables import apns_push
from russet.mdm.queue import RESEND_AFTER
from russet.mdm.tables import command_queue, enrollments
from russet.storage import bulk
from russet.storage.db import as_utc, reading, utcnow
from russet.storage.secretbox import SecretError
from russet.storage.tables import certificates

log = logging.getLogger("russet.apns")

STOP_SETTING = "apns.stopped"  # set when APNs refuses the certificate: {"fingerprint", "status", ...}
ACTIVE = ("queued", "sent", "notnow")
PUSHING = "pushing"  # the outcome of a claimed request until its push's outcome is written
_p = apns_push.c
_e = enrollments.c

# The device connected after its last push (last-seen times are the device's request times,
# written by the MDM core's batched flusher, so this turns true within a flush of the connect).
_SEEN_SINCE_PUSH = exists().where(_e.id == _p.enrollment_id, _e.last_seen_at >= _p.last_push_at)
# A held request that the device's connection already answered: the device connected after the
# request, and nothing is left `queued` for it (a command it missed would still be).
_ANSWERED = and_(
    _p.outcome == "delivered",
    exists().where(
        _e.id == _p.enrollment_id, _e.last_seen_at >= _p.last_push_at, _e.last_seen_at > _p.requested_at
    ),
    ~exists().where(command_queue.c.enrollment_id == _p.enrollment_id, command_queue.c.status == "queued"),
)


def _not_outstanding(now: Any) -> Any:
    """No push outstanding for the row at `now`: none in flight, or its re-push is due, or the
    device connected since it was delivered (see the module's docstring)."""
    return or_(
        _p.outcome.is_(None),
        _p.outcome.not_in((PUSHING, "delivered")),
        _p.next_sweep_at.is_(None),
        _p.next_sweep_at <= now,
        and_(_p.outcome == "delivered", _SEEN_SINCE_PUSH),
    )


@dataclass(slots=True)
class Target:
    """One enrollment to push, with what the push needs and what its state says."""

    enrollment_id: str
    device_id: str
    token: str | None
    magic: str | None
    enabled: bool
    token_dead: bool  # APNs called the token dead and no TokenUpdate came since
    sweep_count: int
    attempts: int


# What a push did to `dead_at`: left it, cleared it (delivered), or set it to now (dead token).
KEEP_DEAD, CLEAR_DEAD, SET_DEAD = 0, 1, 2


class Outcome(NamedTuple):
    """One enrollment's outcome, as `PushStateStore.write` stores it."""

    enrollment_id: str
    outcome: str  # delivered | token_dead | stopped | retrying | failed | no_token | ...
    reason: str | None
    pushed: bool = False  # a request went to APNs (status, apns-id, attempts... are then set)
    status: int | None = None
    apns_id: str | None = None
    attempts: int = 0
    retry_at: datetime | None = None
    dead: int = KEEP_DEAD
    next_sweep: datetime | None = None
    request: bool = False  # ask for a push again (retry, certificate refused, no certificate)


def is_dead(dead_at: datetime | None, token_updated_at: datetime | None) -> bool:
    if dead_at is None:
        return False
    updated = as_utc(token_updated_at)
    return updated is None or updated <= as_utc(dead_at)  # type: ignore[operator]


def _insert(dialect: str) -> Any:
    return (postgresql if dialect == "postgresql" else sqlite).insert(apns_push)


def request_pushes(conn: Connection, enrollment_ids: Iterable[str], now: datetime | None = None) -> None:
    """Ask for a push to each enrollment, inside the caller's transaction (coalesced: one row
    per enrollment however many commands were queued). Resets the sweep's backoff."""
    ids = list(dict.fromkeys(enrollment_ids))
    if not ids:
        return
    when = now or utcnow()
    conn.execute(
        _request_upsert(conn.dialect.name),
        [{"enrollment_id": i, "requested_at": when, "sweep_count": 0, "attempts": 0} for i in ids],
    )


@functools.cache
def _request_upsert(dialect: str) -> Any:
    """`request_pushes`' upsert, built once per dialect (every queued command writes one; building
    it, `excluded` included, cost more CPU than running it)."""
    stmt = _insert(dialect)
    return stmt.on_conflict_do_update(
        index_elements=["enrollment_id"],
        set_={"requested_at": stmt.excluded.requested_at, "sweep_count": 0},
    )


def _ensure_rows(conn: Connection, ids: Sequence[str]) -> None:
    if ids:
        stmt = _insert(conn.dialect.name).on_conflict_do_nothing(index_elements=["enrollment_id"])
        conn.execute(stmt, [{"enrollment_id": i, "sweep_count": 0, "attempts": 0} for i in ids])


# The dead-token test in SQL (both backends compare stored times right), so no time is parsed
# per claimed row.
_TOKEN_DEAD = and_(
    _p.dead_at.is_not(None), or_(_e.token_updated_at.is_(None), _e.token_updated_at <= _p.dead_at)
)
_TARGET_COLUMNS = (
    _e.id,
    _e.device_id,
    _e.sealed_push,
    _e.enabled,
    case((_TOKEN_DEAD, 1), else_=0).label("token_dead"),
    _p.sweep_count,
    _p.attempts,
)


def _write_statements(dialect: str) -> tuple[Any, Any]:
    """UPDATE … FROM the batch's outcomes as one JSON parameter (see russet.storage.bulk): one
    statement per batch whatever its size. `now` is bound once."""
    pushed = bulk.json_rows(
        dialect,
        [
            ("eid", bulk.TEXT),
            ("outcome", bulk.TEXT),
            ("status", bulk.INT),
            ("reason", bulk.TEXT),
            ("apns_id", bulk.TEXT),
            ("attempts", bulk.INT),
            ("retry_at", bulk.TIME),
            ("dead", bulk.INT),
            ("next_sweep", bulk.TIME),
            ("request", bulk.TIME),
        ],
    )
    now = bindparam("now", type_=DateTime(timezone=True))
    c = pushed.c
    write_pushed = (
        update(apns_push)
        .where(_p.enrollment_id == c.eid)
        .values(
            outcome=c.outcome,
            outcome_at=now,
            last_push_at=now,
            last_status=c.status,
            last_reason=c.reason,
            last_apns_id=c.apns_id,
            attempts=c.attempts,
            retry_at=c.retry_at,
            dead_at=case((c.dead == KEEP_DEAD, _p.dead_at), (c.dead == CLEAR_DEAD, null()), else_=now),
            next_sweep_at=c.next_sweep,
            # A request made while this push was in flight stays; `request` re-asks (retry, stop).
            requested_at=func.coalesce(_p.requested_at, c.request),
        )
    )
    skipped = bulk.json_rows(
        dialect,
        [("eid", bulk.TEXT), ("outcome", bulk.TEXT), ("reason", bulk.TEXT), ("request", bulk.TIME)],
    )
    k = skipped.c
    write_skipped = (
        update(apns_push)
        .where(_p.enrollment_id == k.eid)
        .values(
            outcome=k.outcome,
            outcome_at=now,
            last_reason=k.reason,
            next_sweep_at=None,
            requested_at=func.coalesce(_p.requested_at, k.request),
        )
    )
    return write_pushed, write_skipped


_WRITES = {dialect: _write_statements(dialect) for dialect in ("sqlite", "postgresql")}
_IDS = {dialect: bulk.json_rows(dialect, [("id", bulk.TEXT)], "ids") for dialect in ("sqlite", "postgresql")}


# Opens an enrollment's sealed push credentials: (enrollment id, sealed) -> (token hex, PushMagic).
OpenPush = Callable[[str, bytes], tuple[str, str]]


class PushStateStore:
    def __init__(self, engine: Engine, open_push: OpenPush) -> None:
        self._engine = engine
        self._open_push = open_push

    # -- requests and claims --------------------------------------------------------------------

    def request(self, enrollment_ids: Iterable[str]) -> None:
        with self._engine.begin() as conn:
            request_pushes(conn, enrollment_ids)

    def claim(self, limit: int, now: datetime, lease: timedelta) -> list[Target]:
        """Take up to `limit` due requests for this worker (atomically: no other worker gets them).

        A request waits while a push is outstanding for its device, and one the device's
        connection already answered is cleared without a push (push economy, see the module's
        docstring). A claimed row is `pushing` until its outcome is written, its sweep time a
        lease ahead, so a worker that dies mid-push leaves its devices to the sweep rather than
        forgotten; the conditions are repeated in the UPDATE so that PostgreSQL re-checks them
        on a row another transaction changed meanwhile.
        """
        claimable = and_(
            _p.requested_at.is_not(None),
            or_(_p.retry_at.is_(None), _p.retry_at <= now),
            _not_outstanding(now),
        )
        with self._engine.begin() as conn:
            due = select(_p.enrollment_id).where(claimable).order_by(_p.requested_at).limit(limit)
            if conn.dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            answered = _ANSWERED
            rows = conn.execute(
                update(apns_push)
                .where(_p.enrollment_id.in_(due.scalar_subquery()), claimable)
                .values(
                    requested_at=None,
                    outcome=case((answered, _p.outcome), else_=PUSHING),
                    next_sweep_at=case((answered, _p.next_sweep_at), else_=now + lease),
                )
                .returning(_p.enrollment_id, _p.outcome)
            ).all()
            ids = [r[0] for r in rows if r[1] == PUSHING]
            if not ids:
                return []
            rows = self._target_rows(conn, ids)
        return self._targets(rows)  # decrypted after the transaction, which holds the write lock

    @staticmethod
    def _target_rows(conn: Connection, ids: Sequence[str]) -> Sequence[Any]:
        if not ids:
            return []
        listed = _IDS[conn.dialect.name]
        return conn.execute(
            select(*_TARGET_COLUMNS)
            .select_from(enrollments.join(apns_push, _p.enrollment_id == _e.id))
            .where(_e.id.in_(select(listed.c.id))),
            {"ids": bulk.encode([(i,) for i in ids])},
        ).all()

    def _targets(self, rows: Sequence[Any]) -> list[Target]:
        """Targets with their push credentials opened; one that cannot be opened (tampered, or
        sealed under another master key) is left without, so its push is skipped, not the batch."""
        open_push = self._open_push
        targets = []
        unreadable = 0
        for r in rows:
            token = magic = None
            if r[2] is not None:
                try:
                    token, magic = open_push(r[0], r[2])
                except SecretError:
                    unreadable += 1
            targets.append(Target(r[0], r[1], token, magic, bool(r[3]), bool(r[4]), r[5] or 0, r[6] or 0))
        if unreadable:
            log.error("%d push tokens could not be decrypted (wrong master key or tampered rows)", unreadable)
        return targets

    def targets(self, ids: Sequence[str]) -> list[Target]:
        """The named enrollments as push targets (for pushes on demand); unknown ids are left out."""
        with self._engine.begin() as conn:
            known = list(conn.execute(select(_e.id).where(_e.id.in_(ids))).scalars())
            _ensure_rows(conn, known)
            rows = self._target_rows(conn, known)
        return self._targets(rows)

    def write(self, outcomes: Sequence[Outcome], now: datetime) -> None:
        """Record outcomes, in one transaction (one statement per kind: pushed, skipped)."""
        if not outcomes:
            return
        with self._engine.begin() as conn:
            dialect = conn.dialect.name
            write_pushed, write_skipped = _WRITES[dialect]
            stamp = bulk.time_text(dialect, now)
            texts: dict[datetime, str | None] = {}

            def text(value: datetime | None) -> str | None:
                if value is None:
                    return None
                found = texts.get(value)
                if found is None:
                    found = texts[value] = bulk.time_text(dialect, value)
                return found

            pushed = [
                (
                    o.enrollment_id,
                    o.outcome,
                    o.status,
                    o.reason,
                    o.apns_id,
                    o.attempts,
                    text(o.retry_at),
                    o.dead,
                    text(o.next_sweep),
                    stamp if o.request else None,
                )
                for o in outcomes
                if o.pushed
            ]
            skipped = [
                (o.enrollment_id, o.outcome, o.reason, stamp if o.request else None)
                for o in outcomes
                if not o.pushed
            ]
            if pushed:
                conn.execute(write_pushed, {"rows": bulk.encode(pushed), "now": now})
            if skipped:
                conn.execute(write_skipped, {"rows": bulk.encode(skipped), "now": now})

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
        # A device that connected but left a command waiting will not come back by itself: it
        # answered NotNow (the device polls again only if NotNow was its session's last word),
        # or a command it was handed was never answered. Those are re-pushed on the sweep's
        # backoff even though the device was seen since the last push.
        stalled = exists().where(
            command_queue.c.enrollment_id == _e.id,
            or_(
                command_queue.c.status == "notnow",
                and_(command_queue.c.status == "sent", command_queue.c.sent_at < now - RESEND_AFTER),
            ),
        )
        query = (
            select(_e.id, _p.enrollment_id.label("has_row"))
            .select_from(enrollments.outerjoin(apns_push, _p.enrollment_id == _e.id))
            .where(
                _e.enabled,
                _e.sealed_push.is_not(None),
                pending,
                or_(
                    _p.enrollment_id.is_(None),
                    and_(_p.requested_at.is_(None), _p.next_sweep_at <= now, not_dead, or_(unseen, stalled)),
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
                stmt = _insert(conn.dialect.name).on_conflict_do_nothing(index_elements=["enrollment_id"])
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
        return push_certificate_fingerprint(self._engine)


def push_certificate_fingerprint(engine: Engine) -> str | None:
    """The installed push certificate's fingerprint (cheap: no key is decrypted)."""
    with reading(engine) as conn:
        return conn.execute(
            select(certificates.c.fingerprint)
            .where(certificates.c.kind == PUSH_KIND, certificates.c.sealed_key.is_not(None))
            .order_by(certificates.c.id.desc())
            .limit(1)
        ).scalar()


def _iso(value: datetime | None) -> str | None:
    value = as_utc(value)
    return None if value is None else value.isoformat()


def push_certificate_not_after(engine: Engine) -> datetime | None:
    """When the installed push certificate expires (its row's copy: no key is decrypted)."""
    with reading(engine) as conn:
        found = conn.execute(
            select(certificates.c.not_after)
            .where(certificates.c.kind == PUSH_KIND, certificates.c.sealed_key.is_not(None))
            .order_by(certificates.c.id.desc())
            .limit(1)
        ).scalar()
    return as_utc(found)
