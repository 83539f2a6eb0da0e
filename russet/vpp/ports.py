"""What Apps and Books needs from the MDM core, as Protocols the composition root wires.

Licences of devices that left (unenrolled or erased) are taken back: the core says which left.
An app install queues InstallApplication and ManagedApplicationList on a device and reads their
results back, and first finds the device by its UDID or serial number. Those are the MDM core's
use cases; Apps and Books asks through these ports and never reads or writes the core's tables
or stores itself (issue #12). The people who signed in before enrollment (ADE sign-in,
account-driven) come from the enrollment feature, to register them as users (issue #17).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class DeviceRef:
    """A device channel as an install needs it."""

    id: str  # the enrollment id (UDID)
    serial_number: str | None
    enrolled: bool


class DeviceLookup(Protocol):
    def find_device(self, device: str) -> DeviceRef | None:
        """The device channel named by its enrollment id or serial number (the enrolled one,
        then the most recently seen, when several match); None when none does."""
        ...

    def departed(self, since: Mapping[str, datetime | None]) -> dict[str, str]:
        """Of these serial numbers, the devices that left, serial -> why (their licences are
        taken back): unenrolled, or erased after the serial's time in `since` (when its latest
        licence was assigned)."""
        ...


class CommandSender(Protocol):
    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        """Validate a command and queue it for each target; `{"commands": [{"device",
        "command_uuid"}, ...], ...}`. Raises kinds from `russet.kernel.errors` when it cannot."""
        ...

    def command_status(self, command_uuid: str) -> dict[str, Any] | None:
        """A queued command's delivery: `status`, `status_reason` and the device's `result`."""
        ...


class SignedInPeople(Protocol):
    def emails(self, limit: int) -> list[str]:
        """The distinct emails (compared in any case) of the people who signed in before an
        enrollment profile was handed out, first seen first, at most `limit`."""
        ...
