"""What disconnect and purge do to an Apps and Books location (registered in `russet.runtime`).

Imports only its own tables: the runtime imports this module while it is itself being imported.
"""

from __future__ import annotations

from sqlalchemy import Connection

from russet.apple.connections import ServiceHooks, delete_owned, destroy_sealed
from russet.vpp.tables import (
    vpp_assets,
    vpp_events,
    vpp_installs,
    vpp_licences,
    vpp_locations,
    vpp_notifications,
    vpp_users,
)


def destroy_credentials(conn: Connection, name: str) -> dict[str, list[str]]:
    """Wipe the content token and the notification secret (Apple's notifications are refused)."""
    return destroy_sealed(
        conn,
        vpp_locations,
        name,
        {"sealed_token": "vpp_content_token", "notify_secret_hash": "vpp_notification_secret"},
        also_clear=("token_sha256",),
    )


def purge(conn: Connection, name: str) -> dict[str, list[str]]:
    """Delete everything obtained from or tied to the location, saying which rows."""
    return delete_owned(
        conn,
        name,
        (
            (vpp_installs, vpp_installs.c.location, vpp_installs.c.id),
            (vpp_notifications, vpp_notifications.c.location, vpp_notifications.c.notification_id),
            (vpp_events, vpp_events.c.location, vpp_events.c.event_id),
            (vpp_licences, vpp_licences.c.location, vpp_licences.c.id),
            (vpp_users, vpp_users.c.location, vpp_users.c.client_user_id),
            (vpp_assets, vpp_assets.c.location, vpp_assets.c.adam_id + ":" + vpp_assets.c.pricing_param),
            (vpp_locations, vpp_locations.c.name, vpp_locations.c.name),
        ),
    )


def apple_side(name: str) -> list[str]:
    return [
        f"Licences assigned through Russet in location {name!r} stay assigned at Apple until they are "
        "taken back: revoke them in Apple Business/School Manager or from the MDM that manages the "
        "location next.",
        "People registered through Russet stay registered at Apple until retired there.",
        "Apple keeps posting notifications to Russet's URL until another MDM takes the location over; "
        "Russet refuses them (403).",
    ]


HOOKS = ServiceHooks(
    service="vpp", destroy_credentials=destroy_credentials, purge=purge, apple_side=apple_side
)
