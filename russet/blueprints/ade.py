"""Automated Device Enrollment done right: a device held in Setup Assistant gets its blueprint's
items first, then `DeviceConfigured`, queued once, so no ADE device waits forever for an admin.

The MDM core publishes `DeviceAwaitingConfiguration` when a device's TokenUpdate says
AwaitingConfiguration. From then on the device has a row in `blueprint_ade_setups` and:

- it is reconciled at once (not at the next periodic pass);
- after each answer to one of its items (and every periodic check), its items are looked at: once
  none is pending (each in sync, failed or in conflict; nothing left to queue) DeviceConfigured is
  queued, with the items not in sync listed on the row. A device in no blueprint's scope gets it
  straight away;
- a device still waiting after `release_after` (RUSSET_ADE_RELEASE_MINUTES) gets it anyway, its
  incomplete items listed, so none is stuck in Setup Assistant.

"Once" is a conditional UPDATE (`released_at IS NULL`) taken before the command is queued: of two
processes deciding together, one queues it. A new enrollment of the device (another Authenticate
time) or a DeviceConfigured the device refused starts a new round.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select, update

from russet.blueprints.ports import CommandSender
from russet.blueprints.reconcile import CONFLICT, FAILED, IN_SYNC, PROFILE_LIST, DevicePlan
from russet.blueprints.tables import blueprint_ade_setups
from russet.kernel.errors import RussetError
from russet.storage.db import as_utc, reading, upsert

log = logging.getLogger("russet.blueprints.ade")

DEVICE_CONFIGURED = "DeviceConfigured"
ITEMS_DONE, NO_BLUEPRINT, TIMEOUT = "items_done", "no_blueprint", "timeout"
_DONE = frozenset({IN_SYNC, FAILED, CONFLICT})  # states that will not change by waiting
_t = blueprint_ade_setups.c


@dataclass(frozen=True, slots=True)
class SetupRow:
    device_id: str
    enrolled_at: datetime | None
    awaiting_since: datetime
    released_at: datetime | None
    reason: str | None
    incomplete: str | None
    command_uuid: str | None
    answered_at: datetime | None
    answer: str | None


class AdeSetupStore:
    """Every query on `blueprint_ade_setups`."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, device_id: str) -> SetupRow | None:
        with reading(self._engine) as conn:
            row = conn.execute(select(blueprint_ade_setups).where(_t.device_id == device_id)).first()
        if row is None:
            return None
        values = dict(row._mapping)
        for key in ("enrolled_at", "awaiting_since", "released_at", "answered_at"):
            values[key] = as_utc(values[key])
        return SetupRow(**values)

    def open(self, device_id: str, enrolled_at: datetime | None, now: datetime) -> None:
        """A new round for the device: waiting since `now`, nothing sent."""
        values = {
            "device_id": device_id,
            "enrolled_at": enrolled_at,
            "awaiting_since": now,
            "released_at": None,
            "reason": None,
            "incomplete": None,
            "command_uuid": None,
            "answered_at": None,
            "answer": None,
        }
        with self._engine.begin() as conn:
            upsert(conn, blueprint_ade_setups, values, ["device_id"], [k for k in values if k != "device_id"])

    def claim(self, device_id: str, now: datetime, reason: str, incomplete: list[dict[str, Any]]) -> bool:
        """Take the right to queue the device's DeviceConfigured; False when it is taken already."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(blueprint_ade_setups)
                .where(_t.device_id == device_id, _t.released_at.is_(None))
                .values(released_at=now, reason=reason, incomplete=json.dumps(incomplete))
            )
        return bool(done.rowcount)

    def unclaim(self, device_id: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(blueprint_ade_setups)
                .where(_t.device_id == device_id)
                .values(released_at=None, reason=None, incomplete=None)
            )

    def sent(self, device_id: str, command_uuid: str | None, answer: str | None = None) -> None:
        with self._engine.begin() as conn:
            conn.execute(
                update(blueprint_ade_setups)
                .where(_t.device_id == device_id)
                .values(command_uuid=command_uuid, answer=answer)
            )

    def answered(self, device_id: str, command_uuid: str, status: str, now: datetime) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(
                update(blueprint_ade_setups)
                .where(_t.device_id == device_id, _t.command_uuid == command_uuid)
                .values(answered_at=now, answer=status[:20])
            )
        return bool(done.rowcount)

    def waiting(self) -> list[str]:
        """Devices whose DeviceConfigured is not queued yet."""
        with reading(self._engine) as conn:
            return list(
                conn.execute(
                    select(_t.device_id).where(_t.released_at.is_(None)).order_by(_t.device_id)
                ).scalars()
            )


def ready(plan: DevicePlan) -> bool:
    """Nothing of the device's blueprints is left to queue or waiting for an answer (a ProfileList
    re-check does not count: the items it verifies were acknowledged)."""
    if plan.deferred or any(a.action != PROFILE_LIST for a in plan.actions):
        return False
    return all(s.state in _DONE for s in plan.states)


def incomplete(plan: DevicePlan) -> list[dict[str, Any]]:
    """The items not in sync, as people and the API see them."""
    out = []
    for s in plan.states:
        if s.state == IN_SYNC:
            continue
        item: dict[str, Any] = {"kind": s.kind, "item": s.ident, "state": s.state, "detail": s.detail}
        if s.error is not None:
            try:
                item["error"] = json.loads(s.error)
            except ValueError:
                item["error"] = s.error
        out.append(item)
    return out


class AdeSetups:
    """The use case: holds a device in Setup Assistant while its items go, then releases it.

    `plan(device_id)` is the reconciler's view of one device (its blueprints and the plan a pass
    would make now), `reconcile_one(device_id)` reconciles it now (or marks it for the next pass
    when another pass holds the lease), `start_over(device_id)` forgets what the reconciler
    recorded there (a device starting Setup Assistant was erased: it has none of it)."""

    def __init__(
        self,
        store: AdeSetupStore,
        sender: CommandSender,
        plan: Callable[[str], tuple[Sequence[int], DevicePlan]],
        reconcile_one: Callable[[str], None],
        start_over: Callable[[str], None],
        *,
        release_after: timedelta,
        clock: Callable[[], datetime],
        created_by: str,
    ) -> None:
        self.store = store
        self._sender = sender
        self._plan = plan
        self._reconcile_one = reconcile_one
        self._start_over = start_over
        self.release_after = release_after
        self._clock = clock
        self._created_by = created_by

    def awaiting(self, device_id: str, enrolled_at: datetime | None) -> dict[str, Any] | None:
        """A TokenUpdate said AwaitingConfiguration: start (or keep) the device's round, give it
        its items now, and release it if there is nothing to wait for."""
        enrolled_at = as_utc(enrolled_at)
        row = self.store.get(device_id)
        fresh = (
            row is None
            or row.enrolled_at != enrolled_at
            or (row.released_at is not None and row.answer is not None and row.answer != "Acknowledged")
        )
        if fresh:  # a device in Setup Assistant holds nothing the reconciler put on it before
            self._start_over(device_id)
            self.store.open(device_id, enrolled_at, self._clock())
        elif row is not None and row.released_at is not None:
            return None  # DeviceConfigured is queued for this enrollment already
        self._reconcile_one(device_id)
        return self.advance(device_id, push_items=False)

    def advance(self, device_id: str, *, push_items: bool = True) -> dict[str, Any] | None:
        """Release the device when its items are done, it has no blueprint, or it waited too long;
        otherwise, with `push_items`, queue what now fits of its items. The release's view, or None."""
        row = self.store.get(device_id)
        if row is None or row.released_at is not None:
            return None
        combo, plan = self._plan(device_id)
        if not combo:
            return self._release(device_id, NO_BLUEPRINT, [])
        if ready(plan):
            return self._release(device_id, ITEMS_DONE, incomplete(plan))
        if self._clock() - row.awaiting_since >= self.release_after:
            return self._release(device_id, TIMEOUT, incomplete(plan))
        if push_items and any(a.action != PROFILE_LIST for a in plan.actions):
            self._reconcile_one(device_id)
        return None

    def advance_waiting(self) -> dict[str, Any]:
        """The periodic check: every waiting device, released when it may be (timeouts included)."""
        released: dict[str, int] = {}
        waiting = self.store.waiting()
        for device_id in waiting:
            try:
                view = self.advance(device_id, push_items=False)
            except RussetError as exc:
                log.warning("ADE setup of %s: %s", device_id, exc)
                continue
            if view is not None:
                released[view["reason"]] = released.get(view["reason"], 0) + 1
        return {"waiting": len(waiting) - sum(released.values()), "released": released}

    def answered(self, device_id: str, command_uuid: str, status: str) -> bool:
        """The device answered a DeviceConfigured; True when it was the one queued here."""
        done = self.store.answered(device_id, command_uuid, status, self._clock())
        if done:
            log.info("ADE setup of %s: DeviceConfigured answered %s", device_id, status)
        return done

    def is_waiting(self, device_id: str) -> bool:
        row = self.store.get(device_id)
        return row is not None and row.released_at is None

    def view(self, device_id: str) -> dict[str, Any] | None:
        """The device's round in Setup Assistant, for its API and CLI views; None if it had none."""
        row = self.store.get(device_id)
        if row is None:
            return None
        if row.released_at is None:
            state = "waiting"
        elif row.command_uuid is None:
            state = "not_queued"
        elif row.answer is None:
            state = "device_configured_queued"
        else:
            state = "device_configured_" + row.answer.lower()
        return {
            "state": state,
            "awaiting_since": _iso(row.awaiting_since),
            "release_by": _iso(row.awaiting_since + self.release_after),
            "device_configured_queued_at": _iso(row.released_at),
            "reason": row.reason,
            "command_uuid": row.command_uuid,
            "answered_at": _iso(row.answered_at),
            "answer": row.answer,
            "incomplete": json.loads(row.incomplete) if row.incomplete else [],
        }

    def _release(self, device_id: str, reason: str, items: list[dict[str, Any]]) -> dict[str, Any] | None:
        if not self.store.claim(device_id, self._clock(), reason, items):
            return None  # another request or process released it
        try:
            answer = self._sender.send_command(
                [device_id], {"RequestType": DEVICE_CONFIGURED}, created_by=self._created_by
            )
        except RussetError as exc:  # refused for this device: say so on its row, do not retry
            log.warning("ADE setup of %s: DeviceConfigured not queued: %s", device_id, exc)
            self.store.sent(device_id, None, "not queued")
            return self.view(device_id)
        except BaseException:
            self.store.unclaim(device_id)  # nothing was queued: the next check tries again
            raise
        uuids = [c["command_uuid"] for c in answer.get("commands", []) if c.get("device") == device_id]
        self.store.sent(device_id, uuids[0] if uuids else None)
        log.info(
            "ADE setup of %s: DeviceConfigured queued (%s%s)",
            device_id,
            reason,
            f", {len(items)} items not in sync" if items else "",
        )
        return self.view(device_id)


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
