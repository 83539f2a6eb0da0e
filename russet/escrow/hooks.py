"""What disconnect and purge do to an Activation Lock connection (registered in `russet.runtime`).

The connection presents the APNs certificate, whose key the APNs connection owns and destroys;
this one keeps no credential of its own. Purge deletes the record of clear requests made through
it, then the connection's row. Escrowed bypass codes stay: they came from the devices, not from
Apple. Imports only its own tables and the kit (the runtime imports it while being imported).
"""

from __future__ import annotations

from sqlalchemy import Connection

from russet.apple.connection.hooks import receipt_key
from russet.apple.connections import ServiceHooks, count_owned, delete_owned
from russet.escrow.activation_lock import SERVICE
from russet.escrow.tables import escrow_activation_lock, escrow_activation_lock_clears

_OWNED = (
    (
        escrow_activation_lock_clears,
        escrow_activation_lock_clears.c.connection,
        receipt_key(escrow_activation_lock_clears, "connection"),
    ),
    (escrow_activation_lock, escrow_activation_lock.c.name, escrow_activation_lock.c.name),
)


def destroy_credentials(conn: Connection, name: str) -> dict[str, list[str]]:
    """Nothing of its own to destroy: it authenticates with the APNs certificate."""
    return {}


def purge(conn: Connection, name: str) -> dict[str, list[str]]:
    return delete_owned(conn, name, _OWNED)


def traces(conn: Connection, name: str) -> dict[str, int]:
    return count_owned(conn, name, _OWNED)


def apple_side(name: str) -> list[str]:
    return [
        "Activation Lock cleared through Russet stays cleared; devices that turn it on again need "
        "their new bypass code escrowed before it can be cleared.",
        "To stop Apple accepting requests signed by Russet, revoke the APNs certificate "
        "(disconnect apns) at https://identity.apple.com/pushcert.",
    ]


HOOKS = ServiceHooks(
    service=SERVICE,
    destroy_credentials=destroy_credentials,
    purge=purge,
    apple_side=apple_side,
    traces=traces,
)
