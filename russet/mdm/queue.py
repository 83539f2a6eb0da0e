"""The command queue: enqueueing, the device's report-and-next exchange, and status reads.

`exchange` is the hot path of the whole server (every PUT /mdm/connect): one SELECT that
checks the enrollment's bound identity and finds the next command at once, then at most one
transaction of writes. Command bodies are rendered once at enqueue time with a placeholder
UUID, so delivery is a byte substitution.

Commands that carry secrets (russet.commands.secrets: ClearPasscode's UnlockToken, a PIN, a
profile) have their body and the devices' answers sealed with the master key, bound to the
command and the delivery; other commands stay in the clear, so the hot path pays nothing for them.
"""

from __future__ import annotations

import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, func, insert, literal_column, or_, select, update

from russet.mdm.enrollments import ACTIVE_STATUSES, existing_ids, merge_inventory
from russet.mdm.tables import command_queue, commands, enrollments
from russet.storage.db import HotRead, as_utc, reading, utcnow
from russet.storage.secretbox import SecretBox, is_sealed

UUID_PLACEHOLDER = "00000000-0000-0000-0000-00000000FEED"
TERMINAL_STATUSES = ("acknowledged", "error", "format_error", "cancelled", "undeliverable")
REPORT_STATUS = {
    "Acknowledged": "acknowledged",
    "Error": "error",
    "CommandFormatError": "format_error",
    "NotNow": "notnow",
}

# A command handed out and not answered is handed out again on a later connect (the device lost
# it), but not within this time: a second connect then is a concurrent one, and must not get the
# same command. The APNs sweep re-pushes devices holding such a command (russet.apns.state).
RESEND_AFTER = timedelta(seconds=60)

# The enqueue's insert, built once (building it cost SQLAlchemy more CPU than running it).
_NEW_COMMAND = insert(commands).returning(commands.c.id)

# Turns an acknowledged result into inventory: (request_type, report) -> (sections, summary) | None.
InventoryHook = Callable[[str, dict[str, Any]], tuple[dict[str, Any], dict[str, Any]] | None]


def _status_in(column: Any, statuses: tuple[str, ...]) -> Any:
    """`column IN ('a', 'b')` with the constants inline: a plain `in_()` makes an "expanding"
    parameter that SQLAlchemy re-processes on every execution of the hot-path statements."""
    return column.in_([literal_column(f"'{s}'") for s in statuses])


class UnknownDevices(ValueError):
    def __init__(self, missing: list[str]) -> None:
        super().__init__("no enrollment with id " + ", ".join(sorted(missing)))
        self.missing = missing


@dataclass(frozen=True, slots=True)
class Report:
    """One device report: its status, the command it answers, and the raw plist bytes."""

    status: str  # Idle | Acknowledged | Error | CommandFormatError | NotNow
    command_uuid: str | None
    raw: bytes
    parsed: dict[str, Any]
    error_summary: str | None = None


@dataclass(frozen=True, slots=True)
class Exchange:
    """What the connect handler needs back."""

    known: bool
    identity_fp: str | None = None
    body: bytes | None = None  # next command plist, or None for an empty 200
    stored: bool = False  # whether the report changed a command's state
    forgotten: bool = False  # an admin forgot the device: tell it so (ErrorUnrecognizedDevice)
    reported_type: str | None = None  # RequestType of the command the stored report answered
    inventory: bool = False  # the stored answer brought inventory (sections merged)


def _new_uuid() -> str:
    return str(uuidlib.uuid4()).upper()


def body_purpose(command_id: int) -> str:
    return f"command-body:{command_id}"


def result_purpose(command_uuid: str) -> str:
    return f"command-result:{command_uuid}"


class CommandQueue:
    def __init__(
        self,
        engine: Engine,
        max_attempts: int,
        inventory_hook: InventoryHook | None = None,
        resend_after: timedelta = RESEND_AFTER,
        *,
        box: SecretBox,
        is_secret: Callable[[str], bool],
    ) -> None:
        self._engine = engine
        self._max_attempts = max_attempts
        self._resend_after = resend_after
        self._inventory_hook = inventory_hook
        self._box = box
        self._is_secret = is_secret
        self._next_queries = {flag: HotRead(self._build_next_query(flag)) for flag in (True, False)}

    # -- sealing (only commands that carry secrets) ---------------------------------------------

    def _deliverable(self, command_id: int, template: bytes, command_uuid: str) -> bytes:
        if is_sealed(template):
            template = self._box.open(template, body_purpose(command_id))
        return template.replace(UUID_PLACEHOLDER.encode(), command_uuid.encode())

    def _result_to_store(self, request_type: str | None, command_uuid: str, raw: bytes) -> bytes:
        if request_type is not None and self._is_secret(request_type):
            return self._box.seal(raw, result_purpose(command_uuid))
        return raw

    def _stored_result(self, command_uuid: str, stored: bytes | None) -> bytes | None:
        if stored is not None and is_sealed(stored):
            return self._box.open(stored, result_purpose(command_uuid))
        return stored

    # -- enqueue ----------------------------------------------------------------------------

    def enqueue(
        self,
        request_type: str,
        body_template: bytes,
        enrollment_ids: list[str],
        created_by: str | None,
        in_transaction: Callable[[Connection, list[str]], None] | None = None,
    ) -> dict[str, str]:
        """Queue one command for many enrollments; returns enrollment id -> CommandUUID.

        `in_transaction(conn, ids)` runs inside the enqueue's transaction (e.g. push requests).
        """
        ids = list(dict.fromkeys(enrollment_ids))
        now = utcnow()
        secret = self._is_secret(request_type)
        with self._engine.begin() as conn:
            found = existing_ids(conn, ids)
            missing = [i for i in ids if i not in found]
            if missing:
                raise UnknownDevices(missing)
            command_id = conn.execute(
                _NEW_COMMAND,
                {
                    "request_type": request_type,
                    "body_template": b"" if secret else body_template,
                    "created_by": created_by,
                    "created_at": now,
                },
            ).scalar_one()
            if secret:  # sealed bound to the command's id, known only now
                sealed = self._box.seal(body_template, body_purpose(command_id))
                conn.execute(update(commands).where(commands.c.id == command_id).values(body_template=sealed))
            uuids = {eid: _new_uuid() for eid in ids}
            conn.execute(
                insert(command_queue),
                [
                    {
                        "command_uuid": u,
                        "command_id": command_id,
                        "enrollment_id": eid,
                        "status": "queued",
                        "attempts": 0,
                        "notnow_count": 0,
                        "created_at": now,
                    }
                    for eid, u in uuids.items()
                ],
            )
            if in_transaction is not None:
                in_transaction(conn, ids)
        return uuids

    # -- the device exchange ------------------------------------------------------------------

    @staticmethod
    def _build_next_query(include_notnow: bool) -> Any:
        # Core aliases (sqlalchemy.orm's `aliased` would load the ORM, ~6 MB per worker, for this).
        q2 = command_queue.alias("q2")
        rq = command_queue.alias("rq")
        rc = commands.alias("rc")
        next_id = (
            select(q2.c.id)
            .where(
                q2.c.enrollment_id == enrollments.c.id,
                # Within a session, NotNow commands wait for the next one (Apple §b.4); an Idle
                # report opens a session, so that is when they are offered again.
                _status_in(q2.c.status, ACTIVE_STATUSES if include_notnow else ("queued", "sent")),
                q2.c.command_uuid != bindparam("reported_uuid"),
                # A command handed out moments ago is not handed out again: that is a concurrent
                # connect (or a racing worker), not a device that lost it (see RESEND_AFTER).
                or_(q2.c.status != literal_column("'sent'"), q2.c.sent_at < bindparam("resend_before")),
            )
            .order_by(q2.c.id)
            .limit(1)
            .scalar_subquery()
        )
        reported = (
            select(rq.c.status, rc.c.request_type)
            .join(rc, rc.c.id == rq.c.command_id)
            .where(rq.c.command_uuid == bindparam("reported_uuid"), rq.c.enrollment_id == enrollments.c.id)
        )
        return (
            select(
                enrollments.c.identity_fp,
                enrollments.c.forgotten_at,
                command_queue.c.id.label("next_id"),
                command_queue.c.status.label("next_status"),
                command_queue.c.command_uuid.label("next_uuid"),
                command_queue.c.command_id.label("next_command_id"),
                command_queue.c.attempts.label("next_attempts"),
                commands.c.body_template,
                reported.with_only_columns(rq.c.status).scalar_subquery().label("reported_status"),
                reported.with_only_columns(rc.c.request_type).scalar_subquery().label("reported_type"),
            )
            .select_from(enrollments)
            .outerjoin(command_queue, and_(command_queue.c.id == next_id, enrollments.c.enabled))
            .outerjoin(commands, commands.c.id == command_queue.c.command_id)
            .where(enrollments.c.id == bindparam("eid"))
        )

    def _next_params(self, enrollment_id: str, reported_uuid: str, now: datetime) -> dict[str, Any]:
        """The bind parameters of `_next_queries` (the read `quiet` and `exchange` share)."""
        resend_before = now - self._resend_after
        return {"eid": enrollment_id, "reported_uuid": reported_uuid, "resend_before": resend_before}

    def quiet(self, enrollment_id: str, identity_fp: str) -> bool:
        """Whether an Idle report from `identity_fp` would change nothing here: the enrollment is
        known, bound to that identity, not forgotten, and has nothing to hand out. It is the read
        `exchange` starts with and nothing more: on False, `exchange` reads again and decides."""
        row = self._next_queries[True].first(self._engine, self._next_params(enrollment_id, "", utcnow()))
        return (
            row is not None
            and row.identity_fp == identity_fp
            and row.forgotten_at is None
            and row.next_id is None
        )

    def exchange(self, enrollment_id: str, identity_fp: str, report: Report) -> Exchange:
        """Apply a device report (if it carries one) and hand out the next command.

        The caller must refuse the request when `known` is False or `identity_fp` differs;
        nothing is written in those cases.
        """
        reported_uuid = report.command_uuid if report.status != "Idle" and report.command_uuid else ""
        now = utcnow()
        params = self._next_params(enrollment_id, reported_uuid, now)
        next_query = self._next_queries[report.status == "Idle"]
        # Read without the write lock: an Idle with nothing queued (the commonest request) ends here.
        row = next_query.first(self._engine, params)
        if row is None:
            return Exchange(known=False)
        if row.identity_fp != identity_fp:
            return Exchange(known=True, identity_fp=row.identity_fp)
        if row.forgotten_at is not None:
            return Exchange(known=True, identity_fp=identity_fp, forgotten=True)
        store = bool(reported_uuid) and row.reported_status in ACTIVE_STATUSES
        if not store and row.next_id is None:
            return Exchange(known=True, identity_fp=identity_fp)
        # Inventory is worked out before the write transaction, to hold the lock briefly.
        inventory = None
        if store and report.status == "Acknowledged" and self._inventory_hook is not None:
            inventory = self._inventory_hook(row.reported_type, report.parsed)
        body = None
        reported_type = row.reported_type
        with self._engine.begin() as conn:
            if store:
                written = conn.execute(
                    _STORE_NOTNOW if report.status == "NotNow" else _STORE_REPORT,
                    {
                        "b_uuid": reported_uuid,
                        "b_eid": enrollment_id,
                        "b_status": REPORT_STATUS[report.status],
                        "b_result": self._result_to_store(row.reported_type, reported_uuid, report.raw),
                        "b_now": now,
                        "b_reason": report.error_summary,
                    },
                )
                store = written.rowcount == 1  # not if a racing report of the same command got there first
                if store and inventory is not None:
                    merge_inventory(conn, enrollment_id, *inventory)
            while row is not None and row.next_id is not None:
                # Each write only matches the command as it was read (status and attempts): of
                # two connects racing for it, one wins and the other reads the next command. On
                # PostgreSQL the loser's UPDATE waits for the winner and re-checks its WHERE.
                seen = {"b_id": row.next_id, "b_now": now, "b_status": row.next_status}
                seen["b_attempts"] = row.next_attempts
                if row.next_attempts >= self._max_attempts:
                    reason = f"handed to the device {self._max_attempts} times without an answer"
                    conn.execute(_GIVE_UP, {**seen, "b_reason": reason})
                elif conn.execute(_MARK_SENT, seen).rowcount == 1:
                    body = self._deliverable(row.next_command_id, row.body_template, row.next_uuid)
                    break
                row = conn.execute(next_query.statement, params).first()
        return Exchange(
            known=True,
            identity_fp=identity_fp,
            body=body,
            stored=store,
            reported_type=reported_type if store else None,
            inventory=store and inventory is not None,
        )

    # -- reads --------------------------------------------------------------------------------

    def _status_dict(self, row: Any) -> dict[str, Any]:
        data = dict(row._mapping)
        for key in ("created_at", "sent_at", "reported_at"):
            data[key] = as_utc(data[key])
        data["result"] = self._stored_result(data["command_uuid"], data["result"])
        return data

    def counts_by_status(self) -> dict[str, int]:
        """How many deliveries are in each status, for the metrics' gauges. One GROUP BY over the
        queue: a scan of it, which a scrape every 15-60 s affords up to millions of rows."""
        q = command_queue.c
        query = select(q.status, func.count()).group_by(q.status)
        with reading(self._engine) as conn:
            return {status: n for status, n in conn.execute(query)}

    def by_uuid(self, command_uuid: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(_status_query().where(command_queue.c.command_uuid == command_uuid)).first()
        return None if row is None else self._status_dict(row)

    def for_enrollment(self, enrollment_id: str, limit: int = 100) -> list[dict[str, Any]]:
        query = _status_query().where(command_queue.c.enrollment_id == enrollment_id)
        with reading(self._engine) as conn:
            rows = conn.execute(query.order_by(command_queue.c.id.desc()).limit(limit)).all()
        return [self._status_dict(r) for r in rows]

    def siblings(self, command_uuid: str) -> list[dict[str, Any]]:
        """Every delivery of the same command (one per device it was sent to)."""
        parent = select(command_queue.c.command_id).where(command_queue.c.command_uuid == command_uuid)
        with reading(self._engine) as conn:
            rows = conn.execute(
                _status_query()
                .where(command_queue.c.command_id == parent.scalar_subquery())
                .order_by(command_queue.c.id)
            ).all()
        return [self._status_dict(r) for r in rows]


# The exchange's writes, built once (SQLAlchemy otherwise rebuilds and re-keys them per request).
# Each only touches a command still active, so a report racing another changes nothing twice.
_q = command_queue.c
_ACTIVE_REPORTED = and_(
    _q.command_uuid == bindparam("b_uuid"),
    _q.enrollment_id == bindparam("b_eid"),
    _status_in(_q.status, ACTIVE_STATUSES),
)
_STORE_REPORT = (
    update(command_queue)
    .where(_ACTIVE_REPORTED)
    .values(
        status=bindparam("b_status"),
        result=bindparam("b_result"),
        reported_at=bindparam("b_now"),
        status_reason=bindparam("b_reason"),
    )
)
# A NotNow is an answer, not a lost delivery: it does not count towards giving up.
_STORE_NOTNOW = _STORE_REPORT.values(notnow_count=_q.notnow_count + 1, attempts=0)
_AS_READ = and_(
    _q.id == bindparam("b_id"), _q.status == bindparam("b_status"), _q.attempts == bindparam("b_attempts")
)
_MARK_SENT = (
    update(command_queue)
    .where(_AS_READ)
    .values(status="sent", attempts=_q.attempts + 1, sent_at=bindparam("b_now"))
)
_GIVE_UP = (
    update(command_queue)
    .where(_AS_READ)
    .values(status="undeliverable", reported_at=bindparam("b_now"), status_reason=bindparam("b_reason"))
)


def _status_query() -> Any:
    return select(
        command_queue.c.command_uuid,
        command_queue.c.enrollment_id,
        command_queue.c.status,
        command_queue.c.status_reason,
        command_queue.c.attempts,
        command_queue.c.notnow_count,
        command_queue.c.result,
        command_queue.c.created_at,
        command_queue.c.sent_at,
        command_queue.c.reported_at,
        commands.c.request_type,
        commands.c.created_by,
    ).join(commands, commands.c.id == command_queue.c.command_id)
