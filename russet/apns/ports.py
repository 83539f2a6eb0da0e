"""What APNs administration needs from the MDM core, as a Protocol the composition root wires."""

from __future__ import annotations

from typing import Protocol


class KnownDevices(Protocol):
    """Which of these enrollment ids exist (an on-demand push names only known enrollments)."""

    def existing(self, ids: list[str]) -> set[str]: ...
