"""OS software updates: the rules between the keys of each update."""

from __future__ import annotations

from typing import Any

from russet.commands import generated


class ScheduleOSUpdate(generated.ScheduleOSUpdate):
    """Download and/or install OS updates on a supervised device.

    Each update names its target by `ProductKey` (from AvailableOSUpdates) or `ProductVersion`.
    """

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        for i, update in enumerate(values["Updates"]):
            if "ProductKey" not in update and "ProductVersion" not in update:
                return f"Updates[{i}] needs ProductKey or ProductVersion"
            if "MaxUserDeferrals" in update and update["InstallAction"] != "InstallLater":
                return f"Updates[{i}].MaxUserDeferrals only applies to InstallAction InstallLater"
        return None
