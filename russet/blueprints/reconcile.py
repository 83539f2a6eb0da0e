"""The reconciler's decision, as a pure function: desired items vs what a device reported and what
the reconciler already did there -> the commands to queue and each item's state.

No storage, no clock, no I/O: the executor (`russet.blueprints.service`) reads everything in bulk,
calls `plan_device` once per device, queues the actions and writes back the records. Keeping the
decision pure is what lets its tests cover every case, and a pass over 100,000 devices stay a loop
over tuples.

The rules:
- A profile is installed when missing, reinstalled when *drifted* (a ProfileList answered after
  the install was acknowledged lacks it or shows another PayloadUUID), and replaced when its
  blueprint now wants another version.
- Only what the reconciler installed (a `Record` with `installed`) is ever removed, when no
  blueprint in scope still wants it. Profiles it did not install are never touched.
- Two blueprints in scope wanting different things for one PayloadIdentifier (or one setting)
  are a *conflict*: reported for the device, and neither is applied or removed there.
- A device never has more than `max_in_flight` commands in flight (everyone's, as the MDM core
  reports them, or the reconciler's own if more); what does not fit waits for a later pass.
- A failed item is not retried by itself (it would fail again on every pass) until its blueprint
  wants something else or a pass is asked to `retry_failed`.
- Apps follow the profiles' rules with ManagedApplicationList as their re-check: installed when
  missing, reinstalled when a later list lacks the app (or shows `ManagedButUninstalled`), failed
  when the device reports a failure state, removed (RemoveApplication) only when the reconciler
  installed it; a forgotten app record names its app in `DevicePlan.released` so the executor
  gives its licence back.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from russet.blueprints.ports import DeviceReport

PROFILE = "profile"
SETTING = "setting"
APP = "app"

# Record states (stored) and item states (shown).
PENDING = "pending"
IN_SYNC = "in_sync"
FAILED = "failed"
DRIFTED = "drifted"
CONFLICT = "conflict"

# Actions.
INSTALL = "install_profile"
REMOVE = "remove_profile"
SETTINGS = "settings"
PROFILE_LIST = "profile_list"
INSTALL_APP = "install_application"
REMOVE_APP = "remove_application"
APP_LIST = "app_list"
AWAIT_LICENCE = "await_licence"  # a record waiting for its Apps and Books licence, no command yet
REMOVES = (REMOVE, REMOVE_APP)

# ManagedApplicationList statuses: the app is there / it failed for good / it is gone.
APP_INSTALLED = frozenset({"Managed"})
APP_FAILED = frozenset(
    {"Failed", "UserRejected", "UpdateRejected", "ManagementRejected", "NeedsRedemption", "UserInstalledApp"}
)
APP_GONE = frozenset({"ManagedButUninstalled"})

# Setting items a blueprint may hold -> the Settings command's Item.
SETTING_ITEMS = {"device_name": "DeviceName", "time_zone": "TimeZone"}
# Variables a device name pattern may use -> how to fill them from the device's report.
NAME_VARIABLES = ("$SERIAL", "$UDID", "$MODEL")
_VARIABLE = re.compile(r"\$[A-Z_]+")

_VERIFIED = "verified by ProfileList"
_UNVERIFIED = "installed; ProfileList not asked since"
_APP_VERIFIED = "verified by ManagedApplicationList"
_APP_UNVERIFIED = "installed; ManagedApplicationList not asked since"

Key = tuple[str, str]  # (kind, ident): ident is the PayloadIdentifier or the setting's Item


class Desired(NamedTuple):
    """One item a blueprint wants on a device (profile versions already resolved)."""

    kind: str
    ident: str
    blueprint_id: int
    ref: str | None = None
    version: int | None = None
    payload_uuid: str | None = None
    content_hash: str | None = None
    value: str | None = None  # a setting's value; a device name pattern is expanded per device

    @property
    def key(self) -> Key:
        return (self.kind, self.ident)

    def same_target(self, other: Desired) -> bool:
        return (self.version, self.payload_uuid, self.content_hash, self.value, self.ref) == (
            other.version,
            other.payload_uuid,
            other.content_hash,
            other.value,
            other.ref,
        )


class Record(NamedTuple):
    """What the reconciler did for one item on one device (a `blueprint_device_items` row)."""

    kind: str
    ident: str
    blueprint_id: int
    state: str  # pending | in_sync | failed
    action: str  # the last action queued: install_profile | remove_profile | settings
    installed: bool  # the reconciler put this profile there (an InstallProfile was acknowledged)
    ref: str | None = None
    version: int | None = None
    payload_uuid: str | None = None
    content_hash: str | None = None
    value: str | None = None  # for settings: the expanded value queued or applied
    command_uuid: str | None = None
    error: str | None = None  # JSON: Apple's ErrorChain, or why the command ended
    queued_at: datetime | None = None
    acked_at: datetime | None = None

    @property
    def key(self) -> Key:
        return (self.kind, self.ident)


class Action(NamedTuple):
    """A command to queue for one device."""

    action: str  # install_profile | remove_profile | settings | profile_list
    kind: str
    ident: str
    blueprint_id: int | None
    reason: str  # missing | drifted | new version | left scope | changed | recheck | retry
    ref: str | None = None
    version: int | None = None
    payload_uuid: str | None = None
    content_hash: str | None = None
    value: str | None = None
    installed: bool = False  # carried from the record: a failed replacement keeps ownership
    acked_at: datetime | None = None


class ItemState(NamedTuple):
    """An item's state on a device after the plan, for people and the API."""

    kind: str
    ident: str
    blueprint_ids: tuple[int, ...]
    state: str  # in_sync | pending | failed | drifted | conflict
    detail: str = ""
    error: str | None = None
    desired: str | None = None  # the PayloadUUID or value wanted
    actual: str | None = None  # the PayloadUUID or value reported (or applied, for settings)


@dataclass(slots=True)
class DevicePlan:
    device_id: str
    actions: list[Action] = field(default_factory=list)
    states: list[ItemState] = field(default_factory=list)
    forget: list[Key] = field(default_factory=list)  # records to delete, no command needed
    adopt: list[tuple[Key, int]] = field(default_factory=list)  # record now owned by another blueprint
    deferred: int = 0  # actions left for a later pass by the in-flight bound
    released: list[str] = field(default_factory=list)  # app refs whose licence to give back
    # Nothing to do and every item in sync (profiles verified by a later ProfileList): until its
    # blueprints, its reports or its records change, a pass may skip the device (`settled_token`).
    settled: bool = False


@dataclass(frozen=True, slots=True)
class Policy:
    max_in_flight: int = 5
    recheck_after: timedelta = timedelta(days=1)  # ask ProfileList when the last answer is older
    pending_timeout: timedelta = timedelta(days=3)  # a command unanswered this long is tried again
    retry_failed: bool = False
    app_poll: timedelta = timedelta(minutes=5)  # ask ManagedApplicationList again while installing


@dataclass(frozen=True, slots=True)
class Merged:
    """The desired state of every device in one combination of blueprints."""

    items: Mapping[Key, Desired]
    conflicts: Mapping[Key, tuple[int, ...]]


def merge(claims: Iterable[Desired]) -> Merged:
    """The items of several blueprints: one per key, or a conflict when blueprints want different
    things for it. Two blueprints wanting the very same thing agree; the lowest id owns the item."""
    items: dict[Key, Desired] = {}
    claimants: dict[Key, set[int]] = {}
    conflicted: set[Key] = set()
    for claim in claims:
        key = claim.key
        claimants.setdefault(key, set()).add(claim.blueprint_id)
        held = items.get(key)
        if held is None:
            items[key] = claim
        elif not held.same_target(claim):
            conflicted.add(key)
        elif claim.blueprint_id < held.blueprint_id:
            items[key] = claim
    conflicts = {key: tuple(sorted(claimants[key])) for key in conflicted}
    for key in conflicted:
        del items[key]
    return Merged(items, conflicts)


def unknown_variables(pattern: str) -> list[str]:
    """Variables in a device name pattern that Russet cannot fill."""
    return sorted({v for v in _VARIABLE.findall(pattern) if v not in NAME_VARIABLES})


def expand(pattern: str, device_id: str, report: DeviceReport | None) -> str | None:
    """A device name pattern for one device; None while a variable it uses is not known yet."""
    values = {
        "$UDID": device_id,
        "$SERIAL": report.serial_number if report else None,
        "$MODEL": report.model if report else None,
    }
    out = pattern
    # Longest first, so no variable is a prefix of another's expansion.
    for name in sorted(NAME_VARIABLES, key=len, reverse=True):
        if name in out:
            value = values[name]
            if not value:
                return None
            out = out.replace(name, value)
    return out


def _after(later: datetime | None, earlier: datetime | None) -> bool:
    return later is not None and earlier is not None and later > earlier


def plan_device(
    device_id: str,
    merged: Merged,
    records: Mapping[Key, Record],
    report: DeviceReport | None,
    policy: Policy,
    now: datetime,
    *,
    recheck_pending: bool = False,
) -> DevicePlan:
    """Everything the reconciler decides for one device. `records` are the device's stored records,
    `recheck_pending` whether a ProfileList it asked is still unanswered."""
    plan = DevicePlan(device_id)
    removes: list[tuple[Action, ItemState]] = []
    installs: list[tuple[Action, ItemState, ItemState]] = []  # action, state if queued, if deferred
    in_flight_own = 0

    items, conflicts = merged.items, merged.conflicts
    keys: list[Key] = list(items)
    if conflicts:
        keys += [k for k in conflicts if k not in items]
    keys += [k for k in records if k not in items and k not in conflicts]
    released = plan.released
    profiles_at = report.profiles_at if report is not None else None
    reported = report.profiles if report is not None else {}
    states = plan.states
    for key in keys:
        kind, ident = key
        rec = records.get(key)
        desired = items.get(key)
        # The common case of a pass over a settled fleet, decided without further calls: a profile
        # installed as wanted and not contradicted by a later ProfileList (the full rules below).
        if (
            rec is not None
            and desired is not None
            and kind == PROFILE
            and rec.state == IN_SYNC
            and rec.action == INSTALL
            and rec.payload_uuid == desired.payload_uuid
            and rec.content_hash == desired.content_hash
            and rec.blueprint_id == desired.blueprint_id
        ):
            if profiles_at is None or rec.acked_at is None or profiles_at <= rec.acked_at:
                states.append(
                    ItemState(
                        kind,
                        ident,
                        (rec.blueprint_id,),
                        IN_SYNC,
                        _UNVERIFIED,
                        None,
                        desired.payload_uuid,
                        reported.get(ident),
                    )
                )
                continue
            if reported.get(ident) == rec.payload_uuid:
                states.append(
                    ItemState(
                        kind,
                        ident,
                        (rec.blueprint_id,),
                        IN_SYNC,
                        _VERIFIED,
                        None,
                        desired.payload_uuid,
                        rec.payload_uuid,
                    )
                )
                continue
        if rec is not None and rec.state == PENDING and rec.command_uuid is not None:
            if rec.queued_at is not None and now - rec.queued_at < policy.pending_timeout:
                in_flight_own += 1
                plan.states.append(
                    ItemState(
                        kind,
                        ident,
                        (rec.blueprint_id,),
                        PENDING,
                        f"{rec.action} queued",
                        desired=rec.payload_uuid or rec.value,
                    )
                )
                continue
        if key in merged.conflicts:
            plan.states.append(
                ItemState(
                    kind,
                    ident,
                    merged.conflicts[key],
                    CONFLICT,
                    "blueprints "
                    + ", ".join(map(str, merged.conflicts[key]))
                    + " want different things for this "
                    + {PROFILE: "PayloadIdentifier", APP: "bundle id"}.get(kind, "setting"),
                )
            )
            continue
        if desired is None:
            assert rec is not None
            _leaving(plan, rec, report, removes, policy.retry_failed)
            if kind == APP and rec.key in plan.forget and rec.ref:
                released.append(rec.ref)
        elif kind == APP:
            _app(plan, desired, rec, report, policy, installs)
        elif kind == PROFILE:
            _profile(plan, desired, rec, report, policy, installs)
        else:
            _setting(plan, device_id, desired, rec, report, policy, installs)

    reported_in_flight = report.in_flight if report else 0
    busy = max(reported_in_flight, in_flight_own + (1 if recheck_pending else 0))
    budget = max(0, policy.max_in_flight - busy)
    for action, state in removes:
        if budget > 0:
            plan.actions.append(action)
            plan.states.append(state)
            budget -= 1
        else:
            plan.deferred += 1
            plan.states.append(
                ItemState(
                    state.kind,
                    state.ident,
                    state.blueprint_ids,
                    PENDING,
                    f"to remove ({action.reason}): waiting, {busy} commands in flight",
                )
            )
    for action, queued, deferred in installs:
        if budget > 0:
            plan.actions.append(action)
            plan.states.append(queued)
            budget -= 1
        else:
            plan.deferred += 1
            plan.states.append(deferred)

    if not plan.actions and not recheck_pending and budget > 0:
        if _needs_recheck(records, report, now, policy):
            plan.actions.append(Action(PROFILE_LIST, PROFILE, "", None, "recheck"))
        elif _needs_app_recheck(records, merged, report, now, policy):
            plan.actions.append(Action(APP_LIST, APP, "", None, "recheck"))
    plan.settled = (
        not plan.actions
        and not plan.deferred
        and not plan.forget
        and not plan.adopt
        and not recheck_pending
        and all(s.state == IN_SYNC and s.detail not in (_UNVERIFIED, _APP_UNVERIFIED) for s in states)
    )
    return plan


def combo_digest(merged: Merged) -> str:
    """A digest of a combination's desired state: it changes when any blueprint, scope or
    profile version behind it does."""
    parts = sorted(repr(tuple(d)) for d in merged.items.values())
    parts += sorted(repr((k, v)) for k, v in merged.conflicts.items())
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=16).hexdigest()


def settled_token(digest: str, report: DeviceReport | None) -> str:
    """What a settled device's mark must equal for a pass to skip it: its desired state's digest
    and the times of the reports it was decided on (a newer ProfileList or inventory re-plans it)."""
    seen = f"{digest}|{report.profiles_at if report else None}|{report.facts_at if report else None}"
    if report is not None and report.apps_at is not None:
        seen += f"|{report.apps_at}"
    return hashlib.blake2b(seen.encode(), digest_size=16).hexdigest()


def may_skip(merged: Merged, report: DeviceReport | None, now: datetime, policy: Policy) -> bool:
    """Whether a settled device may be skipped now: not if its ProfileList (or, with apps, its
    ManagedApplicationList) is due again."""
    kinds = {kind for kind, _ in merged.items}
    for kind, at in (
        (PROFILE, report.profiles_at if report else None),
        (APP, report.apps_at if report else None),
    ):
        if kind in kinds and (at is None or now - at >= policy.recheck_after):
            return False
    return True


def _needs_recheck(
    records: Mapping[Key, Record], report: DeviceReport | None, now: datetime, policy: Policy
) -> bool:
    """Ask ProfileList when a profile installed here was acknowledged after the last answer (not
    verified yet), or the last answer is older than `recheck_after`."""
    installed = [r for r in records.values() if r.kind == PROFILE and r.installed]
    if not installed:
        return False
    at = report.profiles_at if report else None
    if at is None or now - at >= policy.recheck_after:
        return True
    return any(r.acked_at is not None and r.acked_at > at for r in installed)


def _needs_app_recheck(
    records: Mapping[Key, Record], merged: Merged, report: DeviceReport | None, now: datetime, policy: Policy
) -> bool:
    """Ask ManagedApplicationList when an app installed here was acknowledged after the last answer,
    the last answer is older than `recheck_after`, or a wanted app was still installing then and
    `app_poll` has passed."""
    installed = [r for r in records.values() if r.kind == APP and r.installed]
    if not installed:
        return False
    at = report.apps_at if report else None
    if at is None or now - at >= policy.recheck_after:
        return True
    if any(r.acked_at is not None and r.acked_at > at for r in installed):
        return True
    reported = report.apps if report else {}
    installing = any(
        reported.get(r.ident) not in (None, *APP_INSTALLED, *APP_FAILED, *APP_GONE)
        for r in installed
        if r.key in merged.items
    )
    return installing and now - at >= policy.app_poll


def _leaving(
    plan: DevicePlan,
    rec: Record,
    report: DeviceReport | None,
    removes: list[tuple[Action, ItemState]],
    retry_failed: bool,
) -> None:
    """An item no blueprint in scope wants: remove it if the reconciler put it there."""
    kind, ident = rec.key
    if rec.state == FAILED and rec.action in REMOVES and not retry_failed:
        plan.states.append(
            ItemState(
                kind,
                ident,
                (rec.blueprint_id,),
                FAILED,
                f"{rec.action} failed",
                rec.error,
                desired=None,
                actual=rec.payload_uuid,
            )
        )
        return
    if kind == SETTING or not rec.installed:
        plan.forget.append(rec.key)  # a setting cannot be unset; a failed install left nothing
        return
    if kind == APP:
        gone = report is not None and _after(report.apps_at, rec.acked_at) and ident not in report.apps
    else:
        gone = (
            report is not None and _after(report.profiles_at, rec.acked_at) and ident not in report.profiles
        )
    if gone:
        plan.forget.append(rec.key)  # already gone from the device
        return
    remove = REMOVE_APP if kind == APP else REMOVE
    action = Action(
        remove,
        kind,
        ident,
        rec.blueprint_id,
        "left scope",
        ref=rec.ref,
        version=rec.version,
        payload_uuid=rec.payload_uuid,
        installed=True,
        acked_at=rec.acked_at,
    )
    state = ItemState(kind, ident, (rec.blueprint_id,), PENDING, f"{remove} queued (left scope)")
    removes.append((action, state))


def _install(desired: Desired, reason: str, rec: Record | None, value: str | None = None) -> Action:
    return Action(
        SETTINGS if desired.kind == SETTING else INSTALL_APP if desired.kind == APP else INSTALL,
        desired.kind,
        desired.ident,
        desired.blueprint_id,
        reason,
        ref=desired.ref,
        version=desired.version,
        payload_uuid=desired.payload_uuid,
        content_hash=desired.content_hash,
        value=value,
        installed=bool(rec and rec.installed),
        acked_at=rec.acked_at if rec else None,
    )


def _profile(
    plan: DevicePlan,
    desired: Desired,
    rec: Record | None,
    report: DeviceReport | None,
    policy: Policy,
    installs: list[tuple[Action, ItemState, ItemState]],
) -> None:
    kind, ident = desired.key
    owners = (desired.blueprint_id,)
    actual = report.profiles.get(ident) if report else None

    def queue(reason: str, deferred_state: str, detail: str) -> None:
        installs.append(
            (
                _install(desired, reason, rec),
                ItemState(
                    kind,
                    ident,
                    owners,
                    PENDING,
                    f"install_profile queued ({reason})",
                    desired=desired.payload_uuid,
                    actual=actual,
                ),
                ItemState(
                    kind, ident, owners, deferred_state, detail, desired=desired.payload_uuid, actual=actual
                ),
            )
        )

    if rec is None:
        queue("missing", PENDING, "to install: waiting for a free command slot")
        return
    same = rec.payload_uuid == desired.payload_uuid and rec.content_hash == desired.content_hash
    if rec.state == FAILED and not policy.retry_failed and same and rec.action == INSTALL:
        plan.states.append(
            ItemState(
                kind,
                ident,
                owners,
                FAILED,
                "install_profile failed",
                rec.error,
                desired=desired.payload_uuid,
                actual=actual,
            )
        )
        return
    if not same or rec.state != IN_SYNC or rec.action != INSTALL:
        reason = "new version" if rec.state == IN_SYNC else ("retry" if rec.state == FAILED else "no answer")
        queue(reason, PENDING, f"to install ({reason}): waiting for a free command slot")
        return
    if rec.blueprint_id != desired.blueprint_id:
        plan.adopt.append((desired.key, desired.blueprint_id))
    if report is not None and _after(report.profiles_at, rec.acked_at) and actual != rec.payload_uuid:
        what = "missing from the device" if actual is None else f"the device has PayloadUUID {actual}"
        queue("drifted", DRIFTED, f"drifted: {what}; reinstall waiting for a free command slot")
        return
    verified = report is not None and _after(report.profiles_at, rec.acked_at)
    plan.states.append(
        ItemState(
            kind,
            ident,
            owners,
            IN_SYNC,
            _VERIFIED if verified else _UNVERIFIED,
            desired=desired.payload_uuid,
            actual=actual,
        )
    )


def _app(
    plan: DevicePlan,
    desired: Desired,
    rec: Record | None,
    report: DeviceReport | None,
    policy: Policy,
    installs: list[tuple[Action, ItemState, ItemState]],
) -> None:
    """An app a blueprint wants: `ident` is its bundle id, `content_hash` what it installs (the
    package and the managed configuration), `value` the configuration as JSON."""
    kind, ident = desired.key
    owners = (desired.blueprint_id,)
    actual = report.apps.get(ident) if report else None

    def queue(reason: str, deferred_state: str, detail: str) -> None:
        installs.append(
            (
                _install(desired, reason, rec, desired.value),
                ItemState(
                    kind,
                    ident,
                    owners,
                    PENDING,
                    f"install_application queued ({reason})",
                    desired=desired.ref,
                    actual=actual,
                ),
                ItemState(kind, ident, owners, deferred_state, detail, desired=desired.ref, actual=actual),
            )
        )

    if rec is None:
        queue("missing", PENDING, "to install: waiting for a free command slot")
        return
    same = rec.content_hash == desired.content_hash and rec.ref == desired.ref
    if (
        rec.state == FAILED
        and not policy.retry_failed
        and same
        and rec.action in (INSTALL_APP, AWAIT_LICENCE)
    ):
        detail = "no licence" if rec.action == AWAIT_LICENCE else "install_application failed"
        plan.states.append(
            ItemState(kind, ident, owners, FAILED, detail, rec.error, desired=desired.ref, actual=actual)
        )
        return
    if rec.action == AWAIT_LICENCE and same and rec.state == PENDING:
        queue("licence", PENDING, "waiting for its licence and a free command slot")
        return
    if not same or rec.state != IN_SYNC or rec.action != INSTALL_APP:
        reason = "new version" if rec.state == IN_SYNC else ("retry" if rec.state == FAILED else "no answer")
        queue(reason, PENDING, f"to install ({reason}): waiting for a free command slot")
        return
    if rec.blueprint_id != desired.blueprint_id:
        plan.adopt.append((desired.key, desired.blueprint_id))
    verified = report is not None and _after(report.apps_at, rec.acked_at)
    if verified and (actual is None or actual in APP_GONE):
        what = "missing from the device" if actual is None else f"the device reports {actual}"
        queue("drifted", DRIFTED, f"drifted: {what}; reinstall waiting for a free command slot")
        return
    if verified and actual in APP_FAILED:
        if policy.retry_failed:
            queue("retry", PENDING, "to install (retry): waiting for a free command slot")
            return
        plan.states.append(
            ItemState(
                kind,
                ident,
                owners,
                FAILED,
                f"the device reports {actual}",
                desired=desired.ref,
                actual=actual,
            )
        )
        return
    if verified and actual not in APP_INSTALLED:
        plan.states.append(
            ItemState(
                kind,
                ident,
                owners,
                PENDING,
                f"installing: the device reports {actual}",
                desired=desired.ref,
                actual=actual,
            )
        )
        return
    plan.states.append(
        ItemState(
            kind,
            ident,
            owners,
            IN_SYNC,
            _APP_VERIFIED if verified else _APP_UNVERIFIED,
            desired=desired.ref,
            actual=actual,
        )
    )


def _setting(
    plan: DevicePlan,
    device_id: str,
    desired: Desired,
    rec: Record | None,
    report: DeviceReport | None,
    policy: Policy,
    installs: list[tuple[Action, ItemState, ItemState]],
) -> None:
    kind, ident = desired.key
    owners = (desired.blueprint_id,)
    value = expand(desired.value or "", device_id, report) if ident == "DeviceName" else desired.value
    reported = report.device_name if report is not None and ident == "DeviceName" else None
    if value is None:
        plan.states.append(
            ItemState(
                kind, ident, owners, PENDING, "waiting for the device to report the facts its name uses"
            )
        )
        return

    def queue(reason: str, deferred_state: str) -> None:
        installs.append(
            (
                _install(desired, reason, rec, value),
                ItemState(
                    kind,
                    ident,
                    owners,
                    PENDING,
                    f"settings queued ({reason})",
                    desired=value,
                    actual=reported,
                ),
                ItemState(
                    kind,
                    ident,
                    owners,
                    deferred_state,
                    f"{reason}: waiting for a free command slot",
                    desired=value,
                    actual=reported,
                ),
            )
        )

    if rec is None or rec.value != value:
        queue("missing" if rec is None else "changed", PENDING)
        return
    if rec.state == FAILED and not policy.retry_failed:
        plan.states.append(
            ItemState(kind, ident, owners, FAILED, "settings failed", rec.error, desired=value)
        )
        return
    if rec.state != IN_SYNC:
        queue("retry" if rec.state == FAILED else "no answer", PENDING)
        return
    if rec.blueprint_id != desired.blueprint_id:
        plan.adopt.append((desired.key, desired.blueprint_id))
    if (
        reported is not None
        and report is not None
        and _after(report.facts_at, rec.acked_at)
        and reported != value
    ):
        queue("drifted", DRIFTED)
        return
    plan.states.append(
        ItemState(kind, ident, owners, IN_SYNC, "applied", desired=value, actual=reported or value)
    )


def summarize(states: Sequence[ItemState]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    return counts
