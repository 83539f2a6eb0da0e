"""What disconnect and purge do to an Apps and Books location (registered in `russet.runtime`).

Disconnect wipes the content token and the notification secret (Apple's notifications are then
refused); purge deletes everything obtained from or tied to the location: its own tables, and the
InstallApplication commands that carry one of its adamIds (`iTunesStoreID`) in their stored body,
with their queue rows (a queued one is not delivered: the licence behind it is gone). An adamId
another location also holds is left alone. Imports only its own tables, the MDM core's command
tables and the kit: the runtime imports this module while it is itself being imported.
"""

from __future__ import annotations

import plistlib
from dataclasses import replace

from sqlalchemy import Connection, delete, func, select

from russet.apple.connection.hooks import connection_hooks
from russet.mdm.tables import command_queue, commands
from russet.vpp.tables import (
    owned,
    vpp_assets,
    vpp_events,
    vpp_installs,
    vpp_licences,
    vpp_locations,
    vpp_notifications,
    vpp_users,
)

APPLE_SIDE = (
    "Licences assigned through Russet in location {name!r} stay assigned at Apple until they are "
    "taken back: revoke them in Apple Business/School Manager or from the MDM that manages the "
    "location next.",
    "People registered through Russet stay registered at Apple until retired there.",
    "Apple keeps posting notifications to Russet's URL until another MDM takes the location over; "
    "Russet refuses them (403).",
)


def apple_side(name: str) -> list[str]:
    return [APPLE_SIDE[0].format(name=name), *APPLE_SIDE[1:]]


SEALED = {"sealed_token": "vpp_content_token", "notify_secret_hash": "vpp_notification_secret"}
CHILDREN = (vpp_installs, vpp_notifications, vpp_events, vpp_licences, vpp_users, vpp_assets)
_TABLES = connection_hooks("vpp", vpp_locations, SEALED, ("token_sha256",), owned.owner, CHILDREN, apple_side)


def _adam_ids(conn: Connection, name: str) -> set[str]:
    """The adamIds only this location holds (its assets and installs, less other locations')."""
    a, i = vpp_assets.c, vpp_installs.c
    mine = set(conn.execute(select(a.adam_id).where(a.location == name)).scalars())
    mine |= set(conn.execute(select(i.adam_id).where(i.location == name)).scalars())
    others = set(conn.execute(select(a.adam_id).where(a.location != name)).scalars())
    return mine - others


def install_commands(conn: Connection, name: str) -> list[int]:
    """Ids of stored InstallApplication commands whose body names one of the location's adamIds."""
    adam_ids = _adam_ids(conn, name)
    if not adam_ids:
        return []
    found = []
    rows = conn.execute(
        select(commands.c.id, commands.c.body_template).where(commands.c.request_type == "InstallApplication")
    )
    for row in rows:
        try:
            body = plistlib.loads(row.body_template)
        except (plistlib.InvalidFileException, ValueError):
            continue  # sealed or unreadable: it cannot hold an adamId in the clear
        store_id = body.get("Command", {}).get("iTunesStoreID") if isinstance(body, dict) else None
        if store_id is not None and str(store_id) in adam_ids:
            found.append(row.id)
    return found


def _purge(conn: Connection, name: str) -> dict[str, list[str]]:
    """The commands first (finding them needs the location's assets), then the location's tables."""
    removed: dict[str, list[str]] = {}
    ids = install_commands(conn, name)
    if ids:
        uuids = list(
            conn.execute(
                select(command_queue.c.command_uuid).where(command_queue.c.command_id.in_(ids))
            ).scalars()
        )
        conn.execute(delete(command_queue).where(command_queue.c.command_id.in_(ids)))
        conn.execute(delete(commands).where(commands.c.id.in_(ids)))
        removed["commands"] = [str(i) for i in ids]
        if uuids:
            removed["command_queue"] = uuids
    return {**removed, **_TABLES.purge(conn, name)}


def _traces(conn: Connection, name: str) -> dict[str, int]:
    ids = install_commands(conn, name)
    queued = (
        conn.execute(
            select(func.count()).select_from(command_queue).where(command_queue.c.command_id.in_(ids))
        ).scalar_one()
        if ids
        else 0
    )
    return {**_TABLES.traces(conn, name), "commands": len(ids), "command_queue": int(queued)}


HOOKS = replace(_TABLES, purge=_purge, traces=_traces)
