"""What the ledger's admin needs from the MDM core, as a Protocol the composition root wires."""

from __future__ import annotations

from typing import Protocol


class SubjectAliases(Protocol):
    """A device's other identifiers: Apple is told a serial number where Russet knows a UDID."""

    def aliases(self, identifier: str) -> set[str]: ...
