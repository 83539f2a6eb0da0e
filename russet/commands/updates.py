"""OS software updates."""

from __future__ import annotations

from typing import Any

from russet.commands.base import Command, Param

INSTALL_ACTIONS = (
    "Default",
    "DownloadOnly",
    "InstallASAP",
    "NotifyOnly",
    "InstallLater",
    "InstallForceRestart",  # may lose unsaved work
)


class ScheduleOSUpdate(Command):
    """Download and/or install OS updates on a supervised device.

    Each update names its target by `ProductKey` (from AvailableOSUpdates) or `ProductVersion`.
    """

    request_type = "ScheduleOSUpdate"
    params = {
        "Updates": Param(
            "array",
            required=True,
            item=Param(
                "dictionary",
                subkeys={
                    "ProductKey": Param("string"),
                    "ProductVersion": Param("string"),
                    "InstallAction": Param("string", required=True, choices=INSTALL_ACTIONS),
                    "MaxUserDeferrals": Param("integer"),
                    "Priority": Param("string", choices=("Low", "High")),
                },
            ),
        )
    }

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        for i, update in enumerate(values["Updates"]):
            if "ProductKey" not in update and "ProductVersion" not in update:
                return f"Updates[{i}] needs ProductKey or ProductVersion"
            if "MaxUserDeferrals" in update and update["InstallAction"] != "InstallLater":
                return f"Updates[{i}].MaxUserDeferrals only applies to InstallAction InstallLater"
        return None


class AvailableOSUpdates(Command):
    """List the OS updates the device could install."""

    request_type = "AvailableOSUpdates"


class OSUpdateStatus(Command):
    """Ask how scheduled OS updates are progressing."""

    request_type = "OSUpdateStatus"
