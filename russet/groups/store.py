"""Every query on the groups tables: groups, and their membership written as differences in bulk.

Membership changes are applied as a difference (rows to add, rows to remove) in one transaction,
with each group's `member_count` recounted in it, so a list of groups never counts members. Adds
are `INSERT … ON CONFLICT DO NOTHING`: two processes re-evaluating the same group at once both
succeed and agree.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from russet.groups.tables import group_members, groups
from russet.kernel.errors import Conflict
from russet.storage.db import HotRead, as_utc, reading, utcnow

_ANY_SMART = HotRead(select(groups.c.id).where(groups.c.kind == "smart").limit(1))

IN_CHUNK = 500  # ids per IN (...) list: SQLite allows 32,766 parameters, and small lists plan well
INSERT_CHUNK = 5000


def _chunks(items: Iterable[str], size: int = IN_CHUNK) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _group(row: Any) -> dict[str, Any]:
    data = dict(row._mapping)
    for key in ("created_at", "updated_at", "evaluated_at"):
        data[key] = as_utc(data[key])
    return data


class GroupStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    # -- groups -------------------------------------------------------------------------------

    def create(self, name: str, kind: str, query: str | None, description: str | None) -> int:
        now = utcnow()
        try:
            with self._engine.begin() as conn:
                return int(
                    conn.execute(
                        insert(groups)
                        .values(
                            name=name,
                            kind=kind,
                            query=query,
                            description=description,
                            member_count=0,
                            created_at=now,
                            updated_at=now,
                        )
                        .returning(groups.c.id)
                    ).scalar_one()
                )
        except IntegrityError:
            raise Conflict(f"a group named {name!r} exists already") from None

    def update(self, group_id: int, values: dict[str, Any]) -> None:
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    update(groups).where(groups.c.id == group_id).values(**values, updated_at=utcnow())
                )
        except IntegrityError:
            raise Conflict(f"a group named {values.get('name')!r} exists already") from None

    def delete(self, group_id: int) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(group_members).where(group_members.c.group_id == group_id))
            conn.execute(delete(groups).where(groups.c.id == group_id))

    def by_name(self, name: str) -> dict[str, Any] | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(groups).where(groups.c.name == name)).first()
        return None if row is None else _group(row)

    def ids(self, names: Collection[str], ids: Collection[int]) -> tuple[dict[str, int], set[int]]:
        """Of these names and ids, the groups that exist: name -> id, and the ids (one query)."""
        if not names and not ids:
            return {}, set()
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(groups.c.id, groups.c.name).where(
                    or_(groups.c.name.in_(list(names)), groups.c.id.in_(list(ids)))
                )
            ).all()
        return {name: group_id for group_id, name in rows}, {group_id for group_id, _ in rows}

    def has_smart(self) -> bool:
        """Whether any smart group exists (else a device's new facts move it nowhere). Asked in
        device requests, so read on a pooled cursor (HotRead)."""
        return _ANY_SMART.first(self._engine, {}) is not None

    def all(self) -> list[dict[str, Any]]:
        """Every group (id, name, kind, query): the dependency graph of smart groups is built from it."""
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(groups.c.id, groups.c.name, groups.c.kind, groups.c.query).order_by(groups.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def page(self, limit: int, after: str | None) -> list[dict[str, Any]]:
        query = select(groups).order_by(groups.c.name).limit(limit)
        if after is not None:
            query = query.where(groups.c.name > after)
        with reading(self._engine) as conn:
            return [_group(r) for r in conn.execute(query)]

    def names_of(self, device_id: str) -> list[str]:
        """The groups a device is a member of, by name."""
        with reading(self._engine) as conn:
            return list(
                conn.execute(
                    select(groups.c.name)
                    .join(group_members, group_members.c.group_id == groups.c.id)
                    .where(group_members.c.device_id == device_id)
                    .order_by(groups.c.name)
                ).scalars()
            )

    # -- membership ---------------------------------------------------------------------------

    def members_page(self, group_id: int, limit: int, after: str | None) -> list[str]:
        query = (
            select(group_members.c.device_id)
            .where(group_members.c.group_id == group_id)
            .order_by(group_members.c.device_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(group_members.c.device_id > after)
        with reading(self._engine) as conn:
            return list(conn.execute(query).scalars())

    def members(self, group_id: int, device_ids: Collection[str] | None = None) -> set[str]:
        """The group's members (among `device_ids` when given)."""
        with reading(self._engine) as conn:
            return self._members(conn, group_id, device_ids)

    def memberships(self, device_ids: Collection[str]) -> dict[int, set[str]]:
        """Group id -> which of these devices are in it, for every group, in one query per chunk
        (re-evaluating a device after a check-in reads this once, not once per group)."""
        found: dict[int, set[str]] = {}
        with reading(self._engine) as conn:
            for chunk in _chunks(sorted(set(device_ids))):
                for group_id, device_id in conn.execute(
                    select(group_members.c.group_id, group_members.c.device_id).where(
                        group_members.c.device_id.in_(chunk)
                    )
                ):
                    found.setdefault(group_id, set()).add(device_id)
        return found

    @staticmethod
    def _members(conn: Connection, group_id: int, device_ids: Collection[str] | None) -> set[str]:
        base = select(group_members.c.device_id).where(group_members.c.group_id == group_id)
        if device_ids is None:
            return set(conn.execute(base).scalars())
        found: set[str] = set()
        for chunk in _chunks(device_ids):
            found.update(conn.execute(base.where(group_members.c.device_id.in_(chunk))).scalars())
        return found

    def apply(
        self,
        group_id: int,
        add: Collection[str],
        remove: Collection[str],
        *,
        evaluated: bool = False,
    ) -> None:
        """Add and remove members in one transaction and recount; `evaluated` stamps a full
        evaluation of a smart group."""
        now = utcnow()
        with self._engine.begin() as conn:
            self._write(conn, group_id, add, remove, now)
            values: dict[str, Any] = {"member_count": self._count(conn, group_id)}
            if evaluated:
                values["evaluated_at"] = now
            conn.execute(update(groups).where(groups.c.id == group_id).values(**values))

    def replace(self, group_id: int, device_ids: Collection[str]) -> tuple[int, int]:
        """Make the members exactly `device_ids`; returns (added, removed)."""
        now = utcnow()
        wanted = set(device_ids)
        with self._engine.begin() as conn:
            current = self._members(conn, group_id, None)
            add, remove = wanted - current, current - wanted
            self._write(conn, group_id, add, remove, now)
            conn.execute(
                update(groups)
                .where(groups.c.id == group_id)
                .values(member_count=self._count(conn, group_id), updated_at=now)
            )
        return len(add), len(remove)

    def _write(
        self, conn: Connection, group_id: int, add: Collection[str], remove: Collection[str], now: datetime
    ) -> None:
        if add:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            stmt = dialect.insert(group_members).on_conflict_do_nothing()
            for chunk in _chunks(sorted(add), INSERT_CHUNK):
                conn.execute(stmt, [{"group_id": group_id, "device_id": d, "added_at": now} for d in chunk])
        for chunk in _chunks(sorted(remove)):
            conn.execute(
                delete(group_members).where(
                    group_members.c.group_id == group_id, group_members.c.device_id.in_(chunk)
                )
            )

    @staticmethod
    def _count(conn: Connection, group_id: int) -> int:
        return int(
            conn.execute(
                select(func.count()).select_from(group_members).where(group_members.c.group_id == group_id)
            ).scalar_one()
        )

    # -- scopes -------------------------------------------------------------------------------

    def scope(
        self,
        include: Collection[int],
        exclude: Collection[int],
        *,
        limit: int | None = None,
        after: str | None = None,
    ) -> list[str]:
        """Device ids in any `include` group and in no `exclude` group, in id order (a page of
        them with `limit`/`after`).

        A page walks each included group's members in order on the primary key, from `after`,
        skipping excluded devices by a primary-key lookup, and stops at `limit` per group; the
        pages are merged. It reads about `limit` rows per included group however large the
        groups are. Without a limit it is one query over the membership.
        """
        if not include:
            return []
        gm = group_members.c
        excluded = group_members.alias("excluded")
        query = select(gm.device_id).order_by(gm.device_id)
        if exclude:
            query = query.where(
                ~select(excluded.c.device_id)
                .where(excluded.c.group_id.in_(list(exclude)), excluded.c.device_id == gm.device_id)
                .exists()
            )
        if after is not None:
            query = query.where(gm.device_id > after)
        with reading(self._engine) as conn:
            if limit is None:
                whole = query.where(gm.group_id.in_(list(include))).group_by(gm.device_id)
                return list(conn.execute(whole).scalars())
            found: set[str] = set()
            for group_id in sorted(set(include)):
                found.update(conn.execute(query.where(gm.group_id == group_id).limit(limit)).scalars())
        return sorted(found)[:limit]
