"""The audit log: who did what, to what, when, from where, and how it ended; append-only and
hash-chained so that an edited, removed or inserted row shows.

Each row's hash is SHA-256 over its contents and the previous row's hash (`row_hash`); the first
row's previous hash is `GENESIS`. Writers first move the single `audit_head` row's sequence number
on, reading back the last hash (a row lock on PostgreSQL, the write lock on SQLite), then insert
and store the new hash, all in one transaction: concurrent writers queue, the chain never forks and
sequence numbers have no gaps.

Retention (`prune`) deletes rows older than the policy and, in the same transaction, appends an
anchor row (`audit.retention`) naming the last removed row and its hash, so the remaining chain
still verifies from its first row; the anchor is itself chained, so it cannot be forged afterwards.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, delete, func, insert, select, update

from russet.access.tables import audit_head, audit_log
from russet.storage.db import reading, utcnow

GENESIS = "0" * 64
RETENTION_ACTION = "audit.retention"
OUTCOMES = ("ok", "denied", "refused", "failed")
BATCH = 1000
_WIDTHS = {"actor": 300, "action": 300, "target": 1000, "source": 300}
MAX_DETAIL_CHARS = 4000
# An append's statements, built once (see AuditLog._claim).
_CLAIM = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + 1)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_INSERT = insert(audit_log)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1).values(hash=bindparam("new_hash"))


def stamp(when: datetime) -> str:
    """How a row's time is stored and hashed: ISO 8601 in UTC with microseconds (sortable)."""
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def outcome_of(status: int) -> str:
    """An HTTP status as an outcome: ok, denied (401/403), refused (other 4xx) or failed (5xx)."""
    if status < 400:
        return "ok"
    if status in (401, 403):
        return "denied"
    return "refused" if status < 500 else "failed"


@dataclass(frozen=True)
class AuditEntry:
    actor: str
    surface: str  # api | console | cli | task | system
    action: str
    target: str = ""
    source: str = ""
    outcome: str = "ok"
    status: int | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int  # rows checked
    broken_seq: int | None = None  # the first row found broken
    reason: str | None = None


def row_hash(row: Mapping[str, Any], prev_hash: str) -> str:
    material = [
        row["seq"],
        row["at"],
        row["actor"],
        row["surface"],
        row["action"],
        row["target"],
        row["source"],
        row["outcome"],
        row["status"],
        row["detail"],
        prev_hash,
    ]
    return hashlib.sha256(json.dumps(material, separators=(",", ":")).encode()).hexdigest()


def _clip(text: str, width: int) -> str:
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def _detail(detail: Mapping[str, Any]) -> str:
    text = json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_DETAIL_CHARS else json.dumps({"truncated": text[:MAX_DETAIL_CHARS]})


def _view(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    out["detail"] = json.loads(out["detail"])
    return out


class AuditLog:
    def __init__(self, engine: Engine, clock: Any = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    # -- writing ---------------------------------------------------------------------------------

    def record(self, entry: AuditEntry) -> int:
        """Append one row; its sequence number."""
        with self._engine.begin() as conn:
            return self._append(conn, entry)

    def _lock(self, conn: Connection) -> None:
        """Take the chain's lock (the head row) without appending (retention, before it reads)."""
        moved = conn.execute(
            update(audit_head).where(audit_head.c.id == 1).values(seq=audit_head.c.seq)
        ).rowcount
        if not moved:  # a database set up before the head row existed: the migration inserts it
            conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))

    def _claim(self, conn: Connection) -> tuple[int, str]:
        """Take the chain's lock and the next sequence number in one statement (UPDATE …
        RETURNING: the new seq, and the hash not moved on yet, i.e. the previous row's); with the
        insert and the head's new hash, an append is three statements, every admin change has one."""
        claimed = conn.execute(_CLAIM).first()
        if claimed is None:  # a database set up before the head row existed: the migration inserts it
            conn.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
            return self._claim(conn)
        return int(claimed.seq), str(claimed.hash)

    def _append(self, conn: Connection, entry: AuditEntry) -> int:
        seq, prev_hash = self._claim(conn)
        row: dict[str, Any] = {
            "seq": seq,
            "at": stamp(self._clock()),
            "actor": _clip(entry.actor, _WIDTHS["actor"]),
            "surface": entry.surface[:16],
            "action": _clip(entry.action, _WIDTHS["action"]),
            "target": _clip(entry.target, _WIDTHS["target"]),
            "source": _clip(entry.source, _WIDTHS["source"]),
            "outcome": entry.outcome if entry.outcome in OUTCOMES else "failed",
            "status": entry.status,
            "detail": _detail(entry.detail),
        }
        row["prev_hash"] = prev_hash
        row["hash"] = row_hash(row, prev_hash)
        conn.execute(_INSERT, row)
        conn.execute(_MOVE_HEAD, {"new_hash": row["hash"]})
        return seq

    def prune(self, older_than: datetime) -> int:
        """Delete rows recorded before `older_than`, anchoring the rest (see the module); how many."""
        cutoff = stamp(older_than)
        with self._engine.begin() as conn:
            self._lock(conn)
            last = conn.execute(select(func.max(audit_log.c.seq)).where(audit_log.c.at < cutoff)).scalar()
            if last is None:
                return 0
            last_hash = conn.execute(select(audit_log.c.hash).where(audit_log.c.seq == last)).scalar_one()
            removed = conn.execute(delete(audit_log).where(audit_log.c.seq <= last)).rowcount
            self._append(
                conn,
                AuditEntry(
                    actor="task:audit.retention",
                    surface="task",
                    action=RETENTION_ACTION,
                    target=f"rows up to {last}",
                    detail={"through": int(last), "hash": last_hash, "removed": removed, "before": cutoff},
                ),
            )
        return int(removed)

    # -- reading ---------------------------------------------------------------------------------

    def page(
        self,
        *,
        limit: int = 100,
        before: int | None = None,
        actor: str | None = None,
        surface: str | None = None,
        since: datetime | None = None,
    ) -> dict[str, Any]:
        """Rows newest first; `next` is the `before` of the following page (None at the end)."""
        query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit + 1)
        if before is not None:
            query = query.where(audit_log.c.seq < before)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if surface:
            query = query.where(audit_log.c.surface == surface)
        if since is not None:
            query = query.where(audit_log.c.at >= stamp(since))
        with reading(self._engine) as conn:
            rows = conn.execute(query).all()
        more = len(rows) > limit
        rows = rows[:limit]
        return {"rows": [_view(r) for r in rows], "next": rows[-1].seq if more and rows else None}

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every row, oldest first, read in batches (for export and verify)."""
        after = 0
        while True:
            with reading(self._engine) as conn:
                batch = conn.execute(
                    select(audit_log).where(audit_log.c.seq > after).order_by(audit_log.c.seq).limit(BATCH)
                ).all()
            for row in batch:
                yield dict(row._mapping)
            if len(batch) < BATCH:
                return
            after = batch[-1].seq

    def verify(self) -> Verdict:
        """Walk the chain; the first broken row and why, or ok."""
        with reading(self._engine) as conn:
            head = conn.execute(
                select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
            ).first()
        head_seq, head_hash = (0, GENESIS) if head is None else (int(head.seq), head.hash)
        checked = 0
        prev: dict[str, Any] | None = None
        anchor: tuple[int, str] | None = None  # (seq before the first row, its hash): needs a retention row
        anchored = False
        for row in self.rows():
            checked += 1
            seq = int(row["seq"])
            if prev is None:
                if seq != 1:
                    anchor = (seq - 1, row["prev_hash"])
                elif row["prev_hash"] != GENESIS:
                    return Verdict(False, checked, seq, "the first row does not start the chain")
            else:
                if seq != prev["seq"] + 1:
                    return Verdict(False, checked, seq, f"rows {prev['seq'] + 1} to {seq - 1} are missing")
                if row["prev_hash"] != prev["hash"]:
                    return Verdict(False, checked, seq, f"its previous hash is not row {prev['seq']}'s hash")
            if row_hash(row, row["prev_hash"]) != row["hash"]:
                return Verdict(False, checked, seq, "its contents do not match its hash (the row was edited)")
            if anchor is not None and row["action"] == RETENTION_ACTION:
                try:
                    detail = json.loads(row["detail"])
                    anchored = anchored or (detail.get("through"), detail.get("hash")) == anchor
                except ValueError:
                    pass
            prev = row
        if anchor is not None and not anchored:
            first = anchor[0] + 1
            return Verdict(False, checked, first, f"rows before {first} are gone without a retention record")
        last_seq, last_hash = (0, GENESIS) if prev is None else (int(prev["seq"]), prev["hash"])
        if (last_seq, last_hash) != (head_seq, head_hash):
            return Verdict(
                False,
                checked,
                last_seq + 1,
                f"the log ends at row {last_seq} but its head says row {head_seq}",
            )
        return Verdict(True, checked)
