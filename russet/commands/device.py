"""Acting on the device itself: the secrets and PIN rules Apple's schema does not state."""

from __future__ import annotations

import re

from russet.commands import generated
from russet.commands.base import refine

#: Find My PIN of a Mac: the only way to unlock a Mac after DeviceLock/EraseDevice, so keep it.
_PIN = {"pattern": re.compile(r"[0-9]{6}"), "hint": "a string of 6 digits"}


class DeviceLock(generated.DeviceLock):
    """Lock the device now, optionally showing a message and phone number on the Lock screen."""

    params = refine(generated.DeviceLock.params, "PIN", **_PIN)
    secret_keys = frozenset({"PIN"})


class EraseDevice(generated.EraseDevice):
    """Erase the device; on iOS 17+ `ReturnToService` brings it back to enrollment unattended."""

    params = refine(generated.EraseDevice.params, "PIN", **_PIN)
    # The Wi-Fi profile of Return to Service carries the network's password.
    secret_keys = frozenset({"PIN", "WiFiProfileData", "MDMProfileData"})


class ClearPasscode(generated.ClearPasscode):
    """Remove the passcode; needs the UnlockToken the device sent in TokenUpdate."""

    secret_keys = frozenset({"UnlockToken"})


class RequestUnlockToken(generated.RequestUnlockToken):
    """Ask a supervised device for its UnlockToken, needed later by ClearPasscode."""

    secret_keys = frozenset({"UnlockToken"})  # in the device's answer
