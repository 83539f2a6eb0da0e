"""MDM Lost Mode of supervised iOS devices."""

from __future__ import annotations

from typing import Any

from russet.commands.base import Command, Param


class EnableLostMode(Command):
    """Put the device in Lost Mode; the Lock screen must show a message, a phone number or both."""

    request_type = "EnableLostMode"
    params = {"Message": Param("string"), "PhoneNumber": Param("string"), "Footnote": Param("string")}

    @classmethod
    def cross_check(cls, values: dict[str, Any]) -> str | None:
        if "Message" not in values and "PhoneNumber" not in values:
            return "Message or PhoneNumber is required"
        return None


class DisableLostMode(Command):
    """Take the device out of Lost Mode."""

    request_type = "DisableLostMode"


class DeviceLocation(Command):
    """Ask a device in Lost Mode where it is."""

    request_type = "DeviceLocation"


class PlayLostModeSound(Command):
    """Make a device in Lost Mode play a sound, to find it nearby."""

    request_type = "PlayLostModeSound"
