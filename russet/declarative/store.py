"""Every query on the declarative feature's tables.

The device hot path reads one `ddm_devices` row (its effective set and token, computed when
declarations, assignments or membership change) and the declarations it names: a check-in never
evaluates groups.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, delete, insert, or_, select, true, update
from sqlalchemy.dialects import postgresql, sqlite

from russet.declarative.tables import (
    ddm_assignments,
    ddm_declaration_versions,
    ddm_declarations,
    ddm_device_declarations,
    ddm_devices,
)
from russet.storage import bulk
from russet.storage.db import HotRead, as_utc, reading, utcnow

CHUNK = 2000
D = ddm_declarations.c
_ANY_ASSIGNMENT = HotRead(select(ddm_assignments.c.declaration_id).limit(1))
_SET_OF = HotRead(select(ddm_devices.c.device_id).where(ddm_devices.c.device_id == bindparam("device")))
_SET_FIELDS = [("device_id", bulk.TEXT), ("declaration_ids", bulk.TEXT), ("declarations_token", bulk.TEXT)]
_CLAIM_FIELDS = [
    ("device_id", bulk.TEXT),
    ("token", bulk.TEXT),
    ("seen_token", bulk.TEXT),
    ("seen_at", bulk.TIME),
]


def _statements(dialect: str) -> dict[str, Any]:
    """A batch of devices' sets written, or their commands claimed, in one statement each
    (`russet.storage.bulk`: the rows travel as one JSON parameter)."""
    c = ddm_devices.c
    rows = bulk.json_rows(dialect, _SET_FIELDS, "rows")
    claims = bulk.json_rows(dialect, _CLAIM_FIELDS, "claims")
    builder = postgresql if dialect == "postgresql" else sqlite
    now = bulk.param(dialect, "now", bulk.TIME)
    # SQLite parses INSERT … SELECT … ON CONFLICT only with a WHERE in the SELECT.
    picked = select(rows.c.device_id, rows.c.declaration_ids, rows.c.declarations_token, now).where(true())
    write = builder.insert(ddm_devices).from_select(
        ["device_id", "declaration_ids", "declarations_token", "updated_at"], picked
    )
    write = write.on_conflict_do_update(
        index_elements=["device_id"],
        set_={
            "declaration_ids": write.excluded.declaration_ids,
            "declarations_token": write.excluded.declarations_token,
            "updated_at": write.excluded.updated_at,
        },
    )
    # Claimed only where nobody commanded since the state was read (token and time as seen).
    claim = (
        update(ddm_devices)
        .where(
            c.device_id == claims.c.device_id,
            c.declarations_token == claims.c.token,
            or_(
                c.commanded_token == claims.c.seen_token,
                and_(c.commanded_token.is_(None), claims.c.seen_token.is_(None)),
            ),
            or_(
                c.commanded_at == claims.c.seen_at, and_(c.commanded_at.is_(None), claims.c.seen_at.is_(None))
            ),
        )
        .values(commanded_token=claims.c.token, commanded_at=bindparam("now", type_=bulk.TIME))
        .returning(c.device_id)
    )
    return {"write": write, "claim": claim}


_STATEMENTS = {dialect: _statements(dialect) for dialect in ("sqlite", "postgresql")}


def _row(row: Any) -> dict[str, Any]:
    out = dict(row._mapping)
    for key in ("created_at", "updated_at", "commanded_at", "status_at", "reported_at"):
        if key in out:
            out[key] = as_utc(out[key])
    return out


def _chunks(ids: Iterable[str]) -> Iterable[list[str]]:
    items = sorted(set(ids))
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


class DeclarationStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sql = _STATEMENTS[self._dialect]

    # -- declarations ------------------------------------------------------------------------------

    def all(self, *, with_payload: bool = False) -> list[dict[str, Any]]:
        cols = [
            D.id,
            D.identifier,
            D.kind,
            D.type,
            D.server_token,
            D.version,
            D.updated_at,
            D.data_type,
            D.profile_ref,
        ]
        if with_payload:
            cols.append(D.payload)
        with reading(self._engine) as conn:
            return [_row(r) for r in conn.execute(select(*cols).order_by(D.identifier))]

    def get(self, identifier: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(ddm_declarations).where(D.identifier == identifier)).first()
        return None if row is None else _row(row)

    def served(self, identifier: str) -> dict[str, Any] | None:
        """What a device fetches: the declaration without its data (whether it has some)."""
        query = select(
            D.id,
            D.identifier,
            D.kind,
            D.type,
            D.payload,
            D.server_token,
            or_(D.data.is_not(None), D.profile_ref.is_not(None)).label("has_data"),
        ).where(D.identifier == identifier)
        with reading(self._engine) as conn:
            row = conn.execute(query).first()
        return None if row is None else _row(row)

    def by_ids(self, ids: Collection[int], *, full: bool = False) -> list[dict[str, Any]]:
        if not ids:
            return []
        cols = [ddm_declarations] if full else [D.id, D.identifier, D.kind, D.type, D.server_token]
        with reading(self._engine) as conn:
            return [_row(r) for r in conn.execute(select(*cols).where(D.id.in_(sorted(ids))))]

    def versions(self, declaration_id: int) -> list[dict[str, Any]]:
        v = ddm_declaration_versions.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(v.version, v.server_token, v.data_sha256, v.created_by, v.created_at)
                .where(v.declaration_id == declaration_id)
                .order_by(v.version)
            )
            return [_row(r) for r in rows]

    def save(
        self,
        identifier: str,
        values: dict[str, Any],
        data_sha256: str | None,
        created_by: str,
        *,
        create: bool,
    ) -> tuple[dict[str, Any], bool]:
        """Insert (create) or update a declaration; a new version is written only when the
        server token changed. Returns the row and whether anything changed. IntegrityError on a
        duplicate identifier is the caller's to turn into a Conflict."""
        now = utcnow()
        with self._engine.begin() as conn:
            if create:
                values = {**values, "identifier": identifier, "version": 1, "created_by": created_by}
                key = conn.execute(
                    insert(ddm_declarations).values(**values, created_at=now, updated_at=now)
                ).inserted_primary_key
                assert key is not None
                declaration_id = key[0]
                version, changed = 1, True
            else:
                current = conn.execute(
                    select(D.id, D.version, D.server_token).where(D.identifier == identifier)
                ).first()
                if current is None:
                    raise LookupError(identifier)
                declaration_id, version = current.id, current.version
                changed = current.server_token != values["server_token"]
                if changed:
                    version += 1
                    conn.execute(
                        update(ddm_declarations)
                        .where(D.id == declaration_id)
                        .values(**values, version=version, updated_at=now)
                    )
            if changed:
                conn.execute(
                    insert(ddm_declaration_versions).values(
                        declaration_id=declaration_id,
                        version=version,
                        server_token=values["server_token"],
                        payload=values["payload"],
                        data_sha256=data_sha256,
                        created_by=created_by,
                        created_at=now,
                    )
                )
        found = self.get(identifier)
        assert found is not None
        return found, changed

    def delete(self, declaration_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(ddm_declarations).where(D.id == declaration_id))

    # -- assignments -------------------------------------------------------------------------------

    def assignments(self, declaration_id: int | None = None) -> list[tuple[int, str, str]]:
        a = ddm_assignments.c
        query = select(a.declaration_id, a.target_kind, a.target).order_by(a.target_kind, a.target)
        if declaration_id is not None:
            query = query.where(a.declaration_id == declaration_id)
        with reading(self._engine) as conn:
            return [(r[0], r[1], r[2]) for r in conn.execute(query)]

    def assign(self, declaration_id: int, targets: Collection[tuple[str, str]]) -> int:
        existing = {(k, t) for _, k, t in self.assignments(declaration_id)}
        new = [t for t in dict.fromkeys(targets) if t not in existing]
        if new:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(ddm_assignments),
                    [{"declaration_id": declaration_id, "target_kind": k, "target": t} for k, t in new],
                )
        return len(new)

    def unassign(self, declaration_id: int, targets: Collection[tuple[str, str]]) -> int:
        a = ddm_assignments.c
        removed = 0
        with self._engine.begin() as conn:
            for kind, target in set(targets):
                removed += conn.execute(
                    delete(ddm_assignments).where(
                        a.declaration_id == declaration_id, a.target_kind == kind, a.target == target
                    )
                ).rowcount
        return removed

    # -- devices: the effective set ----------------------------------------------------------------

    def device(self, device_id: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(ddm_devices).where(ddm_devices.c.device_id == device_id)).first()
        return None if row is None else _row(row)

    def device_set(self, device_id: str) -> tuple[list[int], str, datetime | None] | None:
        """The device's effective set, its token and when it was computed: the hot path's read."""
        c = ddm_devices.c
        with reading(self._engine) as conn:
            row = conn.execute(
                select(c.declaration_ids, c.declarations_token, c.updated_at).where(c.device_id == device_id)
            ).first()
        return None if row is None else (json.loads(row[0]), row[1], as_utc(row[2]))

    def anything_for(self, device_ids: Collection[str]) -> bool:
        """Whether any declaration is assigned at all, or any of these devices has a set; if not,
        refreshing them has nothing to do. Asked on every facts change (in device requests), so
        for one device it is two indexed reads on pooled cursors (HotRead)."""
        if _ANY_ASSIGNMENT.first(self._engine, {}) is not None:
            return True
        if len(device_ids) == 1:
            return _SET_OF.first(self._engine, {"device": next(iter(device_ids))}) is not None
        return bool(self.device_sets(device_ids))

    def device_sets(self, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
        """device id -> its row's set, token and command state (every row when None)."""
        c = ddm_devices.c
        query = select(
            c.device_id, c.declaration_ids, c.declarations_token, c.commanded_token, c.commanded_at
        )
        rows: list[Any] = []
        with reading(self._engine) as conn:
            if device_ids is None:
                rows = list(conn.execute(query))
            else:
                for chunk in _chunks(device_ids):
                    rows += list(conn.execute(query.where(c.device_id.in_(chunk))))
        return {
            r.device_id: {
                "declaration_ids": json.loads(r.declaration_ids),
                "declarations_token": r.declarations_token,
                "commanded_token": r.commanded_token,
                "commanded_at": as_utc(r.commanded_at),
            }
            for r in rows
        }

    def set_sets(self, sets: dict[str, tuple[list[int], str]]) -> None:
        """Write each device's effective set and its token (rows created as needed): one
        statement per batch of devices, in one transaction."""
        now = utcnow()
        items = sorted(sets.items())
        with self._engine.begin() as conn:
            for start in range(0, len(items), CHUNK):
                rows = [[d, json.dumps(ids), token] for d, (ids, token) in items[start : start + CHUNK]]
                conn.execute(self._sql["write"], {"rows": bulk.encode(rows), "now": now})

    def claim_commands(self, claims: Collection[tuple[str, str, str | None, datetime | None]]) -> set[str]:
        """Record that each device's set `token` is being commanded, (device, token, seen token,
        seen at) each, where nobody did since the state was read: of two processes refreshing at
        once, one sends the command. One statement per batch; returns the devices claimed."""
        now = utcnow()
        items = sorted(claims)
        won: set[str] = set()
        with self._engine.begin() as conn:
            for start in range(0, len(items), CHUNK):
                rows = [
                    [d, token, seen, bulk.time_text(self._dialect, at)]
                    for d, token, seen, at in items[start : start + CHUNK]
                ]
                found = conn.execute(self._sql["claim"], {"claims": bulk.encode(rows), "now": now})
                won.update(found.scalars())
        return won

    # -- devices: what they reported ---------------------------------------------------------------

    def store_status(
        self,
        device_id: str,
        raw: str,
        full: bool,
        values: dict[str, Any],
        capabilities: dict[str, Any] | None,
        states: list[Any] | None,
    ) -> None:
        """Keep one report: the whole text, the merged values, the capabilities, and each
        declaration's state (a full report replaces every state; an incremental one updates)."""
        now = utcnow()
        c = ddm_devices.c
        s = ddm_device_declarations.c
        with self._engine.begin() as conn:
            _ensure_device(conn, device_id, now)
            update_values: dict[str, Any] = {
                "status_values": json.dumps(values),
                "last_report": raw,
                "status_at": now,
            }
            if full:
                update_values["last_full_report"] = raw
            if capabilities is not None:
                update_values["capabilities"] = json.dumps(capabilities)
            conn.execute(update(ddm_devices).where(c.device_id == device_id).values(**update_values))
            if states is None:
                return
            if full:
                conn.execute(delete(ddm_device_declarations).where(s.device_id == device_id))
            else:
                ids = [st.identifier for st in states]
                for start in range(0, len(ids), CHUNK):
                    conn.execute(
                        delete(ddm_device_declarations).where(
                            s.device_id == device_id, s.identifier.in_(ids[start : start + CHUNK])
                        )
                    )
            unique = {st.identifier: st for st in states}
            if unique:
                conn.execute(
                    insert(ddm_device_declarations),
                    [
                        {
                            "device_id": device_id,
                            "identifier": st.identifier,
                            "kind": st.kind,
                            "server_token": st.server_token,
                            "active": st.active,
                            "valid": st.valid,
                            "reasons": json.dumps(st.reasons) if st.reasons else None,
                            "reported_at": now,
                        }
                        for st in unique.values()
                    ],
                )

    def status_values(self, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
        c = ddm_devices.c
        query = select(c.device_id, c.status_values).where(c.status_values.is_not(None))
        rows: list[Any] = []
        with reading(self._engine) as conn:
            if device_ids is None:
                rows = list(conn.execute(query))
            else:
                for chunk in _chunks(device_ids):
                    rows += list(conn.execute(query.where(c.device_id.in_(chunk))))
        return {r.device_id: json.loads(r.status_values) for r in rows}

    def reported(self, device_id: str) -> list[dict[str, Any]]:
        s = ddm_device_declarations.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(ddm_device_declarations).where(s.device_id == device_id).order_by(s.identifier)
            )
            return [_reported(r) for r in rows]

    def reported_for(self, identifier: str) -> list[dict[str, Any]]:
        s = ddm_device_declarations.c
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(ddm_device_declarations).where(s.identifier == identifier).order_by(s.device_id)
            )
            return [_reported(r) for r in rows]

    def forget_reported(self, device_id: str) -> None:
        """A device enrolled anew holds none of what it reported before its erase."""
        s = ddm_device_declarations.c
        with self._engine.begin() as conn:
            conn.execute(delete(ddm_device_declarations).where(s.device_id == device_id))


def _reported(row: Any) -> dict[str, Any]:
    out = _row(row)
    out["reasons"] = json.loads(out["reasons"]) if out["reasons"] else []
    return out


def _ensure_device(conn: Connection, device_id: str, now: datetime) -> None:
    """A row for the device (an empty set) if it has none: a device reports status whether or not
    it was given anything."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(ddm_devices)
        .values(device_id=device_id, declaration_ids="[]", declarations_token="", updated_at=now)
        .on_conflict_do_nothing(index_elements=["device_id"])
    )
