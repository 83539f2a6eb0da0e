"""Acting on the device itself: lock, erase, restart, passcode, setup, declarative management."""

from __future__ import annotations

import re

from russet.commands.base import Command, Param

#: Find My PIN of a Mac: the only way to unlock a Mac after DeviceLock/EraseDevice, so keep it.
PIN = Param("string", pattern=re.compile(r"[0-9]{6}"), hint="a string of 6 digits")


class DeviceLock(Command):
    """Lock the device now, optionally showing a message and phone number on the Lock screen."""

    request_type = "DeviceLock"
    params = {"Message": Param("string"), "PhoneNumber": Param("string"), "PIN": PIN}
    secret_keys = frozenset({"PIN"})


class EraseDevice(Command):
    """Erase the device; on iOS 17+ `ReturnToService` brings it back to enrollment unattended."""

    request_type = "EraseDevice"
    # The Wi-Fi profile of Return to Service carries the network's password.
    secret_keys = frozenset({"PIN", "WiFiProfileData", "MDMProfileData"})
    params = {
        "PreserveDataPlan": Param("boolean"),
        "DisallowProximitySetup": Param("boolean"),
        "PIN": PIN,
        "ObliterationBehavior": Param(
            "string", choices=("Default", "DoNotObliterate", "ObliterateWithWarning", "Always")
        ),
        "ReturnToService": Param(
            "dictionary",
            subkeys={
                "Enabled": Param("boolean", required=True),
                "WiFiProfileData": Param("data"),
                "MDMProfileData": Param("data"),
            },
        ),
    }


class RestartDevice(Command):
    """Restart a supervised device (on a Mac, optionally only notifying the user)."""

    request_type = "RestartDevice"
    params = {
        "RebuildKernelCache": Param("boolean"),
        "KextPaths": Param("array", item=Param("string")),
        "NotifyUser": Param("boolean"),
    }


class ShutDownDevice(Command):
    """Shut a supervised device down."""

    request_type = "ShutDownDevice"


class ClearPasscode(Command):
    """Remove the passcode; needs the UnlockToken the device sent in TokenUpdate."""

    request_type = "ClearPasscode"
    params = {"UnlockToken": Param("data", required=True)}
    secret_keys = frozenset({"UnlockToken"})


class RequestUnlockToken(Command):
    """Ask a supervised device for its UnlockToken, needed later by ClearPasscode."""

    request_type = "RequestUnlockToken"
    secret_keys = frozenset({"UnlockToken"})  # in the device's answer


class DeviceConfigured(Command):
    """Release an ADE device waiting at AwaitingConfiguration so Setup Assistant continues."""

    request_type = "DeviceConfigured"


class DeclarativeManagement(Command):
    """Turn on declarative management or make the device sync; `Data` is a TokensResponse JSON."""

    request_type = "DeclarativeManagement"
    params = {"Data": Param("data")}
