"""What the ABM feature needs from others, as Protocols the composition root wires.

An ADE profile may name the blueprint that applies to the devices it enrolls. ABM stores only the
blueprint's id; the blueprints feature says which blueprint a name (or id) is, and what each id is
called now, through `BlueprintNames` (wired in `russet/runtime.py` to `BlueprintService`).
ABM's devices are shown with their enrollment, and an ADE profile's blueprint reaches the devices
enrolled with a listed serial number: the MDM core says which those are through `EnrolledDevices`
(its read model `russet.mdm.reports.DeviceReports`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol


class EnrolledDevices(Protocol):
    def by_serial(self, serials: Collection[str]) -> dict[str, dict[str, Any]]:
        """The device-channel enrollment of each serial number (an enabled one first, then the
        latest seen): `id`, `enrolled`, `device_name`, `os_version`, `last_seen_at`."""
        ...

    def live_by_serial(self, serials: Collection[str]) -> dict[str, list[str]]:
        """The device channel ids of each serial number's enrollments that are not forgotten."""
        ...


class BlueprintNames(Protocol):
    def resolve(self, ref: str) -> tuple[int, str]:
        """The id and name of blueprint `ref` (a name or an id as text); raises
        `russet.kernel.errors.NotFound` naming it when there is no such blueprint."""
        ...

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        """The current name of each blueprint id; a deleted blueprint is left out."""
        ...
