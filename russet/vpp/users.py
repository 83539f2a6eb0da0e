"""People licensed by user (§f.7): registered with a client user id Russet generates (a GUID),
with an email and/or a Managed Apple ID; updated; retired.

Apple answers asynchronously. A user is kept as `creating` until Apple confirms, and an update or
a retire waits in `pending` until then, so what Russet shows is what Apple holds. Retiring releases
the person's revocable licences at Apple (the API's documented behaviour), so those licences are
bound to the retire event and released with it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from russet.vpp.client import VppClient
from russet.vpp.errors import VppConflict, VppError, VppNotFound
from russet.vpp.store import VppStore

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]{2,}$")
MAX_EMAIL = 254


def _address(value: Any, what: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_EMAIL or not EMAIL.match(value.strip()):
        raise VppError(f"{what} {value!r} is not an email address")
    return value.strip()


def _user(store: VppStore, name: str, client_user_id: str) -> dict[str, Any]:
    found = store.users(name, client_user_id)
    if not found:
        raise VppNotFound(f"no user {client_user_id!r} in Apps and Books location {name!r}")
    return found[0]


async def create(
    store: VppStore, client: VppClient, *, email: Any = None, managed_apple_id: Any = None
) -> dict[str, Any]:
    name = client.name
    email, managed = _address(email, "email"), _address(managed_apple_id, "Managed Apple ID")
    if email is None and managed is None:
        raise VppError("a user needs an email or a Managed Apple ID (or both)")
    for other in store.users(name):
        if other["status"] in ("Retired", "failed"):
            continue
        for mine, theirs, what in (
            (email, other["email"], "email"),
            (managed, other["managed_apple_id"], "Managed Apple ID"),
        ):
            if mine and theirs and mine.casefold() == theirs.casefold():
                raise VppConflict(f"user {other['client_user_id']} already has this {what} in {name!r}")
    client_user_id = str(uuid.uuid4())
    store.add_user(name, client_user_id, email, managed)
    entry = {"clientUserId": client_user_id}
    if email:
        entry["email"] = email
    if managed:
        entry["managedAppleId"] = managed
    try:
        reply = await client.manage_users("create", [entry])
    except BaseException:
        store.forget_user(name, client_user_id)
        raise
    store.user_event(name, client_user_id, reply.body["eventId"], "CREATE", "registered by an admin")
    return {**_user(store, name, client_user_id), "event_id": reply.body["eventId"]}


async def update(
    store: VppStore,
    client: VppClient,
    client_user_id: str,
    *,
    email: Any = None,
    managed_apple_id: Any = None,
) -> dict[str, Any]:
    name = client.name
    _user(store, name, client_user_id)
    change: dict[str, str] = {}
    if email is not None:
        change["email"] = _address(email, "email") or ""
    if managed_apple_id is not None:
        change["managedAppleId"] = _address(managed_apple_id, "Managed Apple ID") or ""
    change = {k: v for k, v in change.items() if v}
    if not change:
        raise VppError("name a new email or Managed Apple ID")
    _claim(store, name, client_user_id, {"action": "update", **change})
    try:
        reply = await client.manage_users("update", [{"clientUserId": client_user_id, **change}])
    except BaseException:
        store.release_user(name, client_user_id)
        raise
    store.user_event(name, client_user_id, reply.body["eventId"], "UPDATE", "updated by an admin")
    return {**_user(store, name, client_user_id), "event_id": reply.body["eventId"]}


async def retire(store: VppStore, client: VppClient, client_user_id: str) -> dict[str, Any]:
    name = client.name
    _user(store, name, client_user_id)
    _claim(store, name, client_user_id, {"action": "retire"})
    reason = "the person was retired"
    rows = store.reserve_release(
        name, "revoking", reason, subject_type="user", subjects=[client_user_id], revocable_only=True
    )
    ids = [r["id"] for r in rows]
    try:
        reply = await client.manage_users("retire", [{"clientUserId": client_user_id}])
    except BaseException:
        store.undo_reservation(ids)
        store.release_user(name, client_user_id)
        raise
    event_id = reply.body["eventId"]
    store.user_event(name, client_user_id, event_id, "RETIRE", reason, licence_ids=ids)
    return {**_user(store, name, client_user_id), "event_id": event_id, "licences_released": len(ids)}


def _claim(store: VppStore, name: str, client_user_id: str, pending: dict[str, Any]) -> None:
    if not store.claim_user(name, client_user_id, pending):
        user = _user(store, name, client_user_id)
        if user["pending"]:
            raise VppConflict(
                f"user {client_user_id!r} has a {user['pending']['action']} waiting for Apple "
                f"(event {user['event_id']}); try again once it ends",
            )
        raise VppConflict(f"user {client_user_id!r} is {user['status']}; only registered users can change")
