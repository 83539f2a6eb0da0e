"""What the groups feature needs from others, as Protocols the composition root wires.

Device facts belong to the MDM core (`russet.mdm.facts` implements `DeviceFacts`); groups only
read them, in bulk, and never touch the MDM core's tables.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol


class DeviceFacts(Protocol):
    """The facts smart-group queries test, one mapping per device channel.

    Each mapping has `device_id` and every field of `russet.groups.query.FIELDS`: text fields as
    str or None, `os_version` as the device reports it, booleans as bool or None (unknown),
    `abm_account` as a tuple of ABM connection names listing the serial (empty when none), and
    `last_checkin` as an aware datetime or None.
    """

    def facts(self, device_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
        """Facts of the given devices (those that exist), or of every device when None."""
        ...

    def resolve(self, identifiers: Collection[str]) -> dict[str, list[str]]:
        """For each identifier (a UDID, EnrollmentID or serial number, any case) the device ids
        it names; identifiers naming nothing are left out."""
        ...
