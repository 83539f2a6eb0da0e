"""What the profile library needs from the rest of Russet, as small protocols the composition root
(`russet/runtime.py`) implements: device facts for variables, a command sender for installs, a
profile signer, and who uses a profile (so one in use is not deleted)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class DeviceFacts(Protocol):
    """What Russet knows about one device (or user channel), for `$VARIABLES`."""

    def facts(self, target: str) -> Mapping[str, str] | None:
        """Values by variable name (`SERIAL`, `UDID`, `DEVICE_NAME`, ...) for an enrollment id, a
        `<device>:<user>` channel or a serial number; None when no such device is enrolled. A
        variable without a value (no user on a device channel) is simply absent."""
        ...


class CommandSender(Protocol):
    """Queues MDM commands (the MDM core's command queue, with its validation and push)."""

    def send_command(
        self, targets: list[str], command: dict[str, Any], *, created_by: str
    ) -> dict[str, Any]:
        """Queue `command` once per target; answers
        `{"request_type": ..., "commands": [{"device": ..., "command_uuid": ...}]}`."""
        ...


class ProfileSigner(Protocol):
    """Signs a profile as Russet signs its enrollment profiles (CMS SignedData, content attached)."""

    def sign(self, profile: dict[str, Any]) -> bytes:
        """The DER SignedData carrying `profile` as an XML plist."""
        ...


class ProfileUsers(Protocol):
    """Something that uses library profiles (blueprints, later): a profile it names is not deleted."""

    def uses_of(self, profile_id: int) -> list[str]:
        """Who uses the profile, in words for the refusal ("blueprint 'Office'"); empty if nobody."""
        ...
