"""What the ledger's admin needs from the features, as Protocols the composition root wires:
the MDM core's device aliases, and who is who for the subject look-up (Apps and Books users,
MDM enrollments, ABM/ASM devices), and who forgets a person when the subject is erased."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection


class SubjectAliases(Protocol):
    """A device's other identifiers: Apple is told a serial number where Russet knows a UDID."""

    def aliases(self, identifier: str) -> set[str]: ...


@dataclass(frozen=True)
class Link:
    """An identifier linked to the one looked up, and who said so.

    `kind`: email, managed_apple_id, client_user_id, udid, serial, enrollment, or a kind that only
    informs (abm_connection, vpp_location) and is not looked up further.
    """

    kind: str
    value: str
    source: str  # e.g. "Apps and Books users (location Main)", "MDM enrollments"


class SubjectLinks(Protocol):
    """One feature's knowledge of who is who: the identifiers linked to `identifier` (a person's
    email, Managed Apple ID or client user id; a device's UDID or serial number)."""

    def links(self, identifier: str) -> list[Link]: ...


class SubjectErasure(Protocol):
    """One feature's personal data that a subject's erasure clears, beyond the ledger's rows: the
    people who signed in before enrollment (enrollment requests)."""

    def forget(self, conn: Connection, people: Collection[str]) -> int:
        """Clear what is kept about these people (person ids or emails, any case) in the caller's
        transaction (the ledger's erasure is all or nothing); return how many records changed."""
        ...
