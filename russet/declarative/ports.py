"""What the declarative feature needs from other features, as Protocols the composition root wires.

Group membership comes from the groups service, enrollment state from the MDM core's read model
(`russet.mdm.lifecycle`), the DeclarativeManagement command from the MDM core's device service
(which writes its push request with it). Declarations never read another feature's tables.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol


class Groups(Protocol):
    def group_id(self, ref: str) -> int:
        """The id of the group named `ref` (or with that id, as text); NotFound if none."""
        ...

    def group_names(self) -> dict[int, str]:
        """Every group's id -> name, for showing assignments."""
        ...

    def members(self, group_id: int) -> set[str]:
        """Device channel ids in the group (empty for a group that no longer exists)."""
        ...

    def groups_of(self, device_id: str) -> list[str]:
        """The names of the groups the device is in."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceLife:
    enrolled: bool
    authenticated_at: datetime | None  # moves when the device enrolls again (after an erase)


class Devices(Protocol):
    def device_id(self, ref: str) -> str | None:
        """The device channel a UDID or serial number names, or None."""
        ...

    def lives(self, device_ids: Collection[str]) -> dict[str, DeviceLife]:
        """Enrollment state of the known devices among `device_ids`."""
        ...


class LibraryVersion(Protocol):
    """One version of a profile-library profile."""

    @property
    def ref(self) -> str: ...
    @property
    def version(self) -> int: ...
    @property
    def content_hash(self) -> str: ...


class LibraryProfiles(Protocol):
    """The profile library, for legacy declarations that wrap one of its profiles."""

    def latest(self, ref: str) -> LibraryVersion:
        """The newest version of profile `ref`; NotFound if there is no such profile."""
        ...

    def version(self, ref: str, version: int) -> LibraryVersion:
        """That version; NotFound if the profile or the version does not exist."""
        ...

    def render(self, ref: str, version: int, device_id: str) -> bytes:
        """The signed .mobileconfig of that version for one device (its variables filled in)."""
        ...


class CommandSender(Protocol):
    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        """Queue `command` once per target (with its push); raises a kind of russet.kernel.errors."""
        ...


class BlueprintDeclarations(Protocol):
    """The blueprints feature: the declarations each blueprint lists, reaching the devices in its
    scope (beside direct and group assignments)."""

    def declaration_scope(self, device_ids: Collection[str] | None = None) -> dict[str, dict[str, str]]:
        """Device -> {declaration Identifier: the name of the blueprint listing it}, for every
        device in the scope of a blueprint that lists declarations (only `device_ids` if given)."""
        ...

    def declaration_items(self) -> dict[str, list[str]]:
        """Declaration Identifier -> the names of the blueprints that list it."""
        ...
