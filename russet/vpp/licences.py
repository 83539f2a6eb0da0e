"""Licences: assigning assets to devices (serial numbers) and people (client user ids), taking
them back, and following Apple's asynchronous events until they end (§f.6, §f.9).

Every change is reserved in the database first (`VppStore.reserve_*`), which refuses the whole
request when the asset has too few licences, then sent; if Apple refuses it synchronously the
reservation is undone, so nothing is half-applied. Apple's answer arrives as a notification
(`russet.vpp.notify`) or, when none came within the poll interval, from `status?eventId=`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from russet.storage.db import as_utc, reading
from russet.vpp.client import VppClient
from russet.vpp.errors import AppleError, VppConflict, VppError, VppNotFound
from russet.vpp.records import Failure, Outcome, status_outcome, user_list
from russet.vpp.store import VppStore
from russet.vpp.tables import vpp_licences

log = logging.getLogger("russet.vpp")
SERIAL = re.compile(r"^[A-Za-z0-9-]{1,64}$")
ADAM_ID = re.compile(r"^[0-9]{1,20}$")
MAX_SUBJECTS = 10_000  # per admin request; Apple's own limit per call is applied by chunking
STALE_RESERVATION = timedelta(minutes=10)


def clean_serials(serials: Sequence[Any]) -> list[str]:
    bad = [s for s in serials if not isinstance(s, str) or not SERIAL.match(s.strip())]
    if bad:
        raise VppError(f"not serial numbers: {', '.join(repr(b) for b in bad[:5])}")
    return list(dict.fromkeys(s.strip().upper() for s in serials))


def find_asset(store: VppStore, name: str, adam_id: Any, pricing: str | None = None) -> dict[str, Any]:
    """The asset an admin names, or an error saying why it cannot be used."""
    if not isinstance(adam_id, str | int) or not ADAM_ID.match(str(adam_id)):
        raise VppError(f"adamId {adam_id!r} is not an App Store id (digits)")
    found = [a for a in store.assets(name, str(adam_id)) if pricing in (None, a["pricing_param"])]
    if not found:
        raise VppNotFound(
            f"location {name!r} has no licences for adamId {adam_id}"
            + (f" ({pricing})" if pricing else "")
            + f"; buy them in Apple Business/School Manager, then run `russet vpp sync {name}`",
        )
    if len(found) > 1:
        raise VppError(
            f"adamId {adam_id} has licences of several qualities in {name!r}: name --pricing STDQ or PLUS"
        )
    return found[0]


def _limit(limits: dict[str, Any], key: str, default: int) -> int:
    value = limits.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def assign(
    store: VppStore,
    client: VppClient,
    asset: dict[str, Any],
    serials: list[str],
    users: list[str],
    *,
    reason: str = "assigned by an admin",
) -> dict[str, Any]:
    """Reserve licences for every new subject (all or none), then associate them with Apple."""
    name = client.name
    adam, pricing = asset["adam_id"], asset["pricing_param"]
    if len(serials) + len(users) > MAX_SUBJECTS:
        raise VppError(f"at most {MAX_SUBJECTS} devices and people per request")
    if serials and not asset["device_assignable"]:
        raise VppError(
            f"asset {adam} cannot be assigned to devices (Apple: not device-assignable); assign it to people"
        )
    _check_users(store, name, users)
    ids, skipped = store.reserve_associate(
        name, adam, pricing, [("device", s) for s in serials] + [("user", u) for u in users]
    )
    limits = store.require(name)["limits"]
    batches = [
        ("device", c)
        for c in _chunks([s for t, s in ids if t == "device"], _limit(limits, "maxSerialNumbers", 1000))
    ]
    batches += [
        ("user", c)
        for c in _chunks([s for t, s in ids if t == "user"], _limit(limits, "maxClientUserIds", 1000))
    ]
    return await _send(
        store,
        client,
        "associate",
        (adam, pricing),
        batches,
        ids,
        reason,
        {"skipped": {f"{t}:{s}": st for (t, s), st in skipped.items()}},
    )


async def unassign(
    store: VppStore,
    client: VppClient,
    asset: dict[str, Any],
    serials: list[str],
    users: list[str],
    *,
    reason: str = "taken back by an admin",
) -> dict[str, Any]:
    name = client.name
    adam, pricing = asset["adam_id"], asset["pricing_param"]
    if not asset["revocable"]:
        raise VppError(
            f"licences of asset {adam} cannot be taken back (Apple: not revocable; books never are)"
        )
    claimed: dict[tuple[str, str], int] = {}
    for kind, subjects in (("device", serials), ("user", users)):
        if subjects:
            rows = store.reserve_release(
                name,
                "disassociating",
                reason,
                subject_type=kind,
                subjects=subjects,
                adam_id=adam,
                pricing=pricing,
            )
            claimed.update({(kind, r["subject"]): r["id"] for r in rows})
    missing = [
        f"{k}:{s}"
        for k, subjects in (("device", serials), ("user", users))
        for s in subjects
        if (k, s) not in claimed
    ]
    limits = store.require(name)["limits"]
    batches = [
        ("device", c)
        for c in _chunks([s for t, s in claimed if t == "device"], _limit(limits, "maxSerialNumbers", 1000))
    ]
    batches += [
        ("user", c)
        for c in _chunks([s for t, s in claimed if t == "user"], _limit(limits, "maxClientUserIds", 1000))
    ]
    return await _send(
        store, client, "disassociate", (adam, pricing), batches, claimed, reason, {"not_assigned": missing}
    )


async def _send(
    store: VppStore,
    client: VppClient,
    action: str,
    asset: tuple[str, str],
    batches: list[tuple[str, list[str]]],
    ids: dict[tuple[str, str], int],
    reason: str,
    out: dict[str, Any],
) -> dict[str, Any]:
    """Send the batches in turn; a refused batch undoes its reservation and those not yet sent."""
    out.update(location=client.name, adam_id=asset[0], pricing_param=asset[1], events=[], error=None)
    for i, (kind, batch) in enumerate(batches):
        batch_ids = [ids[(kind, s)] for s in batch]
        try:
            reply = await client.manage_assets(
                action, [asset], batch if kind == "device" else [], batch if kind == "user" else []
            )
        except BaseException as exc:
            store.undo_reservation([ids[(k, s)] for k, b in batches[i:] for s in b])
            if i == 0 or not isinstance(exc, VppError):
                raise
            out["error"] = f"{exc} (the batches before it were sent; the rest were not)"
            break
        event_id = reply.body["eventId"]
        store.licence_event(client.name, batch_ids, event_id, action.upper(), reason, len(batch))
        out["events"].append({"event_id": event_id, "kind": kind, "count": len(batch)})
    out["requested"] = sum(e["count"] for e in out["events"])
    return out


def _check_users(store: VppStore, name: str, users: list[str]) -> None:
    known = {u["client_user_id"]: u for u in store.users(name)}
    for cuid in users:
        user = known.get(cuid)
        if user is None:
            raise VppNotFound(f"no user {cuid!r} in location {name!r} (see `russet vpp users {name}`)")
        if user["status"] not in ("Registered", "Associated"):
            raise VppConflict(f"user {cuid!r} is {user['status']}; licences go to registered users only")


# -- following events -----------------------------------------------------------------------------


async def poll_events(
    store: VppStore, client: VppClient, *, every: timedelta, force: bool = False
) -> list[dict[str, Any]]:
    """Ask Apple about pending events no notification answered within `every` (all with force)."""
    done = []
    for event_id in store.due_events(client.name, every, force=force):
        try:
            reply = await client.status(event_id)
        except AppleError as exc:
            if exc.number != 9708:
                raise
            # Apple no longer knows the event: whatever it reserved did not happen.
            outcome = Outcome(final="FAILED", failures=[Failure(9708, "Apple does not know this eventId")])
        else:
            _, outcome, data = status_outcome(reply.body)
            client.record(reply, data)
        summary = store.apply_outcome(client.name, event_id, outcome, "status")
        if summary.get("status") == "COMPLETE" and outcome.event_type in ("CREATE", "UPDATE"):
            await refresh_users(store, client, event_id)
        done.append(summary)
    return done


async def refresh_users(store: VppStore, client: VppClient, event_id: str) -> None:
    """After a user event ended without a notification, read the users' invitation and state."""
    for user in store.users(client.name):
        if user["event_id"] != event_id:
            continue
        reply = await client.users(user["client_user_id"])
        found, data = user_list(reply.body)
        client.record(reply, data)
        if user["client_user_id"] in found:
            store.refresh_user(client.name, user["client_user_id"], found[user["client_user_id"]])


# -- devices that left ------------------------------------------------------------------------------


def assigned_devices(engine: Any, name: str) -> dict[str, datetime | None]:
    """Serial numbers holding assigned licences of the location, each with when its latest was
    assigned: what the MDM core is asked about devices that left (`DeviceLookup.departed`)."""
    lc = vpp_licences.c
    with reading(engine) as conn:
        rows = conn.execute(
            select(lc.subject, func.max(lc.assigned_at))
            .where(lc.location == name, lc.subject_type == "device", lc.status == "assigned")
            .group_by(lc.subject)
        ).all()
    return {serial: as_utc(at) for serial, at in rows}


async def revoke_devices(store: VppStore, client: VppClient, serials: dict[str, str]) -> list[dict[str, Any]]:
    """Take back every revocable licence of these devices (serial -> why), batched per reason."""
    limits = store.require(client.name)["limits"]
    size = _limit(limits, "maxRevokeSerialNumbers", 100)
    events = []
    for reason in sorted(set(serials.values())):
        group = sorted(s for s, r in serials.items() if r == reason)
        for batch in _chunks(group, size):
            rows = store.reserve_release(
                client.name, "revoking", reason, subject_type="device", subjects=batch, revocable_only=True
            )
            if not rows:
                continue
            ids = [r["id"] for r in rows]
            claimed = sorted({r["subject"] for r in rows})
            try:
                reply = await client.revoke(claimed, [])
            except BaseException:
                store.undo_reservation(ids)
                raise
            event_id = reply.body["eventId"]
            store.licence_event(client.name, ids, event_id, "REVOKE", reason, len(claimed))
            log.info(
                "Apps and Books %r: revoking licences of %d devices: %s", client.name, len(claimed), reason
            )
            events.append({"event_id": event_id, "serials": claimed, "licences": len(ids), "reason": reason})
    return events
