"""`BlueprintService`: blueprints' use cases and the reconciler's executor.

Definitions (create, update, delete, show) are checked whole before anything is stored. The
PayloadIdentifier rule: **a PayloadIdentifier belongs to at most one blueprint**, whatever their
scopes (scopes move as groups change, so a rule about overlapping scopes would let tomorrow's
group change create a conflict nobody was asked about). Saving a blueprint that would claim an
identifier another blueprint holds is refused (Conflict naming both). A conflict can still appear
later, when a library profile pinned to "latest" gets a version with another blueprint's
identifier, or when two blueprints set one setting to different values on a device: the
reconciler then reports it for each device where both apply and applies neither there.

A pass (`reconcile`) works a batch of devices at a time: it reads their records, reports and
re-checks in one query each, decides with the pure `reconcile.plan_device`, queues the commands
through the `CommandSender` port (one command for all devices that get the same bytes) and writes
the batch's records in one transaction. One pass runs at a time across processes (a lease row).
The MDM core calls `on_command_result` when a device answers a command the reconciler queued.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
import zoneinfo
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from russet import bulkgc
from russet.blueprints.ade import AdeSetups, AdeSetupStore
from russet.blueprints.ports import (
    AdeBlueprints,
    Apps,
    CommandSender,
    Declarations,
    DeviceReport,
    Profiles,
    ProfileVersion,
    ReportedState,
    Scopes,
)
from russet.blueprints.reconcile import (
    APP,
    APP_LIST,
    AWAIT_LICENCE,
    FAILED,
    IN_SYNC,
    INSTALL,
    INSTALL_APP,
    PENDING,
    PROFILE,
    PROFILE_LIST,
    REMOVE,
    REMOVE_APP,
    REMOVES,
    SETTING,
    SETTING_ITEMS,
    SETTINGS,
    Action,
    Desired,
    DevicePlan,
    ItemState,
    Merged,
    Policy,
    combo_digest,
    may_skip,
    merge,
    plan_device,
    settled_token,
    unknown_variables,
)
from russet.blueprints.store import BlueprintRow, BlueprintStore, DeviceItemStore, ItemRow, error_text
from russet.blueprints.writebehind import WriteBehind
from russet.kernel.errors import Conflict, Invalid, NotFound, RussetError
from russet.kernel.events import (
    BlueprintsChanged,
    CommandAnswered,
    DeviceAwaitingConfiguration,
    DeviceFactsChanged,
    EventBus,
    InventoryChanged,
)
from russet.kernel.tasks import PeriodicTask
from russet.storage.db import utcnow

log = logging.getLogger("russet.blueprints")

MAX_ITEMS = 100  # of each kind in one blueprint
MAX_GROUPS = 1000  # in each of include and exclude
MAX_ID = 2**63 - 1
MAX_PLAN_LISTED = 1000  # devices listed with their actions in a pass's answer
SEND_CHUNK = 10_000  # targets per send_command
LEASE = timedelta(minutes=10)
CREATED_BY = "reconciler"
# The RequestTypes the reconciler queues (`_commands`): answers to others are not its business.
QUEUED_KINDS = frozenset(
    {
        "InstallProfile",
        "RemoveProfile",
        "Settings",
        "ProfileList",
        "InstallApplication",
        "RemoveApplication",
        "ManagedApplicationList",
    }
)
MAX_CONFIGURATION_BYTES = 64 * 1024  # a managed app configuration, as JSON
MAX_CONFIGURATION_DEPTH = 10
PASS_SECONDS = 30.0  # how often the periodic task looks for devices to reconcile
_EMPTY = Merged({}, {})
# Declarations a blueprint lists: stored as items of this kind (the column holds 10 characters),
# each claiming its Identifier under this prefix in the items' unique claim column, so that a
# declaration belongs to one blueprint (as a PayloadIdentifier does), concurrent saves included.
DECLARATION = "ddm"
FEW_DEVICES = 50  # declaration_scope for at most this many devices reads their groups, not scopes
DECLARATION_CLAIM = "ddm:"


@dataclass(frozen=True, slots=True)
class ProfileRef:
    """A library profile in a blueprint: pinned to `version`, or the latest when None."""

    ref: str
    version: int | None = None


@dataclass(frozen=True, slots=True)
class AppRef:
    """A catalogue app in a blueprint, with its managed app configuration (a dictionary) if any."""

    ref: str
    configuration: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class BlueprintSpec:
    """A whole blueprint as an admin writes it (create and update take the same)."""

    name: str
    description: str = ""
    profiles: tuple[ProfileRef, ...] = ()
    device_name: str | None = None  # a pattern: $SERIAL, $UDID, $MODEL
    time_zone: str | None = None  # IANA name, e.g. Europe/Paris
    apps: tuple[AppRef | str, ...] = ()  # catalogue apps (a bare ref: no configuration)
    declarations: tuple[str, ...] = ()  # declaration Identifiers (the declarative feature's)
    include: tuple[int, ...] = ()  # group ids
    exclude: tuple[int, ...] = ()


@dataclass(slots=True)
class _Pass:
    """What one pass found and did, summed over its batches."""

    dry_run: bool
    devices: int = 0
    commands: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    states: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    deferred: int = 0
    skipped: int = 0  # settled devices a full pass did not need to re-plan
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    plan: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False

    def error(self, text: str) -> None:
        log.warning("reconcile: %s", text)
        if len(self.errors) < 20:
            self.errors.append(text)

    def answer(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "devices": self.devices,
            "devices_settled_skipped": self.skipped,
            "commands": dict(self.commands),
            "commands_total": sum(self.commands.values()),
            "deferred": self.deferred,
            "states": dict(self.states),
            "devices_with_conflicts": self.conflicts,
            "errors": self.errors,
            "plan": self.plan,
            "plan_truncated": self.truncated,
        }


class BlueprintService:
    def __init__(
        self,
        engine: Engine,
        scopes: Scopes,
        profiles: Profiles,
        sender: CommandSender,
        reported: ReportedState,
        *,
        max_in_flight: int = 5,
        recheck_after: timedelta = timedelta(days=1),
        pending_timeout: timedelta = timedelta(days=3),
        full_pass_every: timedelta = timedelta(hours=1),
        batch_size: int = 2000,
        clock: Callable[[], datetime] = utcnow,
        ade: AdeBlueprints | None = None,
        ade_release_after: timedelta = timedelta(minutes=15),
        apps: Apps | None = None,
        declarations: Declarations | None = None,
        events: EventBus | None = None,
        write_behind: bool | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.blueprints = BlueprintStore(engine)
        self.items = DeviceItemStore(engine)
        self.scopes = scopes
        self.profiles = profiles
        self.sender = sender
        self.reported = reported
        self.apps = apps
        self.declarations = declarations
        self.events = events or EventBus()
        self.policy = Policy(max_in_flight, recheck_after, pending_timeout)
        self.full_pass_every = full_pass_every
        self.batch_size = batch_size
        # A pass writes batch N on a second thread while it reads and plans batch N+1 (writebehind):
        # by default on PostgreSQL only. On SQLite the writing thread and the planning one share
        # the GIL and SQLite's single writer, and a pass took longer with it (measured).
        self.write_behind = engine.dialect.name == "postgresql" if write_behind is None else write_behind
        self.clock = clock
        self.ade = ade  # devices whose ADE profile names a blueprint: in its scope too
        self.setups = AdeSetups(
            AdeSetupStore(engine),
            sender,
            self._plan_for,
            self._reconcile_now,
            self.items.start_over,
            release_after=ade_release_after,
            clock=clock,
            created_by=CREATED_BY,
        )

    # -- definitions ------------------------------------------------------------------------------

    def list_blueprints(self) -> list[dict[str, Any]]:
        return [_summary(b) for b in self.blueprints.all()]

    def get(self, ident: int | str) -> dict[str, Any]:
        return _detail(self.blueprints.get(ident))

    def create(self, spec: BlueprintSpec, *, created_by: str) -> dict[str, Any]:
        rows = self._checked(spec, None)
        new_id = self.blueprints.save(
            None,
            name=spec.name,
            description=spec.description,
            items=rows,
            include=spec.include,
            exclude=spec.exclude,
            created_by=created_by[:100],
            now=self.clock(),
        )
        self.events.publish(BlueprintsChanged(new_id))
        return self.get(new_id)

    def update(self, ident: int | str, spec: BlueprintSpec) -> dict[str, Any]:
        current = self.blueprints.get(ident)
        rows = self._checked(spec, current.id)
        self.blueprints.save(
            current.id,
            name=spec.name,
            description=spec.description,
            items=rows,
            include=spec.include,
            exclude=spec.exclude,
            created_by=current.created_by,
            now=self.clock(),
        )
        self.events.publish(BlueprintsChanged(current.id))
        return self.get(current.id)

    def delete(self, ident: int | str) -> dict[str, Any]:
        """Delete a blueprint; the next pass removes what it put on devices (and only that)."""
        current = self.blueprints.get(ident)
        self.blueprints.delete(current.id, self.clock())
        self.events.publish(BlueprintsChanged(current.id))
        return {"deleted": current.id, "name": current.name}

    def uses_of_identifier(self, payload_identifier: str) -> list[str]:
        """Who uses the profile with this PayloadIdentifier, in words for a refusal ("blueprint
        'Office'"): the profile library does not delete a profile a blueprint names."""
        taken = self.blueprints.claims([payload_identifier], other_than=None)
        return [f"blueprint {name!r}" for name in taken.values()]

    def _checked(self, spec: BlueprintSpec, own_id: int | None) -> list[ItemRow]:
        """The spec's items as rows, profile refs resolved to the PayloadIdentifiers they claim;
        Invalid or Conflict (nothing stored) when anything is wrong."""
        _check_text(spec.name, "name", 100)
        if spec.name.strip() != spec.name or spec.name.isdigit():
            raise Invalid("name: no leading or trailing spaces, and not only digits (those are ids)")
        _check_text(spec.description, "description", 2000, empty=True)
        for what, values in (
            ("profiles", spec.profiles),
            ("apps", spec.apps),
            ("declarations", spec.declarations),
        ):
            if len(values) > MAX_ITEMS:
                raise Invalid(f"{what}: at most {MAX_ITEMS} in one blueprint")
        for what, groups in (("include", spec.include), ("exclude", spec.exclude)):
            if len(groups) > MAX_GROUPS:
                raise Invalid(f"scope {what}: at most {MAX_GROUPS} groups")
            if len(set(groups)) != len(groups):
                raise Invalid(f"scope {what}: a group is named twice")
            for g in groups:
                if isinstance(g, bool) or not isinstance(g, int) or not 1 <= g <= MAX_ID:
                    raise Invalid(f"scope {what}: {g!r} is not a group id")
        both = set(spec.include) & set(spec.exclude)
        if both:
            raise Invalid(f"scope: group {min(both)} is both included and excluded")
        rows: list[ItemRow] = []
        claimed: dict[str, str] = {}
        seen_refs: set[str] = set()
        for item in spec.profiles:
            _check_text(item.ref, "profile ref", 255)
            if item.version is not None and (
                isinstance(item.version, bool) or not 1 <= item.version <= 2**31 - 1
            ):
                raise Invalid(f"profile {item.ref!r}: version must be a positive number")
            if item.ref in seen_refs:
                raise Invalid(f"profile {item.ref!r} is named twice")
            seen_refs.add(item.ref)
            pv = self._resolve(item.ref, item.version, refusing=True)
            if pv.payload_identifier in claimed:
                raise Invalid(
                    f"profiles {claimed[pv.payload_identifier]!r} and {item.ref!r} have the same "
                    f"PayloadIdentifier {pv.payload_identifier!r}; a device can hold only one of them"
                )
            claimed[pv.payload_identifier] = item.ref
            rows.append(ItemRow(PROFILE, item.ref, item.version, None, pv.payload_identifier))
        if spec.device_name is not None:
            _check_text(spec.device_name, "device_name", 200)
            unknown = unknown_variables(spec.device_name)
            if unknown:
                raise Invalid(f"device_name: unknown variable {unknown[0]}; use $SERIAL, $UDID or $MODEL")
            rows.append(ItemRow(SETTING, "device_name", None, spec.device_name))
        if spec.time_zone is not None:
            _check_text(spec.time_zone, "time_zone", 100)
            try:
                zoneinfo.ZoneInfo(spec.time_zone)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise Invalid(
                    f"time_zone: {spec.time_zone!r} is not an IANA time zone (e.g. Europe/Paris)"
                ) from None
            rows.append(ItemRow(SETTING, "time_zone", None, spec.time_zone))
        in_scope: set[str] = set()
        if spec.include or spec.exclude:
            try:  # the groups service names an unknown group
                in_scope = self.scopes.devices_in(list(spec.include), list(spec.exclude))
            except NotFound as exc:
                raise Invalid(f"scope: {exc}") from None
        rows += self._checked_apps(spec.apps, in_scope)
        declared = self._checked_declarations(spec.declarations)
        rows += declared
        taken = self.blueprints.claims(
            [*claimed, *(r.payload_identifier for r in declared if r.payload_identifier)], other_than=own_id
        )
        if taken:
            pid = sorted(taken)[0]
            if pid.startswith(DECLARATION_CLAIM):
                identifier = pid.removeprefix(DECLARATION_CLAIM)
                raise Conflict(
                    f"declaration {identifier!r} is already in blueprint {taken[pid]!r}; it cannot also "
                    f"be in blueprint {spec.name!r}: a declaration belongs to one blueprint (assign it "
                    "to a group to give it to more devices)"
                )
            raise Conflict(
                f"PayloadIdentifier {pid!r} (profile {claimed[pid]!r}) is already in blueprint "
                f"{taken[pid]!r}; "
                f"it cannot also be in blueprint {spec.name!r}: a PayloadIdentifier belongs to one blueprint"
            )
        return rows

    def _checked_apps(self, refs: Sequence[AppRef | str], in_scope: set[str]) -> list[ItemRow]:
        """App items as rows (the catalogue's name, the configuration as JSON): an unknown app is
        Invalid, too few licences left for the devices in scope a Conflict naming the app."""
        rows: list[ItemRow] = []
        seen: set[str] = set()
        for entry in refs:
            item = entry if isinstance(entry, AppRef) else AppRef(entry)
            _check_text(item.ref, "app ref", 255)
            if self.apps is None:
                raise Invalid("apps: this server has no app catalogue")
            try:
                app = self.apps.app(item.ref)
            except NotFound as exc:
                raise Invalid(f"app {item.ref!r}: {exc}") from None
            if app.ref in seen:
                raise Invalid(f"apps: app {app.ref!r} is named twice")
            seen.add(app.ref)
            config = _configuration_json(app.ref, item.configuration)
            short = self.apps.shortfall(app.ref, sorted(in_scope)) if in_scope else None
            if short:
                raise Conflict(short)
            rows.append(ItemRow(APP, app.ref, None, config))
        return rows

    def _checked_declarations(self, identifiers: Sequence[str]) -> list[ItemRow]:
        """Declaration items as rows: an unknown declaration or one named twice is Invalid."""
        rows: list[ItemRow] = []
        seen: set[str] = set()
        for identifier in identifiers:
            _check_text(identifier, "declaration", 64)
            if self.declarations is None:
                raise Invalid("declarations: this server has no declarative management")
            if identifier in seen:
                raise Invalid(f"declaration {identifier!r} is named twice")
            seen.add(identifier)
            try:
                self.declarations.declaration_kind(identifier)
            except NotFound as exc:
                raise Invalid(f"declaration {identifier!r}: {exc}") from None
            rows.append(ItemRow(DECLARATION, identifier, None, None, DECLARATION_CLAIM + identifier))
        return rows

    def uses_of_declaration(self, identifier: str) -> list[str]:
        """Who lists the declaration, in words for a refusal: a declaration in use is not deleted."""
        return [f"blueprint {name!r}" for name in self.declaration_items().get(identifier, [])]

    def declaration_items(self) -> dict[str, list[str]]:
        """Declaration Identifier -> the names of the blueprints that list it."""
        named: dict[str, list[str]] = defaultdict(list)
        for bp in self.blueprints.all():
            for it in bp.items:
                if it.kind == DECLARATION:
                    named[it.ref].append(bp.name)
        return dict(named)

    def declaration_scope(self, device_ids: Collection[str] | None = None) -> dict[str, dict[str, str]]:
        """Device -> {declaration Identifier: the blueprint that lists it} for every device in the
        scope of a blueprint listing declarations (only `device_ids`, when given). Scopes are read
        in bulk, one query per blueprint, never device by device; ADE profiles count as for the
        other items. A declaration belongs to one blueprint, so no device gets one from two."""
        if not self.blueprints.has_items_of(DECLARATION):
            return {}  # the common case, asked on every facts change: one indexed read
        listing = [bp for bp in self.blueprints.all() if any(it.kind == DECLARATION for it in bp.items)]
        if not listing:
            return {}
        membership: dict[str, list[int]] = defaultdict(list)
        if device_ids is not None and len(device_ids) <= FEW_DEVICES:
            # A few devices (one whose facts changed): their groups, not every scope's devices.
            for device_id in device_ids:
                membership[device_id] = list(self._blueprints_of(device_id, listing))
        else:
            for bp in listing:
                if bp.include:
                    for device_id in self.scopes.devices_in(list(bp.include), list(bp.exclude)):
                        membership[device_id].append(bp.id)
        self._add_ade_scope(membership, {bp.id: None for bp in listing})
        wanted = None if device_ids is None else set(device_ids)
        by_id = {bp.id: bp for bp in listing}
        out: dict[str, dict[str, str]] = {}
        for device_id, ids in membership.items():
            if wanted is not None and device_id not in wanted:
                continue
            out[device_id] = {
                it.ref: by_id[b].name for b in sorted(ids) for it in by_id[b].items if it.kind == DECLARATION
            }
        return out

    def uses_of_app(self, name: str) -> list[str]:
        """Who uses the catalogue app `name`, in words for a refusal: an app in use is not deleted."""
        return [
            f"blueprint {bp.name!r}"
            for bp in self.blueprints.all()
            if any(it.kind == APP and it.ref == name for it in bp.items)
        ]

    def mark_devices(self, device_ids: Sequence[str]) -> None:
        """These devices' circumstances changed outside the MDM core (an app licence was assigned or
        refused): the next periodic pass looks at them."""
        if device_ids:
            self.items.mark_dirty(list(device_ids))

    def _resolve(self, ref: str, version: int | None, *, refusing: bool = False) -> ProfileVersion:
        try:
            return self.profiles.latest(ref) if version is None else self.profiles.version(ref, version)
        except NotFound as exc:
            if refusing:
                raise Invalid(
                    f"profile {ref!r}{'' if version is None else f' version {version}'}: {exc}"
                ) from None
            raise

    # -- desired state ----------------------------------------------------------------------------

    def _desired(
        self, run: _Pass, *, scoped: bool = True
    ) -> tuple[dict[int, list[Desired]], dict[str, tuple[int, ...]], set[int]]:
        """Each blueprint's resolved items, each device's blueprints (unless not `scoped`: then
        none, for one device's view, `_blueprints_of`), and the blueprints whose items cannot be
        resolved now (their devices are left alone this pass rather than have profiles removed
        because the library lost a version)."""
        per_blueprint: dict[int, list[Desired]] = {}
        broken: set[int] = set()
        membership: dict[str, list[int]] = defaultdict(list)
        for bp in self.blueprints.all():
            wanted: list[Desired] = []
            for item in bp.items:
                if item.kind == PROFILE:
                    try:
                        pv = self._resolve(item.ref, item.version)
                    except NotFound as exc:
                        run.error(
                            f"blueprint {bp.name!r}: profile {item.ref!r}: {exc}; "
                            "its devices are left as they are"
                        )
                        broken.add(bp.id)
                        break
                    wanted.append(
                        Desired(
                            PROFILE,
                            pv.payload_identifier,
                            bp.id,
                            pv.ref,
                            pv.version,
                            pv.payload_uuid,
                            pv.content_hash,
                        )
                    )
                elif item.kind == SETTING:
                    wanted.append(Desired(SETTING, SETTING_ITEMS[item.ref], bp.id, value=item.value))
                elif item.kind == APP:
                    try:
                        if self.apps is None:
                            raise NotFound("this server has no app catalogue")
                        app = self.apps.app(item.ref)
                    except NotFound as exc:
                        run.error(
                            f"blueprint {bp.name!r}: app {item.ref!r}: {exc}; its devices are left alone"
                        )
                        broken.add(bp.id)
                        break
                    target = hashlib.sha256(f"{app.content_hash}|{item.value or ''}".encode()).hexdigest()
                    wanted.append(
                        Desired(APP, app.bundle_id, bp.id, app.ref, content_hash=target, value=item.value)
                    )
            per_blueprint[bp.id] = wanted
            if bp.include and scoped:
                for device_id in self.scopes.devices_in(list(bp.include), list(bp.exclude)):
                    membership[device_id].append(bp.id)
        self._add_ade_scope(membership, per_blueprint)
        return per_blueprint, {d: tuple(sorted(ids)) for d, ids in membership.items()}, broken

    def _add_ade_scope(self, membership: dict[str, list[int]], per_blueprint: Mapping[int, Any]) -> None:
        """A device enrolled through an ADE profile that names a blueprint is in that blueprint's
        scope too, unless one of the blueprint's exclude groups holds it (exclusion wins, as for
        its include groups). A blueprint deleted since is ignored."""
        if self.ade is None:
            return
        by_blueprint: dict[int, list[str]] = defaultdict(list)
        for device_id, blueprint_id in self.ade.ade_blueprints().items():
            if blueprint_id in per_blueprint:
                by_blueprint[blueprint_id].append(device_id)
        if not by_blueprint:
            return
        excludes = {bp.id: bp.exclude for bp in self.blueprints.all() if bp.id in by_blueprint and bp.exclude}
        for blueprint_id, device_ids in by_blueprint.items():
            excluded: set[str] = set()
            if blueprint_id in excludes:
                excluded = self.scopes.devices_in(list(excludes[blueprint_id]), [])
            for device_id in device_ids:
                if device_id not in excluded and blueprint_id not in membership[device_id]:
                    membership[device_id].append(blueprint_id)

    # -- the executor -----------------------------------------------------------------------------

    def reconcile(
        self,
        devices: Sequence[str] | None = None,
        *,
        dry_run: bool = False,
        retry_failed: bool = False,
        created_by: str = CREATED_BY,
    ) -> dict[str, Any]:
        """One pass over every device in a blueprint's scope or holding the reconciler's records
        (or only `devices`): queue what closes the difference, record it. `dry_run` plans only."""
        if devices is not None:
            for d in devices:
                _check_text(d, "device", 300)
        holder = uuid.uuid4().hex
        now = self.clock()
        if not dry_run and not self.items.acquire(holder, now, now + LEASE, full=devices is None):
            until = self.items.run_state()["expires_at"]
            raise Conflict(
                f"another reconcile pass is running (its lease ends {until:%Y-%m-%d %H:%M:%S}Z)"
                if until
                else "another reconcile pass is running"
            )
        try:
            # A pass over a fleet holds a batch's records, plans and states (a million tuples at
            # 100,000 devices x 10 items): with the default thresholds the collector re-scanned
            # them over and over, about a fifth of the pass's CPU (profiled).
            with bulkgc.relaxed():
                return self._pass(devices, dry_run, retry_failed, created_by, holder).answer()
        finally:
            if not dry_run:
                self.items.release(holder)

    def _pass(
        self, devices: Sequence[str] | None, dry_run: bool, retry_failed: bool, created_by: str, holder: str
    ) -> _Pass:
        run = _Pass(dry_run)
        per_blueprint, membership, broken = self._desired(run)
        universe = set(membership) | self.items.devices()
        targets = sorted(universe if devices is None else set(devices))
        policy = Policy(
            self.policy.max_in_flight, self.policy.recheck_after, self.policy.pending_timeout, retry_failed
        )
        combos: dict[tuple[int, ...], tuple[Merged, str]] = {}
        may_skip_settled = devices is None and not retry_failed  # a full pass; named devices are re-planned
        one_batch = len(targets) <= self.batch_size  # nothing to overlap: no thread (a device's own pass)
        with WriteBehind(inline=dry_run or not self.write_behind or one_batch) as writer:
            for start in range(0, len(targets), self.batch_size):
                batch = targets[start : start + self.batch_size]
                now = self.clock()
                if not dry_run:
                    self.items.renew(holder, now + LEASE)
                reports = self.reported.reported(batch)
                marks = self.items.marks(batch)
                todo: list[tuple[str, Merged, str]] = []
                for device_id in batch:
                    combo = membership.get(device_id, ())
                    if broken.intersection(combo):
                        continue
                    known = combos.get(combo)
                    if known is None:
                        merged = merge(d for b in combo for d in per_blueprint[b])
                        known = combos[combo] = (merged, combo_digest(merged))
                    merged, digest = known
                    report = reports.get(device_id)
                    token = settled_token(digest, report)
                    mark = marks.get(device_id)
                    if (
                        may_skip_settled
                        and mark is not None
                        and mark.settled == token
                        and not mark.dirty
                        and mark.recheck_uuid is None
                        and may_skip(merged, report, now, policy)
                    ):
                        run.devices += 1
                        run.skipped += 1
                        run.states[IN_SYNC] += len(merged.items)
                        continue
                    todo.append((device_id, merged, token))
                records = self.items.records([d for d, _, _ in todo])
                plans: list[DevicePlan] = []
                settled: dict[str, str | None] = {}
                for device_id, merged, token in todo:
                    mark = marks.get(device_id)
                    asked = mark.recheck_at if mark else None
                    pending = bool(mark and mark.recheck_uuid) and (
                        asked is None or now - asked < policy.pending_timeout
                    )
                    plan = plan_device(
                        device_id,
                        merged,
                        records.get(device_id, {}),
                        reports.get(device_id),
                        policy,
                        now,
                        recheck_pending=pending,
                    )
                    plans.append(plan)
                    new_mark = token if plan.settled else None
                    if new_mark != (mark.settled if mark else None):
                        settled[device_id] = new_mark
                self._count(run, plans)
                if not dry_run:
                    writer.wait()  # the previous batch's records are stored before this batch's commands go
                    self._execute(plans, settled, now, created_by, run, writer)
        return run

    def _count(self, run: _Pass, plans: Sequence[DevicePlan]) -> None:
        for plan in plans:
            run.devices += 1
            run.deferred += plan.deferred
            conflicted = False
            for state in plan.states:
                run.states[state.state] += 1
                conflicted = conflicted or state.state == "conflict"
            run.conflicts += conflicted
            if run.dry_run:  # a real pass counts what was actually queued, in _execute
                for action in plan.actions:
                    run.commands[action.action] += 1
            if (plan.actions or conflicted) and run.dry_run:
                if len(run.plan) < MAX_PLAN_LISTED:
                    run.plan.append(_plan_json(plan))
                else:
                    run.truncated = True

    def _execute(
        self,
        plans: Sequence[DevicePlan],
        settled: Mapping[str, str | None],
        now: datetime,
        created_by: str,
        run: _Pass,
        writer: WriteBehind,
    ) -> None:
        """Queue a batch's actions (grouped into as few commands as the bytes allow) and write what
        was queued, forgotten or adopted, in one transaction (on `writer`'s thread, while the next
        batch is read and planned)."""
        groups: dict[tuple[Any, ...], list[tuple[str, Action]]] = defaultdict(list)
        for plan in plans:
            for action in plan.actions:
                if action.action == INSTALL:
                    groups[(INSTALL, action.ref, action.version)].append((plan.device_id, action))
                elif action.action == REMOVE:
                    groups[(REMOVE, action.ident)].append((plan.device_id, action))
                elif action.action == SETTINGS:
                    groups[(SETTINGS, action.ident, action.value)].append((plan.device_id, action))
                elif action.action == INSTALL_APP:
                    groups[(INSTALL_APP, action.ref, action.value)].append((plan.device_id, action))
                elif action.action == REMOVE_APP:
                    groups[(REMOVE_APP, action.ident)].append((plan.device_id, action))
                elif action.action == APP_LIST:
                    groups[(APP_LIST,)].append((plan.device_id, action))
                else:
                    groups[(PROFILE_LIST,)].append((plan.device_id, action))
        upserts: list[dict[str, Any]] = []
        rechecks: dict[str, str] = {}
        for plan in plans:
            for ref in plan.released:
                self._release(plan.device_id, ref, run)
        for key in [k for k in groups if k[0] == INSTALL_APP]:
            groups[key] = self._licensed(groups[key], now, run, upserts)
        for key, members in groups.items():
            for command, batch in self._commands(key, members, run):
                queued = self._send(batch, command, created_by, run)
                for device_id, action in batch:
                    command_uuid = queued.get(device_id)
                    if command_uuid is None:
                        continue
                    run.commands[action.action] += 1
                    if action.action in (PROFILE_LIST, APP_LIST):
                        rechecks[device_id] = command_uuid
                        continue
                    upserts.append(
                        {
                            "device_id": device_id,
                            "kind": action.kind,
                            "ident": action.ident,
                            "blueprint_id": action.blueprint_id,
                            "state": PENDING,
                            "action": action.action,
                            "installed": action.installed,
                            "ref": action.ref,
                            "version": action.version,
                            "payload_uuid": action.payload_uuid,
                            "content_hash": action.content_hash,
                            "value": action.value,
                            "command_uuid": command_uuid,
                            "error": None,
                            "queued_at": now,
                            "acked_at": action.acked_at,
                        }
                    )
        writer.submit(
            self.items.write,
            upserts=upserts,
            forget=[(p.device_id, k, i) for p in plans for (k, i) in p.forget],
            adopt=[(p.device_id, k, i, b) for p in plans for ((k, i), b) in p.adopt],
            rechecks=rechecks,
            reconciled=[p.device_id for p in plans],
            now=now,
            settled=settled,
        )

    def _commands(
        self, key: tuple[Any, ...], members: list[tuple[str, Action]], run: _Pass
    ) -> list[tuple[dict[str, Any], list[tuple[str, Action]]]]:
        """The command(s) for one group of actions: one per distinct rendered profile."""
        kind = key[0]
        if kind == REMOVE:
            return [({"RequestType": "RemoveProfile", "Identifier": key[1]}, members)]
        if kind == SETTINGS:
            item = key[1]
            return [({"RequestType": "Settings", "Settings": [{"Item": item, item: key[2]}]}, members)]
        if kind == PROFILE_LIST:
            return [({"RequestType": "ProfileList", "ManagedOnly": True}, members)]
        if kind == APP_LIST:
            return [({"RequestType": "ManagedApplicationList"}, members)]
        if kind == REMOVE_APP:
            return [({"RequestType": "RemoveApplication", "Identifier": key[1]}, members)]
        if kind == INSTALL_APP:
            return self._app_commands(key[1], key[2], members, run)
        by_bytes: dict[bytes, list[tuple[str, Action]]] = defaultdict(list)
        for device_id, action in members:
            assert action.ref is not None and action.version is not None
            try:
                payload = self.profiles.render(action.ref, action.version, device_id)
            except RussetError as exc:
                run.error(f"{device_id}: profile {action.ref!r} version {action.version}: {exc}")
                continue
            by_bytes[payload].append((device_id, action))
        return [({"RequestType": "InstallProfile", "Payload": p}, m) for p, m in by_bytes.items()]

    def _app_commands(
        self, ref: str, config: str | None, members: list[tuple[str, Action]], run: _Pass
    ) -> list[tuple[dict[str, Any], list[tuple[str, Action]]]]:
        """InstallApplication for each device (one command for all whose command is the same)."""
        assert self.apps is not None
        configuration = json.loads(config) if config else None
        by_command: dict[str, tuple[dict[str, Any], list[tuple[str, Action]]]] = {}
        for device_id, action in members:
            try:
                command = self.apps.install_command(ref, device_id, configuration)
            except RussetError as exc:
                run.error(f"{device_id}: app {ref!r}: {exc}")
                continue
            key = json.dumps(command, sort_keys=True)
            by_command.setdefault(key, (command, []))[1].append((device_id, action))
        return list(by_command.values())

    def _licensed(
        self, members: list[tuple[str, Action]], now: datetime, run: _Pass, upserts: list[dict[str, Any]]
    ) -> list[tuple[str, Action]]:
        """The installs whose Apps and Books licence is there; the others are recorded waiting for
        it (asked of Apple by the catalogue) or failed with the reason (no licence left...)."""
        assert self.apps is not None
        ready: list[tuple[str, Action]] = []
        for device_id, action in members:
            assert action.ref is not None
            try:
                state, why = self.apps.licence(device_id, action.ref, retry=action.reason == "retry")
            except RussetError as exc:
                state, why = "failed", str(exc)
            if state == "ready":
                ready.append((device_id, action))
                continue
            if state != "waiting":
                run.error(f"{device_id}: app {action.ref!r}: {why}")
            upserts.append(
                _record_row(
                    device_id,
                    action,
                    state=PENDING if state == "waiting" else FAILED,
                    action_name=AWAIT_LICENCE,
                    command_uuid=None,
                    error=None if state == "waiting" else error_text([], why),
                    now=now,
                )
            )
        return ready

    def _release(self, device_id: str, ref: str, run: _Pass) -> None:
        if self.apps is None:
            return
        try:
            self.apps.release(device_id, ref)
        except RussetError as exc:
            run.error(f"{device_id}: app {ref!r}: licence not given back: {exc}")

    def _send(
        self, batch: list[tuple[str, Action]], command: dict[str, Any], created_by: str, run: _Pass
    ) -> dict[str, str]:
        """Queue `command` for the batch's devices; device -> CommandUUID of those queued."""
        queued: dict[str, str] = {}
        devices = [d for d, _ in batch]
        for start in range(0, len(devices), SEND_CHUNK):
            chunk = devices[start : start + SEND_CHUNK]
            try:
                answer = self.sender.send_command(chunk, command, created_by=created_by)
            except RussetError as exc:
                run.error(f"{command['RequestType']} for {len(chunk)} devices not queued: {exc}")
                continue
            for entry in answer.get("commands", []):
                queued[entry["device"]] = entry["command_uuid"]
        return queued

    # -- periodic work ----------------------------------------------------------------------------

    def reconcile_due(self) -> dict[str, Any]:
        """What the periodic task calls: a full pass when a blueprint changed since the last one
        (or `full_pass_every` has passed), else the devices whose commands were answered. A pass
        already running elsewhere makes this one a no-op."""
        state = self.items.run_state()
        now = self.clock()
        full = (
            state["full_pass_at"] is None
            or (state["changed_at"] is not None and state["changed_at"] >= state["full_pass_at"])
            or now - state["full_pass_at"] >= self.full_pass_every
        )
        devices = None if full else self.items.dirty()
        if devices == []:
            return {"skipped": "nothing to do"}
        try:
            return self.reconcile(devices)
        except Conflict as exc:
            return {"skipped": str(exc)}

    def tasks(self) -> list[PeriodicTask]:
        """The reconciler's periodic pass (`reconcile_due`), once across nodes: devices whose
        commands were answered or whose reports changed every `PASS_SECONDS`, every device after a
        blueprint or scope change and every `full_pass_every`."""
        return [
            PeriodicTask(
                "blueprints.reconcile",
                PASS_SECONDS,
                self.reconcile_due,
                once_across_nodes=True,
                first_delay=PASS_SECONDS,
                description="reconcile devices with their blueprints: those with news, or all "
                "after a change and once an hour",
            ),
            PeriodicTask(
                "blueprints.ade_release",
                PASS_SECONDS,
                self.setups.advance_waiting,
                once_across_nodes=True,
                first_delay=PASS_SECONDS,
                description="send DeviceConfigured to ADE devices in Setup Assistant whose items are "
                "done, or that waited longer than RUSSET_ADE_RELEASE_MINUTES",
            ),
        ]

    def mark_changed(self) -> None:
        """Scopes changed outside blueprints (a group's members): the next periodic pass is full."""
        self.blueprints.mark_changed(self.clock())

    # -- results from devices ---------------------------------------------------------------------

    def on_command_answered(self, event: CommandAnswered) -> None:
        """The MDM core's CommandAnswered event (subscribed by the composition root). Answers to
        commands of kinds the reconciler never queues are not looked up: this runs in the device's
        request."""
        if event.request_type == "DeviceConfigured":
            self.setups.answered(event.device_id, event.command_uuid, event.status)
        elif event.request_type in QUEUED_KINDS:
            self.on_command_result(event.device_id, event.command_uuid, event.status, event.result)

    def on_facts_changed(self, event: DeviceFactsChanged) -> None:
        """These devices' facts changed (enrollment, DeviceInformation: they may have moved between
        smart groups, which the groups service re-evaluates first): reconcile them in the next
        periodic pass, without waiting for a full one."""
        if event.device_ids and self.blueprints.any():
            self.items.mark_dirty(event.device_ids)

    def on_inventory_changed(self, event: InventoryChanged) -> None:
        """An answer brought inventory: a ProfileList or an app list may show drift, so the device
        is reconciled in the next pass. An answer that changed facts came with DeviceFactsChanged,
        which marked it already."""
        if not event.facts and self.blueprints.any():
            self.items.mark_dirty((event.device_id,))

    def on_command_result(
        self, device_id: str, command_uuid: str, status: str, result: Mapping[str, Any] | None
    ) -> bool:
        """A device answered a command (the MDM core calls this for every answer and for commands
        that ended without one: cancelled, undeliverable). Moves the item to in_sync or failed
        (with Apple's ErrorChain), asks a ProfileList re-check after a profile change, and marks
        the device for the next pass. False when the command was not the reconciler's."""
        record = self.items.by_command(device_id, command_uuid)
        if record is None:
            if status == "NotNow":
                return False
            rechecked = self.items.recheck_answered(device_id, command_uuid)
            if rechecked and self.setups.is_waiting(device_id):  # its next item may fit now
                self.setups.advance(device_id)
            return rechecked
        if status == "NotNow":
            return True  # still in flight: the device will be asked again
        now = self.clock()
        if status == "Acknowledged":
            state = None if record.action in REMOVES else IN_SYNC
            settled = self.items.settle(device_id, record, state=state, error=None, now=now)
        else:
            chain = _error_chain(result)
            rejected = result.get("RejectionReason") if isinstance(result, Mapping) else None
            reason = (
                None
                if status in ("Error", "CommandFormatError") and chain
                else f"rejected: {rejected[:100]}"
                if isinstance(rejected, str)
                else f"command ended {status[:40]}"
            )
            settled = self.items.settle(
                device_id, record, state=FAILED, error=error_text(chain, reason), now=now
            )
        if settled and record.kind == APP and record.action == REMOVE_APP and status == "Acknowledged":
            if record.ref and self.apps is not None:
                try:
                    self.apps.release(device_id, record.ref)
                except RussetError as exc:
                    log.warning(
                        "reconcile: licence of %r on %s not given back: %s", record.ref, device_id, exc
                    )
        if (
            settled
            and record.kind in (PROFILE, APP)
            and status == "Acknowledged"
            and not self.items.has_recheck(device_id)
        ):
            recheck = (
                {"RequestType": "ProfileList", "ManagedOnly": True}
                if record.kind == PROFILE
                else {"RequestType": "ManagedApplicationList"}
            )
            try:
                answer = self.sender.send_command([device_id], recheck, created_by=CREATED_BY)
            except RussetError as exc:
                log.warning("reconcile: ProfileList re-check for %s not queued: %s", device_id, exc)
            else:
                uuids = {e["device"]: e["command_uuid"] for e in answer.get("commands", [])}
                if device_id in uuids:
                    self.items.write(
                        upserts=[],
                        forget=[],
                        adopt=[],
                        rechecks={device_id: uuids[device_id]},
                        reconciled=[],
                        now=now,
                    )
        if self.setups.is_waiting(device_id):  # an ADE device in Setup Assistant: release it when done
            self.setups.advance(device_id)
        return True

    # -- per device -------------------------------------------------------------------------------

    def _blueprints_of(self, device_id: str, definitions: Sequence[BlueprintRow]) -> tuple[int, ...]:
        """The blueprints whose scope holds one device through its groups (in an included group, in
        no excluded one): what `_desired` finds for it, without reading every scope's devices (the
        console's device page, with 100,000 devices)."""
        groups = self.scopes.groups_of(device_id)
        return tuple(
            sorted(
                bp.id
                for bp in definitions
                if groups.intersection(bp.include) and not groups.intersection(bp.exclude)
            )
        )

    def _device_plan(
        self, device_id: str, run: _Pass
    ) -> tuple[tuple[int, ...], set[int], dict[Any, Any], DeviceReport | None, DevicePlan]:
        """One device's blueprints (by its groups and by its ADE profile), the broken ones, its
        records, its report, and the plan a pass would make for it now."""
        per_blueprint, ade_membership, broken = self._desired(run, scoped=False)  # membership: ADE only
        by_groups = self._blueprints_of(device_id, self.blueprints.all())
        combo = tuple(sorted({*by_groups, *ade_membership.get(device_id, ())}))
        records = self.items.records([device_id]).get(device_id, {})
        report = self.reported.reported([device_id]).get(device_id)
        mark = self.items.marks([device_id]).get(device_id)
        merged = merge(d for b in combo for d in per_blueprint[b])
        plan = plan_device(
            device_id,
            merged,
            records,
            report,
            self.policy,
            self.clock(),
            recheck_pending=bool(mark and mark.recheck_uuid),
        )
        return combo, broken, records, report, plan

    def _plan_for(self, device_id: str) -> tuple[tuple[int, ...], DevicePlan]:
        """For the ADE setup: the device's blueprints and its plan now."""
        combo, _, _, _, plan = self._device_plan(device_id, _Pass(dry_run=True))
        return combo, plan

    def _reconcile_now(self, device_id: str) -> None:
        """Reconcile one device at once (an ADE device in Setup Assistant); when another pass holds
        the lease, the device is marked for the next periodic pass instead."""
        try:
            self.reconcile([device_id])
        except Conflict:
            self.items.mark_dirty([device_id])

    def device_state(self, device_id: str) -> dict[str, Any]:
        """Desired vs actual for one device: each item's state (drift included), the commands the
        next pass would queue, conflicts, the app refs its blueprints hold, and its ADE setup."""
        _check_text(device_id, "device", 300)
        run = _Pass(dry_run=True)
        combo, broken, records, report, plan = self._device_plan(device_id, run)
        setup = self.setups.view(device_id)
        if not combo and not records and report is None and setup is None:
            raise NotFound(f"no device {device_id!r} in any blueprint's scope, nor known to the MDM core")
        names = self.blueprints.names({*combo, *(r.blueprint_id for r in records.values())})
        definitions = self.blueprints.all()
        apps = [
            {
                "blueprint": bp.name,
                "ref": it.ref,
                "configuration": json.loads(it.value) if it.value else None,
            }
            for bp in definitions
            if bp.id in combo
            for it in bp.items
            if it.kind == "app"
        ]
        return {
            "device": device_id,
            "blueprints": [{"id": b, "name": names.get(b)} for b in combo],
            "left_alone": sorted(broken.intersection(combo)),
            "items": [_state_json(s, names) for s in plan.states],
            "next_pass": [_action_json(a) for a in plan.actions],
            "deferred": plan.deferred,
            "apps": apps,
            "declarations": [
                {"blueprint": bp.name, "identifier": it.ref}
                for bp in definitions
                if bp.id in combo
                for it in bp.items
                if it.kind == DECLARATION
            ],
            "profiles_reported_at": _iso(report.profiles_at) if report else None,
            "setup": setup,
            "errors": run.errors,
        }

    # -- Automated Device Enrollment: items first, then DeviceConfigured (russet/blueprints/ade.py)

    def on_awaiting_configuration(self, event: DeviceAwaitingConfiguration) -> None:
        """The MDM core's DeviceAwaitingConfiguration (subscribed by the composition root)."""
        self.setups.awaiting(event.device_id, event.enrolled_at)

    def setup_of(self, device_id: str) -> dict[str, Any] | None:
        """The device's round in Setup Assistant (DeviceConfigured: when, why, what was incomplete)."""
        _check_text(device_id, "device", 300)
        return self.setups.view(device_id)


# -- helpers --------------------------------------------------------------------------------------


def _check_text(value: Any, what: str, limit: int, *, empty: bool = False) -> None:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be text")
    if not value and not empty:
        raise Invalid(f"{what} must not be empty")
    if len(value) > limit:
        raise Invalid(f"{what} is longer than {limit} characters")
    if "\x00" in value:
        raise Invalid(f"{what}: NUL characters are not allowed")


def _error_chain(result: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Apple's ErrorChain from a command result, bounded (8 entries, 500 characters a string)."""
    chain = result.get("ErrorChain") if isinstance(result, Mapping) else None
    if not isinstance(chain, list):
        return []
    out = []
    for entry in chain[:8]:
        if not isinstance(entry, Mapping):
            continue
        kept: dict[str, Any] = {}
        for key in ("ErrorCode", "ErrorDomain", "LocalizedDescription", "USEnglishDescription"):
            value = entry.get(key)
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                kept[key] = value
            elif isinstance(value, str):
                kept[key] = value[:500]
        out.append(kept)
    return out


def _configuration_json(ref: str, configuration: Mapping[str, Any] | None) -> str | None:
    """A managed app configuration as stored (compact JSON): a dictionary of plist-able values
    (text, numbers, booleans, arrays, dictionaries), bounded in depth and size."""
    if configuration is None:
        return None
    if not isinstance(configuration, Mapping):
        raise Invalid(f"app {ref!r}: configuration must be a dictionary")

    def check(value: Any, depth: int) -> None:
        if depth > MAX_CONFIGURATION_DEPTH:
            raise Invalid(f"app {ref!r}: configuration nests deeper than {MAX_CONFIGURATION_DEPTH} levels")
        if isinstance(value, Mapping):
            for k, v in value.items():
                if not isinstance(k, str) or not k or "\x00" in k:
                    raise Invalid(f"app {ref!r}: configuration keys must be non-empty text")
                check(v, depth + 1)
        elif isinstance(value, list):
            for v in value:
                check(v, depth + 1)
        elif value is None:
            raise Invalid(f"app {ref!r}: configuration values cannot be null (a property list has none)")
        elif isinstance(value, str) and "\x00" in value:
            raise Invalid(f"app {ref!r}: NUL characters are not allowed in the configuration")
        elif isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise Invalid(f"app {ref!r}: configuration integers must fit in 64 bits")
        elif not isinstance(value, str | int | float | bool):
            raise Invalid(
                f"app {ref!r}: configuration values must be text, numbers, booleans, arrays or dictionaries"
            )

    check(configuration, 1)
    text = json.dumps(configuration, sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(text.encode()) > MAX_CONFIGURATION_BYTES:
        raise Invalid(f"app {ref!r}: configuration is larger than {MAX_CONFIGURATION_BYTES // 1024} KiB")
    return text


def _record_row(
    device_id: str,
    action: Action,
    *,
    state: str,
    action_name: str,
    command_uuid: str | None,
    error: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "kind": action.kind,
        "ident": action.ident,
        "blueprint_id": action.blueprint_id,
        "state": state,
        "action": action_name,
        "installed": action.installed,
        "ref": action.ref,
        "version": action.version,
        "payload_uuid": action.payload_uuid,
        "content_hash": action.content_hash,
        "value": action.value,
        "command_uuid": command_uuid,
        "error": error,
        "queued_at": now,
        "acked_at": action.acked_at,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _summary(bp: BlueprintRow) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    for it in bp.items:
        counts[it.kind] += 1
    return {
        "id": bp.id,
        "name": bp.name,
        "description": bp.description,
        "profiles": counts["profile"],
        "settings": counts["setting"],
        "apps": counts["app"],
        "declarations": counts[DECLARATION],
        "include": list(bp.include),
        "exclude": list(bp.exclude),
        "updated_at": _iso(bp.updated_at),
    }


def _detail(bp: BlueprintRow) -> dict[str, Any]:
    settings = {it.ref: it.value for it in bp.items if it.kind == SETTING}
    return {
        "id": bp.id,
        "name": bp.name,
        "description": bp.description,
        "profiles": [
            {
                "ref": it.ref,
                "version": it.version if it.version is not None else "latest",
                "payload_identifier": it.payload_identifier,
            }
            for it in bp.items
            if it.kind == PROFILE
        ],
        "settings": {"device_name": settings.get("device_name"), "time_zone": settings.get("time_zone")},
        "apps": [it.ref for it in bp.items if it.kind == "app"],
        "app_configurations": {
            it.ref: json.loads(it.value) for it in bp.items if it.kind == "app" and it.value is not None
        },
        "declarations": [it.ref for it in bp.items if it.kind == DECLARATION],
        "scope": {"include": list(bp.include), "exclude": list(bp.exclude)},
        "created_by": bp.created_by,
        "created_at": _iso(bp.created_at),
        "updated_at": _iso(bp.updated_at),
    }


def _action_json(a: Action) -> dict[str, Any]:
    out: dict[str, Any] = {"action": a.action, "reason": a.reason}
    if a.action != PROFILE_LIST:
        out.update({"kind": a.kind, "item": a.ident, "blueprint": a.blueprint_id})
    if a.ref is not None:
        out.update({"profile": a.ref, "version": a.version, "payload_uuid": a.payload_uuid})
    if a.value is not None:
        out["value"] = a.value
    return out


def _state_json(s: ItemState, names: Mapping[int, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "kind": s.kind,
        "item": s.ident,
        "state": s.state,
        "detail": s.detail,
        "blueprints": [{"id": b, "name": (names or {}).get(b)} for b in s.blueprint_ids],
        "desired": s.desired,
        "actual": s.actual,
    }
    if s.error is not None:
        try:
            out["error"] = json.loads(s.error)
        except ValueError:
            out["error"] = s.error
    return out


def _plan_json(plan: DevicePlan) -> dict[str, Any]:
    return {
        "device": plan.device_id,
        "actions": [_action_json(a) for a in plan.actions],
        "deferred": plan.deferred,
        "conflicts": [_state_json(s) for s in plan.states if s.state == "conflict"],
    }


__all__ = ["AppRef", "BlueprintService", "BlueprintSpec", "DeviceReport", "ProfileRef"]
