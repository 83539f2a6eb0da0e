"""Every query on the blueprints feature's tables.

`BlueprintStore` keeps the definitions (blueprints, items, scopes); `DeviceItemStore` what the
reconciler did on each device, read and written a batch of devices at a time (one statement per
batch, the rows travelling as one JSON parameter: `russet.storage.bulk`), so that a pass over
100,000 devices makes a few hundred round trips, not millions.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Engine,
    String,
    and_,
    bindparam,
    delete,
    false,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from russet.blueprints.reconcile import Key, Record
from russet.blueprints.tables import (
    blueprint_device_items,
    blueprint_devices,
    blueprint_items,
    blueprint_runs,
    blueprint_scopes,
    blueprints,
)
from russet.kernel.errors import Conflict, NotFound
from russet.storage import bulk
from russet.storage.db import HotRead, as_utc

_b, _i, _s = blueprints.c, blueprint_items.c, blueprint_scopes.c
_d, _v, _r = blueprint_device_items.c, blueprint_devices.c, blueprint_runs.c
_ANY_BLUEPRINT = HotRead(select(_b.id).limit(1))
_ANY_ITEM_OF = HotRead(select(_i.id).where(_i.kind == bindparam("kind")).limit(1))

PASS = "pass"  # the blueprint_runs row of the reconcile pass
BOOL = Boolean()


@dataclass(frozen=True, slots=True)
class Mark:
    """A device's bookkeeping row (`blueprint_devices`)."""

    recheck_uuid: str | None  # a ProfileList the reconciler asked, unanswered
    recheck_at: datetime | None
    dirty: bool  # a command of the reconciler's was answered since the device was last planned
    settled: str | None  # the settled token of the last pass that found nothing to do


@dataclass(frozen=True, slots=True)
class ItemRow:
    kind: str  # profile | setting | app
    ref: str
    version: int | None = None
    value: str | None = None
    payload_identifier: str | None = None


@dataclass(frozen=True, slots=True)
class BlueprintRow:
    id: int
    name: str
    description: str
    items: tuple[ItemRow, ...]
    include: tuple[int, ...]
    exclude: tuple[int, ...]
    created_by: str | None
    created_at: datetime
    updated_at: datetime


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class BlueprintStore:
    """Blueprints, their items and scopes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _load(self, conn: Any, rows: Sequence[Any]) -> list[BlueprintRow]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        items: dict[int, list[ItemRow]] = {i: [] for i in ids}
        for it in conn.execute(
            select(_i.blueprint_id, _i.kind, _i.ref, _i.version, _i.value, _i.payload_identifier)
            .where(_i.blueprint_id.in_(ids))
            .order_by(_i.blueprint_id, _i.position)
        ):
            items[it.blueprint_id].append(
                ItemRow(it.kind, it.ref, it.version, it.value, it.payload_identifier)
            )
        scopes: dict[int, dict[str, list[int]]] = {i: {"include": [], "exclude": []} for i in ids}
        for sc in conn.execute(
            select(_s.blueprint_id, _s.group_id, _s.mode)
            .where(_s.blueprint_id.in_(ids))
            .order_by(_s.group_id)
        ):
            scopes[sc.blueprint_id][sc.mode].append(sc.group_id)
        return [
            BlueprintRow(
                r.id,
                r.name,
                r.description,
                tuple(items[r.id]),
                tuple(scopes[r.id]["include"]),
                tuple(scopes[r.id]["exclude"]),
                r.created_by,
                _utc(r.created_at),
                _utc(r.updated_at),
            )
            for r in rows
        ]

    def any(self) -> bool:
        """Whether there is a blueprint at all (else device changes need no reconcile). Asked in
        device requests, so read on a pooled cursor (HotRead)."""
        return _ANY_BLUEPRINT.first(self.engine, {}) is not None

    def has_items_of(self, kind: str) -> bool:
        """Whether any blueprint lists an item of `kind` (a pooled cursor's read, as `any`)."""
        return _ANY_ITEM_OF.first(self.engine, {"kind": kind}) is not None

    def all(self) -> list[BlueprintRow]:
        with self.engine.connect() as conn:
            return self._load(conn, conn.execute(select(blueprints).order_by(_b.id)).all())

    def get(self, ident: int | str) -> BlueprintRow:
        """By id, or by name; NotFound otherwise."""
        where = _b.id == ident if isinstance(ident, int) else _b.name == ident
        with self.engine.connect() as conn:
            found = self._load(conn, conn.execute(select(blueprints).where(where)).all())
        if not found:
            raise NotFound(f"no blueprint {ident!r}")
        return found[0]

    def names(self, ids: Iterable[int]) -> dict[int, str]:
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(select(_b.id, _b.name).where(_b.id.in_(list(ids))))}

    def claims(self, identifiers: Collection[str], *, other_than: int | None) -> dict[str, str]:
        """PayloadIdentifier -> name of the blueprint that claims it, among `identifiers`."""
        if not identifiers:
            return {}
        query = (
            select(_i.payload_identifier, _b.name)
            .join(blueprints, _b.id == _i.blueprint_id)
            .where(_i.payload_identifier.in_(list(identifiers)))
        )
        if other_than is not None:
            query = query.where(_i.blueprint_id != other_than)
        with self.engine.connect() as conn:
            return {r[0]: r[1] for r in conn.execute(query)}

    def save(
        self,
        blueprint_id: int | None,
        *,
        name: str,
        description: str,
        items: Sequence[ItemRow],
        include: Sequence[int],
        exclude: Sequence[int],
        created_by: str | None,
        now: datetime,
    ) -> int:
        """Create (`blueprint_id` None) or replace a blueprint whole, in one transaction. A name or
        PayloadIdentifier taken meanwhile by another blueprint is a Conflict; nothing is stored."""
        try:
            with self.engine.begin() as conn:
                if blueprint_id is None:
                    blueprint_id = conn.execute(
                        insert(blueprints)
                        .values(
                            name=name,
                            description=description,
                            created_by=created_by,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(_b.id)
                    ).scalar_one()
                else:
                    done = conn.execute(
                        update(blueprints)
                        .where(_b.id == blueprint_id)
                        .values(name=name, description=description, updated_at=now)
                    )
                    if done.rowcount != 1:
                        raise NotFound(f"no blueprint {blueprint_id}")
                    conn.execute(delete(blueprint_items).where(_i.blueprint_id == blueprint_id))
                    conn.execute(delete(blueprint_scopes).where(_s.blueprint_id == blueprint_id))
                if items:
                    conn.execute(
                        insert(blueprint_items),
                        [
                            {
                                "blueprint_id": blueprint_id,
                                "position": n,
                                "kind": it.kind,
                                "ref": it.ref,
                                "version": it.version,
                                "value": it.value,
                                "payload_identifier": it.payload_identifier,
                            }
                            for n, it in enumerate(items)
                        ],
                    )
                scope_rows = [
                    {"blueprint_id": blueprint_id, "group_id": g, "mode": "include"} for g in include
                ]
                scope_rows += [
                    {"blueprint_id": blueprint_id, "group_id": g, "mode": "exclude"} for g in exclude
                ]
                if scope_rows:
                    conn.execute(insert(blueprint_scopes), scope_rows)
                _mark_changed(conn, now)
        except IntegrityError:
            raise Conflict(
                f"blueprint {name!r} was not saved: its name or one of its PayloadIdentifiers was taken by "
                "another blueprint meanwhile; list the blueprints and try again"
            ) from None
        return blueprint_id

    def mark_changed(self, now: datetime) -> None:
        """Record that scopes changed, so the next periodic pass is a full one."""
        with self.engine.begin() as conn:
            _mark_changed(conn, now)

    def delete(self, blueprint_id: int, now: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(blueprint_items).where(_i.blueprint_id == blueprint_id))
            conn.execute(delete(blueprint_scopes).where(_s.blueprint_id == blueprint_id))
            if conn.execute(delete(blueprints).where(_b.id == blueprint_id)).rowcount != 1:
                raise NotFound(f"no blueprint {blueprint_id}")
            _mark_changed(conn, now)


def _ensure_run_row(conn: Any) -> None:
    if conn.execute(select(_r.name).where(_r.name == PASS)).first() is None:
        conn.execute(insert(blueprint_runs).values(name=PASS))


def _mark_changed(conn: Any, now: datetime) -> None:
    _ensure_run_row(conn)
    conn.execute(update(blueprint_runs).where(_r.name == PASS).values(changed_at=now))


_RECORD_COLUMNS = (
    _d.device_id,
    _d.kind,
    _d.ident,
    _d.blueprint_id,
    _d.state,
    _d.action,
    _d.installed,
    _d.ref,
    _d.version,
    _d.payload_uuid,
    _d.content_hash,
    _d.value,
    _d.command_uuid,
    _d.error,
    _d.queued_at,
    _d.acked_at,
)
_ROW_FIELDS: list[tuple[str, Any]] = [
    ("device_id", bulk.TEXT),
    ("kind", bulk.TEXT),
    ("ident", bulk.TEXT),
    ("blueprint_id", bulk.INT),
    ("state", bulk.TEXT),
    ("action", bulk.TEXT),
    ("installed", BOOL),
    ("ref", bulk.TEXT),
    ("version", bulk.INT),
    ("payload_uuid", bulk.TEXT),
    ("content_hash", bulk.TEXT),
    ("value", bulk.TEXT),
    ("command_uuid", bulk.TEXT),
    ("error", bulk.TEXT),
    ("queued_at", bulk.TIME),
    ("acked_at", bulk.TIME),
    ("updated_at", bulk.TIME),
]
_KEY_FIELDS: list[tuple[str, Any]] = [("device_id", bulk.TEXT), ("kind", bulk.TEXT), ("ident", bulk.TEXT)]


def _record(row: Any) -> Record:
    return _fast_record(row, {})


def _fast_record(row: Any, times: dict[Any, datetime | None]) -> Record:
    """A record from a row of `_RECORD_COLUMNS` (read by position: a pass reads a million). The two
    times come as the backend gives them (SQLite: text, read raw; PostgreSQL: aware datetimes) and
    are converted once per distinct value: a batch's rows share a handful of them."""
    queued, acked = row[14], row[15]
    q = times.get(queued, _MISSING) if queued is not None else None
    if q is _MISSING:
        q = times[queued] = _as_time(queued)
    a = times.get(acked, _MISSING) if acked is not None else None
    if a is _MISSING:
        a = times[acked] = _as_time(acked)
    return Record._make((*row[1:6], bool(row[6]), *row[7:14], q, a))  # SQLite's driver: installed 0/1


_MISSING: Any = object()


def _as_time(value: Any) -> datetime:
    if isinstance(value, str):  # SQLite's stored text (SQLAlchemy's form, naive UTC)
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _read_columns(dialect: str) -> tuple[Any, ...]:
    """`_RECORD_COLUMNS`, with SQLite's times read as their stored text (parsed by `_as_time`,
    once per distinct value, instead of by SQLAlchemy once per row)."""
    if dialect != "sqlite":
        return _RECORD_COLUMNS
    return (*_RECORD_COLUMNS[:14], type_coerce(_d.queued_at, String), type_coerce(_d.acked_at, String))


def _upsert_rows(dialect: str, rows: Any) -> Any:
    """INSERT the batch's records, replacing the row of a key already there in place (one
    statement; a delete then an insert wrote every replaced row twice, and PostgreSQL's indexes
    with it). SQLite needs the SELECT's WHERE to tell its ON CONFLICT from a join's ON."""
    names = [name for name, _ in _ROW_FIELDS]
    new = (sqlite_insert if dialect == "sqlite" else pg_insert)(blueprint_device_items)
    statement = new.from_select(names, select(*[rows.c[name] for name in names]).where(true()))
    keys = [name for name, _ in _KEY_FIELDS]
    return statement.on_conflict_do_update(
        index_elements=keys,
        set_={name: statement.excluded[name] for name in names if name not in keys},
    )


def _upsert_marks(dialect: str, values: Mapping[str, Any], rows: Any) -> Any:
    """Set `values` on the bookkeeping row of each device of `rows`, making the rows missing (not
    dirty) in the same statement: one round trip, where looking for missing rows, inserting them
    and updating took three (and a second writer making a row meanwhile is no conflict)."""
    names = ["device_id", "dirty", *values]
    new = (sqlite_insert if dialect == "sqlite" else pg_insert)(blueprint_devices)
    picked = select(rows.c.device_id, false(), *values.values()).where(true())  # SQLite: see _upsert_rows
    statement = new.from_select(names, picked)
    return statement.on_conflict_do_update(
        index_elements=["device_id"], set_={name: statement.excluded[name] for name in values}
    )


def _statements(dialect: str) -> dict[str, Any]:
    keys = bulk.json_rows(dialect, _KEY_FIELDS, "keys")
    rows = bulk.json_rows(dialect, _ROW_FIELDS, "rows", jsonb=True)  # 17 columns: parsed once
    adopt = bulk.json_rows(dialect, [*_KEY_FIELDS, ("blueprint_id", bulk.INT)], "adopt")
    ids = bulk.json_rows(dialect, [("device_id", bulk.TEXT)], "ids")
    asked = bulk.json_rows(dialect, [("device_id", bulk.TEXT), ("uuid", bulk.TEXT)], "rechecks")
    marked = bulk.json_rows(dialect, [("device_id", bulk.TEXT), ("settled", bulk.TEXT)], "marked")
    return {
        "read": HotRead(select(*_read_columns(dialect)).join(ids, _d.device_id == ids.c.device_id)),
        # Row-value IN over the batch: both backends probe the primary key once per batch row
        # (a correlated EXISTS would scan the whole table against every batch).
        "delete": delete(blueprint_device_items).where(
            tuple_(_d.device_id, _d.kind, _d.ident).in_(select(keys.c.device_id, keys.c.kind, keys.c.ident))
        ),
        "upsert": _upsert_rows(dialect, rows),
        "adopt": update(blueprint_device_items)
        .where(_d.device_id == adopt.c.device_id, _d.kind == adopt.c.kind, _d.ident == adopt.c.ident)
        .values(blueprint_id=adopt.c.blueprint_id),
        "recheck": _upsert_marks(
            dialect,
            {"recheck_uuid": asked.c.uuid, "recheck_at": bulk.param(dialect, "now", bulk.TIME)},
            asked,
        ),
        "clean": update(blueprint_devices)
        .where(_v.dirty.is_(True), _v.device_id.in_(select(ids.c.device_id)))
        .values(dirty=False),
        "marks": select(_v.device_id, _v.recheck_uuid, _v.recheck_at, _v.dirty, _v.settled).join(
            ids, _v.device_id == ids.c.device_id
        ),
        "settle": _upsert_marks(dialect, {"settled": marked.c.settled}, marked),
        # Every answer to a command of a kind the reconciler queues asks these two (the device
        # path: on pooled cursors): is it an item's command, or the device's re-check?
        "by_command": HotRead(
            select(*_read_columns(dialect)).where(
                _d.device_id == bindparam("device"), _d.command_uuid == bindparam("uuid")
            )
        ),
        "is_recheck": HotRead(
            select(_v.device_id).where(
                _v.device_id == bindparam("device"), _v.recheck_uuid == bindparam("uuid")
            )
        ),
        "unsettle": update(blueprint_devices)
        .where(_v.settled.is_not(None), _v.device_id.in_(select(ids.c.device_id)))
        .values(settled=None),
    }


_STATEMENTS = {dialect: _statements(dialect) for dialect in ("sqlite", "postgresql")}


class DeviceItemStore:
    """What the reconciler did on each device, and its bookkeeping (rechecks, dirty, pass lease)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sql = _STATEMENTS[engine.dialect.name]
        self._dialect = engine.dialect.name

    def _time(self, value: datetime | None) -> str | None:
        return bulk.time_text(self._dialect, value)

    # -- reading, a batch of devices at a time -------------------------------------------------

    def records(self, device_ids: Sequence[str]) -> dict[str, dict[Key, Record]]:
        """Device id -> its records by (kind, ident), for the devices given."""
        out: dict[str, dict[Key, Record]] = {}
        if not device_ids:
            return out
        # The driver's plain tuples (HotRead): a full pass reads a million rows, and SQLAlchemy's
        # Connection and Row per row were a third of the read's CPU on PostgreSQL.
        rows = self._sql["read"].all(self.engine, {"ids": bulk.encode([[d] for d in device_ids])})
        if self._dialect == "postgresql":  # psycopg gives the record's own values: aware times, bools
            make = Record._make
            for row in rows:
                mine = out.get(row[0])
                if mine is None:
                    mine = out[row[0]] = {}
                mine[(row[1], row[2])] = make(row[1:])
            return out
        times: dict[Any, datetime | None] = {}
        for row in rows:
            mine = out.get(row[0])
            if mine is None:
                mine = out[row[0]] = {}
            mine[(row[1], row[2])] = _fast_record(row, times)
        return out

    def marks(self, device_ids: Sequence[str]) -> dict[str, Mark]:
        """The bookkeeping of those devices that have any: re-check asked, dirty, settled."""
        if not device_ids:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(self._sql["marks"], {"ids": bulk.encode([[d] for d in device_ids])}).all()
        return {r[0]: Mark(r[1], as_utc(r[2]), bool(r[3]), r[4]) for r in rows}

    def devices(self) -> set[str]:
        """Every device the reconciler holds records for (it may have to remove something there)."""
        with self.engine.connect() as conn:
            return set(conn.execute(select(_d.device_id).distinct()).scalars())

    # -- writing a pass's outcome --------------------------------------------------------------

    def write(
        self,
        *,
        upserts: Sequence[Mapping[str, Any]],
        forget: Sequence[tuple[str, str, str]],
        adopt: Sequence[tuple[str, str, str, int]],
        rechecks: Mapping[str, str],
        reconciled: Sequence[str],
        now: datetime,
        settled: Mapping[str, str | None] | None = None,
    ) -> None:
        """One transaction per batch: records replaced or forgotten, ownership moved, ProfileList
        re-checks asked, `reconciled` devices no longer dirty, `settled` marks changed."""
        memo: dict[datetime | None, str | None] = {}

        def time(value: datetime | None) -> str | None:
            text = memo.get(value, _MISSING)
            if text is _MISSING:
                text = memo[value] = self._time(value)
            return text

        with self.engine.begin() as conn:
            if forget:
                conn.execute(self._sql["delete"], {"keys": bulk.encode(forget)})
            if upserts:
                rows = [
                    [
                        u["device_id"],
                        u["kind"],
                        u["ident"],
                        u["blueprint_id"],
                        u["state"],
                        u["action"],
                        bool(u["installed"]),
                        u.get("ref"),
                        u.get("version"),
                        u.get("payload_uuid"),
                        u.get("content_hash"),
                        u.get("value"),
                        u.get("command_uuid"),
                        u.get("error"),
                        time(u.get("queued_at")),
                        time(u.get("acked_at")),
                        time(now),
                    ]
                    for u in upserts
                ]
                conn.execute(self._sql["upsert"], {"rows": bulk.encode(rows)})
            if adopt:
                conn.execute(self._sql["adopt"], {"adopt": bulk.encode(adopt)})
            if rechecks:
                batch = bulk.encode([[d, u] for d, u in rechecks.items()])
                conn.execute(self._sql["recheck"], {"rechecks": batch, "now": now})
            if settled:  # only marks that changed are given
                marks = [[d, token] for d, token in settled.items() if token is not None]
                if marks:
                    conn.execute(self._sql["settle"], {"marked": bulk.encode(marks)})
                unmarked = [[d] for d, token in settled.items() if token is None]
                if unmarked:  # a device without a row has no mark to take off
                    conn.execute(self._sql["unsettle"], {"ids": bulk.encode(unmarked)})
            if reconciled:  # only the rows of devices marked dirty change: an idle pass writes nothing
                conn.execute(self._sql["clean"], {"ids": bulk.encode([[d] for d in reconciled])})

    def _ensure_devices(self, conn: Any, device_ids: Collection[str]) -> None:
        """A bookkeeping row for each device; one made meanwhile by another process (a pass and a
        command result racing) is left as it is rather than failing the transaction."""
        ids = list(device_ids)
        new = (sqlite_insert if self._dialect == "sqlite" else pg_insert)(blueprint_devices)
        new = new.on_conflict_do_nothing(index_elements=["device_id"])
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            have = set(conn.execute(select(_v.device_id).where(_v.device_id.in_(chunk))).scalars())
            missing = [d for d in chunk if d not in have]
            if missing:
                conn.execute(new, [{"device_id": d, "dirty": False} for d in missing])

    # -- command results -----------------------------------------------------------------------

    def by_command(self, device_id: str, command_uuid: str) -> Record | None:
        row = self._sql["by_command"].first(self.engine, {"device": device_id, "uuid": command_uuid})
        return None if row is None else _record(row)

    def settle(
        self, device_id: str, record: Record, *, state: str | None, error: str | None, now: datetime
    ) -> bool:
        """The outcome of the record's command: `state` in_sync or failed (an acknowledged
        RemoveProfile, `state` None, deletes the record). Conditional on the command still being the
        record's, so a duplicate report changes nothing. True when this call settled it."""
        where = and_(
            _d.device_id == device_id,
            _d.kind == record.kind,
            _d.ident == record.ident,
            _d.command_uuid == record.command_uuid,
        )
        with self.engine.begin() as conn:
            if state is None:
                done = conn.execute(delete(blueprint_device_items).where(where))
            else:
                values: dict[str, Any] = {
                    "state": state,
                    "error": error,
                    "command_uuid": None,
                    "updated_at": now,
                }
                if state != "failed":
                    values["acked_at"] = now
                    if record.action in ("install_profile", "install_application"):
                        values["installed"] = True
                done = conn.execute(update(blueprint_device_items).where(where).values(**values))
            settled = done.rowcount == 1
            if settled:
                self._ensure_devices(conn, [device_id])
                conn.execute(
                    update(blueprint_devices)
                    .where(_v.device_id == device_id)
                    .values(dirty=True, settled=None)
                )
        return settled

    def recheck_answered(self, device_id: str, command_uuid: str) -> bool:
        """The reconciler's ProfileList was answered: the device is due a reconcile. Most answers
        are not a re-check: a read tells, so that they make no write transaction."""
        if self._sql["is_recheck"].first(self.engine, {"device": device_id, "uuid": command_uuid}) is None:
            return False
        with self.engine.begin() as conn:
            done = conn.execute(
                update(blueprint_devices)
                .where(_v.device_id == device_id, _v.recheck_uuid == command_uuid)
                .values(recheck_uuid=None, recheck_at=None, dirty=True)
            )
        return done.rowcount == 1

    def start_over(self, device_id: str) -> None:
        """The device holds nothing of the reconciler's (an ADE device back in Setup Assistant,
        erased): forget its records and its re-check, so that every item is installed again."""
        with self.engine.begin() as conn:
            conn.execute(delete(blueprint_device_items).where(_d.device_id == device_id))
            conn.execute(
                update(blueprint_devices)
                .where(_v.device_id == device_id)
                .values(recheck_uuid=None, recheck_at=None, settled=None)
            )

    def has_recheck(self, device_id: str) -> bool:
        with self.engine.connect() as conn:
            return (
                conn.execute(
                    select(literal(1)).where(_v.device_id == device_id, _v.recheck_uuid.is_not(None))
                ).first()
                is not None
            )

    def mark_dirty(self, device_ids: Collection[str]) -> None:
        """These devices are due a reconcile (what they reported, or their groups, changed)."""
        if not device_ids:
            return
        with self.engine.connect() as conn:  # devices already marked need no write (the common case)
            marked = set(
                conn.execute(
                    select(_v.device_id).where(_v.device_id.in_(list(device_ids)[:5000]), _v.dirty.is_(True))
                ).scalars()
            )
        ids = [d for d in device_ids if d not in marked]
        if not ids:
            return
        with self.engine.begin() as conn:
            self._ensure_devices(conn, ids)
            for start in range(0, len(ids), 5000):
                conn.execute(
                    update(blueprint_devices)
                    .where(_v.device_id.in_(ids[start : start + 5000]), _v.dirty.is_(False))
                    .values(dirty=True)
                )

    def dirty(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(select(_v.device_id).where(_v.dirty.is_(True)).order_by(_v.device_id)).scalars()
            )

    # -- the pass lease --------------------------------------------------------------------------

    def acquire(self, holder: str, now: datetime, until: datetime, *, full: bool) -> bool:
        """Take the pass lease (one reconcile pass at a time, across processes and nodes)."""
        with self.engine.begin() as conn:
            _ensure_run_row(conn)
            values: dict[str, Any] = {"holder": holder, "expires_at": until}
            if full:
                values["full_pass_at"] = now
            done = conn.execute(
                update(blueprint_runs)
                .where(_r.name == PASS, or_(_r.holder.is_(None), _r.expires_at < now))
                .values(**values)
            )
        return done.rowcount == 1

    def renew(self, holder: str, until: datetime) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(blueprint_runs).where(_r.name == PASS, _r.holder == holder).values(expires_at=until)
            )

    def release(self, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(blueprint_runs)
                .where(_r.name == PASS, _r.holder == holder)
                .values(holder=None, expires_at=None)
            )

    def run_state(self) -> dict[str, datetime | None]:
        with self.engine.connect() as conn:
            row = conn.execute(select(blueprint_runs).where(_r.name == PASS)).first()
        if row is None:
            return {"changed_at": None, "full_pass_at": None, "expires_at": None}
        return {
            "changed_at": as_utc(row.changed_at),
            "full_pass_at": as_utc(row.full_pass_at),
            "expires_at": as_utc(row.expires_at) if row.holder else None,
        }


def error_text(chain: Any, reason: str | None) -> str:
    """What a failed command says, as stored JSON: Apple's ErrorChain (bounded) and/or a reason."""
    return json.dumps({"error_chain": chain, "reason": reason}, separators=(",", ":"))
