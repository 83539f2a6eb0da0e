"""What disconnect and purge do to an ABM connection (registered in `russet.runtime`).

Imports only its own tables: the runtime imports this module while it is itself being imported.
"""

from __future__ import annotations

from sqlalchemy import Connection

from russet.abm.tables import (
    abm_accounts,
    abm_devices,
    abm_profile_results,
    abm_profiles,
    abm_servers,
    abm_sync_state,
)
from russet.apple.connections import ServiceHooks, delete_owned, destroy_sealed


def destroy_credentials(conn: Connection, name: str) -> dict[str, list[str]]:
    """Wipe the private key and the server token; the public certificate has no secret."""
    return destroy_sealed(
        conn,
        abm_servers,
        name,
        {"sealed_key": "abm_private_key", "sealed_token": "abm_server_token"},
        also_clear=("access_token_expiry",),
    )


def purge(conn: Connection, name: str) -> dict[str, list[str]]:
    """Delete everything obtained from or tied to the connection, saying which rows."""
    return delete_owned(
        conn,
        name,
        (
            (abm_devices, abm_devices.c.connection, abm_devices.c.serial_number),
            (abm_profile_results, abm_profile_results.c.connection, abm_profile_results.c.serial_number),
            (abm_profiles, abm_profiles.c.connection, abm_profiles.c.profile_uuid),
            (abm_sync_state, abm_sync_state.c.connection, abm_sync_state.c.connection),
            (abm_accounts, abm_accounts.c.connection, abm_accounts.c.connection),
            (abm_servers, abm_servers.c.name, abm_servers.c.name),
        ),
    )


def apple_side(name: str) -> list[str]:
    return [
        f"In Apple Business/School Manager, delete the MDM server behind {name!r} or assign its devices "
        "to another MDM server; until then Apple keeps them assigned to it.",
        "Enrollment profiles already assigned stay with Apple and with devices that fetched them "
        "until the devices are erased or assigned elsewhere.",
    ]


HOOKS = ServiceHooks(
    service="abm", destroy_credentials=destroy_credentials, purge=purge, apple_side=apple_side
)
