"""What disconnect and purge do to the APNs connection (registered in `russet.runtime`).

Imports neither the runtime nor the pusher: the runtime imports this module while it is itself
being imported.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from russet.apns.certificate import PENDING_KEY, PUSH_KIND
from russet.apns.state import STOP_SETTING
from russet.apns.tables import apns_push
from russet.apple.connections import ServiceHooks
from russet.mdm.tables import enrollments
from russet.storage.tables import certificates, settings


def destroy_credentials(conn: Connection, name: str) -> dict[str, list[str]]:
    """Wipe the push certificates' private keys and a push key still waiting for its certificate.

    The certificates themselves (public) stay, so the record of what was installed survives.
    """
    destroyed: dict[str, list[str]] = {}
    keyed = list(
        conn.execute(
            select(certificates.c.fingerprint).where(
                certificates.c.kind == PUSH_KIND, certificates.c.sealed_key.is_not(None)
            )
        ).scalars()
    )
    if keyed:
        conn.execute(
            update(certificates)
            .where(certificates.c.kind == PUSH_KIND, certificates.c.sealed_key.is_not(None))
            .values(sealed_key=None)
        )
        destroyed["apns_push_key"] = keyed
    if conn.execute(delete(settings).where(settings.c.key == PENDING_KEY)).rowcount:
        destroyed["apns_pending_key"] = [PENDING_KEY]
    return destroyed


_sealed_push = enrollments.c.sealed_push
_push_certs = certificates.c.kind == PUSH_KIND
_SETTINGS = (PENDING_KEY, STOP_SETTING)


def purge(conn: Connection, name: str) -> dict[str, list[str]]:
    """Delete push state, every enrollment's push token and PushMagic (they came from the devices
    but exist only to talk to APNs) and the push certificates themselves (their serial numbers
    and topic are the connection's identifiers at Apple)."""
    removed: dict[str, list[str]] = {}
    certs = list(conn.execute(select(certificates.c.fingerprint).where(_push_certs)).scalars())
    if certs:
        conn.execute(delete(certificates).where(_push_certs))
        removed["certificates"] = certs
    ids = [str(i) for i in conn.execute(select(apns_push.c.enrollment_id)).scalars()]
    if ids:
        conn.execute(delete(apns_push))
        removed["apns_push"] = ids
    # Token and PushMagic are sealed together in one column; the receipt names both.
    held = [str(i) for i in conn.execute(select(enrollments.c.id).where(_sealed_push.is_not(None))).scalars()]
    if held:
        conn.execute(update(enrollments).where(_sealed_push.is_not(None)).values(sealed_push=None))
        removed["enrollments.push_token"] = held
        removed["enrollments.push_magic"] = held
    if conn.execute(delete(settings).where(settings.c.key == STOP_SETTING)).rowcount:
        removed["settings"] = [STOP_SETTING]
    return removed


def traces(conn: Connection, name: str) -> dict[str, int]:
    """Rows tied to the APNs connection: certificates, push state, sealed push tokens, settings."""

    def count(table: Any, *where: Any) -> int:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())

    return {
        "certificates": count(certificates, _push_certs),
        "apns_push": count(apns_push),
        "enrollments.sealed_push": count(enrollments, _sealed_push.is_not(None)),
        "settings": count(settings, settings.c.key.in_(_SETTINGS)),
    }


def apple_side(name: str) -> list[str]:
    return [
        "Revoke the MDM push certificate at https://identity.apple.com/pushcert (Apple keeps it valid "
        "until it expires otherwise).",
        "Enrolled devices keep listening on the certificate's topic until they are unenrolled; they "
        "need a new TokenUpdate (re-enrollment) before Russet can push them again.",
    ]


HOOKS = ServiceHooks(
    service="apns", destroy_credentials=destroy_credentials, purge=purge, apple_side=apple_side, traces=traces
)
