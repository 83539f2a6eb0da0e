"""What disconnect and purge do to an ABM connection (registered in `russet.runtime`).

Disconnect wipes the private key and the server token (the public certificate has no secret) and
the token's expiry; purge deletes everything obtained from or tied to the connection, children
first. Imports only its own tables and the kit: the runtime imports this module while it is
itself being imported.
"""

from __future__ import annotations

from russet.abm.tables import (
    abm_accounts,
    abm_devices,
    abm_profile_results,
    abm_profiles,
    abm_servers,
    abm_sync_state,
    owned,
)
from russet.apple.connection.hooks import connection_hooks


def apple_side(name: str) -> list[str]:
    return [
        f"In Apple Business/School Manager, delete the MDM server behind {name!r} or assign its devices "
        "to another MDM server; until then Apple keeps them assigned to it.",
        "Enrollment profiles already assigned stay with Apple and with devices that fetched them "
        "until the devices are erased or assigned elsewhere.",
    ]


SEALED = {"sealed_key": "abm_private_key", "sealed_token": "abm_server_token"}
CHILDREN = (abm_devices, abm_profile_results, abm_profiles, abm_sync_state, abm_accounts)
HOOKS = connection_hooks(
    "abm", abm_servers, SEALED, ("access_token_expiry",), owned.owner, CHILDREN, apple_side
)
