"""`GroupService`: static and smart device groups, and scopes built from them.

Membership of both kinds is stored (`group_members`), so a scope is one indexed SQL query.
A smart group's membership is recomputed:

* for every device, when its query changes (and then for the smart groups that use it through
  `in_group`, in dependency order);
* for the devices concerned, when their facts change (`on_facts_changed`, subscribed to the
  MDM core's `DeviceFactsChanged` by the composition root) or a static group they are added to
  or removed from is used by a smart group;
* for every device, by `refresh_clock_groups` (groups whose query uses `last_checkin`, whose
  answer moves with the clock) and `reconcile` (all of them), the periodic work.

Each evaluation reads the facts of the devices concerned once, through the `DeviceFacts` port,
evaluates each query over all of them in Python (see `russet.groups.evaluate`), and writes the
difference with the stored membership in bulk.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from russet.groups.csvimport import MAX_IDENTIFIER_CHARS, bad_lines, read_identifiers
from russet.groups.evaluate import compile_query
from russet.groups.ports import DeviceFacts
from russet.groups.query import Node, group_refs, parse, uses_time
from russet.groups.store import GroupStore
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.kernel.events import DeviceFactsChanged, EventBus, GroupMembersChanged
from russet.kernel.tasks import PeriodicTask
from russet.storage.db import utcnow

log = logging.getLogger("russet.groups")

MAX_NAME_CHARS = 100
MAX_DESCRIPTION_CHARS = 500
MAX_IDENTIFIERS = 100_000  # per add/remove call
MAX_PAGE = 1000
KINDS = ("static", "smart")
CLOCK_GROUPS_SECONDS = 300.0  # groups using last_checkin: their answer moves with time
RECONCILE_SECONDS = 3600.0  # every group, for facts changed without an event
_NAME_FORBIDDEN = set('/\\"') | {chr(c) for c in range(32)} | {"\x7f"}


@dataclass(frozen=True)
class Scope:
    """Devices in any `include` group and in no `exclude` group; groups by name (str) or id (int)."""

    include: Sequence[str | int]
    exclude: Sequence[str | int] = field(default_factory=tuple)


@functools.lru_cache(maxsize=1024)
def _parsed(query: str) -> Node:
    """Stored queries are parsed each time the dependency graph is built; parse each text once."""
    return parse(query)


class _Graph:
    """Every group by name, and for smart groups the names they use through in_group."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.by_name = {r["name"]: r for r in rows}
        self.nodes: dict[str, Node] = {}
        self.refs: dict[str, set[str]] = {}
        for r in rows:
            if r["kind"] == "smart" and r["query"]:
                node = _parsed(r["query"])
                self.nodes[r["name"]] = node
                self.refs[r["name"]] = group_refs(node)

    def users_of(self, name: str) -> list[str]:
        """Smart groups that use `name` through in_group."""
        return sorted(g for g, refs in self.refs.items() if name in refs)

    def cycle(self, start: str) -> list[str] | None:
        """The shortest path start -> ... -> start through in_group, if there is one."""
        parents: dict[str, str] = {}
        frontier = [start]
        while frontier:
            following: list[str] = []
            for name in frontier:
                for ref in sorted(self.refs.get(name, ())):
                    if ref == start:
                        path = [name]
                        while path[-1] != start:
                            path.append(parents[path[-1]])
                        return [start, *reversed(path[:-1]), start] if name != start else [start, start]
                    if ref not in parents:
                        parents[ref] = name
                        following.append(ref)
            frontier = following
        return None

    def downstream(self, names: Collection[str]) -> list[str]:
        """The smart groups among `names` and those using them (transitively), dependencies first."""
        wanted = {n for n in names if n in self.nodes}
        frontier = list(names)
        while frontier:
            name = frontier.pop()
            for user in self.users_of(name):
                if user not in wanted:
                    wanted.add(user)
                    frontier.append(user)
        return [n for n in self.order() if n in wanted]

    def order(self) -> list[str]:
        """Every smart group, each after the smart groups it uses."""
        done: list[str] = []
        placed: set[str] = set()

        def place(name: str) -> None:
            if name in placed or name not in self.nodes:
                return
            placed.add(name)  # stored graphs have no cycles: they are refused before storing
            for ref in sorted(self.refs[name]):
                place(ref)
            done.append(name)

        for name in sorted(self.nodes):
            place(name)
        return done


def _in_use(name: str, users: list[str]) -> Conflict:
    used_by = ", ".join(users)
    return Conflict(f"group {name!r} is used through in_group by {used_by}: change their queries first")


def _check_name(name: str) -> str:
    if not name or name != name.strip():
        raise Invalid("group name: empty, or with spaces around it")
    if len(name) > MAX_NAME_CHARS:
        raise Invalid(f"group name: longer than {MAX_NAME_CHARS} characters")
    if set(name) & _NAME_FORBIDDEN:
        raise Invalid('group name: control characters, /, \\ and " are not allowed')
    return name


def _check_description(description: str | None) -> str | None:
    if description is not None and (len(description) > MAX_DESCRIPTION_CHARS or "\x00" in description):
        raise Invalid(f"description: at most {MAX_DESCRIPTION_CHARS} characters, no NUL")
    return description or None


class GroupService:
    def __init__(
        self,
        engine: Engine,
        facts: DeviceFacts,
        *,
        clock: Callable[[], datetime] = utcnow,
        events: EventBus | None = None,
    ) -> None:
        self._store = GroupStore(engine)
        self._facts = facts
        self._clock = clock
        self._events = events or EventBus()  # GroupMembersChanged after an admin's member change

    # -- reading ------------------------------------------------------------------------------

    def page(self, *, limit: int = 100, after: str | None = None) -> dict[str, Any]:
        """A page of groups by name (keyset: pass the last name as `after`)."""
        limit = max(1, min(limit, MAX_PAGE))
        rows = self._store.page(limit, after)
        return {"groups": rows, "next": rows[-1]["name"] if len(rows) == limit else None}

    def show(self, name: str, *, limit: int = 100, after: str | None = None) -> dict[str, Any]:
        """The group, with a page of its members by device id (keyset: `after` the last id)."""
        group = self._require(name)
        limit = max(1, min(limit, MAX_PAGE))
        members = self._store.members_page(group["id"], limit, after)
        return {**group, "members": members, "next": members[-1] if len(members) == limit else None}

    def lookup(self, names: Collection[str] = (), ids: Collection[int] = ()) -> dict[str, int]:
        """Name -> id of the groups among these names and ids, in one query: for a surface that
        shows and takes groups by name where a scope stores ids (the console's blueprint form)."""
        return self._store.ids(list(names), list(ids))[0]

    def groups_of(self, device_id: str) -> list[str]:
        """The names of the groups a device is in."""
        return self._store.names_of(device_id)

    def _require(self, name: str) -> dict[str, Any]:
        group = self._store.by_name(name)
        if group is None:
            raise NotFound(f"no group named {name!r}")
        return group

    # -- defining -----------------------------------------------------------------------------

    def create(
        self, name: str, *, query: str | None = None, description: str | None = None, kind: str | None = None
    ) -> dict[str, Any]:
        """A static group (no query) or a smart group (its query), evaluated at once."""
        _check_name(name)
        description = _check_description(description)
        kind = kind or ("smart" if query is not None else "static")
        if kind not in KINDS:
            raise Invalid(f"kind: static or smart, not {kind!r}")
        if kind == "static" and query is not None:
            raise Invalid("a static group has no query (its members are added by UDID or serial)")
        if self._store.by_name(name) is not None:
            raise Conflict(f"a group named {name!r} exists already")
        if kind == "smart":
            if query is None:
                raise Invalid("a smart group needs a query")
            graph = _Graph(self._store.all())
            self._check_query(graph, name, query)
        self._store.create(name, kind, query, description)
        if kind == "smart":
            self._evaluate(_Graph(self._store.all()), [name], None)
        return self._require(name)

    def update(
        self,
        name: str,
        *,
        new_name: str | None = None,
        query: str | None = None,
        description: str | None = None,
    ) -> dict[str, Any]:
        """Rename, change the query (re-evaluated, with the groups using it) or the description."""
        group = self._require(name)
        graph = _Graph(self._store.all())
        values: dict[str, Any] = {}
        if new_name is not None and new_name != name:
            _check_name(new_name)
            users = graph.users_of(name)
            if users:
                raise _in_use(name, users)
            values["name"] = new_name
        if query is not None:
            if group["kind"] != "smart":
                raise Invalid(f"group {name!r} is static: it has no query")
            self._check_query(graph, name, query)
            values["query"] = query
        if description is not None:
            values["description"] = _check_description(description)
        if values:
            self._store.update(group["id"], values)
        final = values.get("name", name)
        if "query" in values and values["query"] != group["query"]:
            graph = _Graph(self._store.all())
            self._evaluate(graph, graph.downstream([final]), None)
        return self._require(final)

    def delete(self, name: str) -> dict[str, Any]:
        group = self._require(name)
        users = _Graph(self._store.all()).users_of(name)
        if users:
            raise _in_use(name, users)
        self._store.delete(group["id"])
        return {"deleted": name, "members": group["member_count"]}

    def _check_query(self, graph: _Graph, name: str, query: str) -> Node:
        """Parse the query and check the groups it uses exist and that `name` with it makes no
        cycle; raises Invalid naming the problem (nothing is stored then)."""
        node = parse(query)
        refs = group_refs(node)
        missing = sorted(r for r in refs if r not in graph.by_name and r != name)
        if missing:
            raise Invalid("query: in_group names no group called " + ", ".join(repr(m) for m in missing))
        graph.refs[name] = refs
        graph.nodes[name] = node
        cycle = graph.cycle(name)
        if cycle:
            raise Invalid("query: cyclic group definition: " + " -> ".join(cycle) + " (through in_group)")
        return node

    # -- static members -----------------------------------------------------------------------

    def add_members(self, name: str, identifiers: Collection[str]) -> dict[str, Any]:
        """Add devices named by UDID or serial number to a static group (all or none)."""
        group = self._static(name)
        device_ids = self._resolve([(None, i) for i in identifiers])
        before = group["member_count"]
        self._store.apply(group["id"], device_ids, ())
        self._members_changed(name, device_ids)
        after = self._require(name)["member_count"]
        return {"group": name, "added": after - before, "members": after}

    def remove_members(self, name: str, identifiers: Collection[str]) -> dict[str, Any]:
        """Remove devices named by UDID or serial number from a static group."""
        group = self._static(name)
        device_ids = self._resolve([(None, i) for i in identifiers])
        before = group["member_count"]
        self._store.apply(group["id"], (), device_ids)
        self._members_changed(name, device_ids)
        after = self._require(name)["member_count"]
        return {"group": name, "removed": before - after, "members": after}

    def import_csv(self, name: str, data: bytes, *, replace: bool = False) -> dict[str, Any]:
        """Add (or with `replace`, set) a static group's members from a CSV whose first column
        holds UDIDs or serial numbers. Any bad line fails the whole import, naming each line."""
        group = self._static(name)
        rows = read_identifiers(data)
        device_ids = self._resolve(rows)
        if replace:
            before = self._store.members(group["id"])
            added, removed = self._store.replace(group["id"], device_ids)
            changed = before.symmetric_difference(device_ids)
        else:
            self._store.apply(group["id"], device_ids, ())
            changed = set(device_ids)
            added, removed = self._require(name)["member_count"] - group["member_count"], 0
        self._members_changed(name, changed)
        return {
            "group": name,
            "rows": len(rows),
            "added": added,
            "removed": removed,
            "members": self._require(name)["member_count"],
        }

    def _members_changed(self, name: str, device_ids: Collection[str]) -> None:
        """After a static group's members changed: the groups built on it follow, then the others
        (the blueprints scoped to it) hear of it."""
        self._propagate(name, device_ids)
        if device_ids:
            self._events.publish(GroupMembersChanged(name, tuple(sorted(device_ids))))

    def _static(self, name: str) -> dict[str, Any]:
        group = self._require(name)
        if group["kind"] != "static":
            raise Conflict(f"group {name!r} is smart: its members come from its query")
        return group

    def _resolve(self, rows: Sequence[tuple[int | None, str]]) -> set[str]:
        """Device ids of the identifiers; Invalid naming every one (with its line) that names none."""
        if not rows:
            raise Invalid("no devices given")
        if len(rows) > MAX_IDENTIFIERS:
            raise Invalid(f"at most {MAX_IDENTIFIERS} devices at once")
        for line, ident in rows:
            if not ident or len(ident) > MAX_IDENTIFIER_CHARS or "\x00" in ident:
                where = f"line {line}: " if line else ""
                raise Invalid(f"{where}{ident[:40]!r} is not a UDID or serial number")
        found = self._facts.resolve({ident for _, ident in rows})
        missing = [(line, ident) for line, ident in rows if ident not in found]
        if missing:
            if missing[0][0] is not None:
                raise bad_lines(
                    [f"line {line}: no device with UDID or serial {ident!r}" for line, ident in missing]
                )
            shown = ", ".join(repr(i) for _, i in missing[:20])
            raise Invalid(f"no device with UDID or serial {shown}" + (" …" if len(missing) > 20 else ""))
        return {d for _, ident in rows for d in found[ident]}

    # -- evaluation ---------------------------------------------------------------------------

    def preview(self, query: str, *, limit: int = 50) -> dict[str, Any]:
        """The devices a query picks now, without storing anything: their count and the first
        `limit` device ids."""
        graph = _Graph(self._store.all())
        node = self._check_query(graph, "\x00preview", query)
        facts = self._facts.facts(None)
        picked = self._pick(graph, node, facts)
        ids = sorted(picked)
        return {"query": query, "count": len(ids), "devices": ids[: max(0, min(limit, MAX_PAGE))]}

    def on_facts_changed(self, event: DeviceFactsChanged) -> None:
        """Re-evaluate every smart group for the devices whose facts changed."""
        if event.device_ids:
            self.refresh(event.device_ids)

    def refresh(self, device_ids: Collection[str]) -> None:
        """Re-evaluate every smart group for these devices only."""
        if not self._store.has_smart():
            return  # runs in device requests: with no smart group, one indexed read
        graph = _Graph(self._store.all())
        self._evaluate(graph, graph.order(), set(device_ids))

    def reconcile(self) -> dict[str, Any]:
        """Re-evaluate every smart group for every device (facts are read once for all of them)."""
        graph = _Graph(self._store.all())
        order = graph.order()
        self._evaluate(graph, order, None)
        return {"groups": len(order)}

    def tasks(self) -> list[PeriodicTask]:
        """Smart groups whose answer changes without a check-in: those using `last_checkin` (time
        passes), and every group once an hour for facts written elsewhere (an ABM sync's account,
        a forgotten device, batched last-seen times)."""
        return [
            PeriodicTask(
                "groups.clock",
                CLOCK_GROUPS_SECONDS,
                self.refresh_clock_groups,
                once_across_nodes=True,
                first_delay=CLOCK_GROUPS_SECONDS,
                description="re-evaluate smart groups whose query uses last_checkin",
            ),
            PeriodicTask(
                "groups.reconcile",
                RECONCILE_SECONDS,
                self.reconcile,
                once_across_nodes=True,
                first_delay=RECONCILE_SECONDS,
                description="re-evaluate every smart group for every device",
            ),
        ]

    def refresh_clock_groups(self) -> dict[str, Any]:
        """Re-evaluate, for every device, the smart groups whose query uses `last_checkin` (their
        answer changes as time passes) and those using them. The periodic task calls this."""
        graph = _Graph(self._store.all())
        order = graph.downstream([n for n, node in graph.nodes.items() if uses_time(node)])
        if order:
            self._evaluate(graph, order, None)
        return {"groups": len(order)}

    def _evaluate(self, graph: _Graph, order: Sequence[str], device_ids: set[str] | None) -> None:
        """Recompute the smart groups in `order` (dependencies first) for `device_ids` (None: all)."""
        if not order:
            return
        facts = self._facts.facts(device_ids)
        # For a few devices, every group's stored membership of them in one read; for all
        # devices, each group's members as it comes.
        stored = None if device_ids is None else self._store.memberships(device_ids)

        def members(name: str) -> set[str]:
            group_id = graph.by_name[name]["id"]
            return self._store.members(group_id) if stored is None else stored.get(group_id, set())

        computed: dict[str, set[str]] = {}
        now = self._clock()
        for name in order:
            node = graph.nodes[name]
            refs = {ref: computed[ref] if ref in computed else members(ref) for ref in group_refs(node)}
            predicate = compile_query(node, now, refs)
            wanted = {f["device_id"] for f in facts if predicate(f)}
            current = members(name)
            add, remove = wanted - current, current - wanted
            if add or remove or device_ids is None:
                self._store.apply(graph.by_name[name]["id"], add, remove, evaluated=device_ids is None)
            if add or remove:
                log.info("group %s: %d devices joined, %d left", name, len(add), len(remove))
            computed[name] = wanted

    def _pick(self, graph: _Graph, node: Node, facts: list[dict[str, Any]]) -> set[str]:
        """The devices a query (of a group not stored) picks; the groups it uses as stored."""
        refs = {ref: self._store.members(graph.by_name[ref]["id"]) for ref in group_refs(node)}
        predicate = compile_query(node, self._clock(), refs)
        return {f["device_id"] for f in facts if predicate(f)}

    def _propagate(self, name: str, device_ids: Collection[str]) -> None:
        """A static group's membership changed for these devices: re-evaluate the smart groups using it."""
        if not device_ids:
            return
        graph = _Graph(self._store.all())
        order = graph.downstream([name])
        if order:
            self._evaluate(graph, order, set(device_ids))

    # -- scopes -------------------------------------------------------------------------------

    def scope_devices(self, scope: Scope, *, limit: int | None = None, after: str | None = None) -> list[str]:
        """Device ids in the scope (any include group, no exclude group), in id order; one query
        over the stored membership, paged with `limit`/`after` when given."""
        refs = [*scope.include, *scope.exclude]
        by_name, ids = self._store.ids(
            [r for r in refs if isinstance(r, str)], [r for r in refs if isinstance(r, int)]
        )
        for ref in refs:
            if ref not in (ids if isinstance(ref, int) else by_name):
                raise NotFound(
                    f"no group with id {ref}" if isinstance(ref, int) else f"no group named {ref!r}"
                )

        def group_id(ref: str | int) -> int:
            return ref if isinstance(ref, int) else by_name[ref]

        include = [group_id(r) for r in scope.include]
        exclude = [group_id(r) for r in scope.exclude]
        return self._store.scope(include, exclude, limit=limit, after=after)
