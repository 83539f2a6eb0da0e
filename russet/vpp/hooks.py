"""What disconnect and purge do to an Apps and Books location (registered in `russet.runtime`).

Disconnect wipes the content token and the notification secret (Apple's notifications are then
refused); purge deletes everything obtained from or tied to the location. Imports only its own
tables and the kit: the runtime imports this module while it is itself being imported.
"""

from __future__ import annotations

from russet.apple.connection.hooks import connection_hooks
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
HOOKS = connection_hooks("vpp", vpp_locations, SEALED, ("token_sha256",), owned.owner, CHILDREN, apple_side)
