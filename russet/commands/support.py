"""Where a command (or one of its keys) can run, as Apple's `supportedOS` says, and why not.

Apple's command schemas say, per platform, from which OS version a command or key exists, whether
it needs supervision or Automated Device Enrollment, whether User Enrollment and Shared iPad allow
it, and on which channel (device or user) it may be sent. `Support` holds that for one platform;
`DeviceFacts` is what Russet knows of one target; `Support.refusals` words every mismatch, so an
admin learns at once why a command would fail rather than hours later from the device's error.

Facts Russet does not know yet (a device that has not answered DeviceInformation) are not grounds
for refusal: the device's own error then says it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

Platform = Literal["iOS", "macOS", "tvOS", "visionOS", "watchOS"]
PLATFORMS: tuple[Platform, ...] = get_args(Platform)
Channel = Literal["device", "user"]
SharedIPadMode = Literal["allowed", "forbidden", "required", "ignored"]

_VERSION = re.compile(r"[0-9]+(\.[0-9]+)*")

# Product names (DeviceInformation ProductName/Model, MachineInfo PRODUCT) by prefix, longest first
# where one prefix starts another.
_PRODUCT_PREFIXES: tuple[tuple[str, Platform], ...] = (
    ("iphone", "iOS"),
    ("ipad", "iOS"),
    ("ipod", "iOS"),
    ("imac", "macOS"),
    ("virtualmac", "macOS"),
    ("mac", "macOS"),
    ("appletv", "tvOS"),
    ("apple tv", "tvOS"),
    ("watch", "watchOS"),
    ("apple watch", "watchOS"),
    ("realitydevice", "visionOS"),
    ("apple vision", "visionOS"),
)


def version_tuple(text: str) -> tuple[int, ...] | None:
    """`"10.13.4"` as `(10, 13, 4)`; None for anything else (an unknown version is not compared)."""
    text = text.strip()
    if not _VERSION.fullmatch(text):
        return None
    return tuple(int(part) for part in text.split("."))


def _older(version: tuple[int, ...], than: tuple[int, ...]) -> bool:
    width = max(len(version), len(than))
    return version + (0,) * (width - len(version)) < than + (0,) * (width - len(than))


def platform_of(product: str | None) -> Platform | None:
    """The platform of a product name (`iPhone14,2`, `MacBookPro18,1`, `AppleTV11,1`, `iPad`...).

    None when the name says nothing Russet recognises; iPadOS counts as iOS, as in Apple's schemas.
    """
    if not product:
        return None
    name = product.strip().lower()
    for prefix, platform in _PRODUCT_PREFIXES:
        if name.startswith(prefix):
            return platform
    return None


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What Russet knows of the channel a command is sent to; None means not known yet.

    `channel` is "user" for a user channel (`<device id>:<user id>`). `shared_ipad` is a Shared
    iPad (DeviceInformation `IsMultiUser`), `ade` an enrollment through Automated Device
    Enrollment (SecurityInfo `ManagementStatus.EnrolledViaDEP`).
    """

    platform: Platform | None = None
    os_version: str | None = None
    supervised: bool | None = None
    channel: Channel = "device"
    user_enrollment: bool | None = None
    shared_ipad: bool | None = None
    ade: bool | None = None

    @classmethod
    def from_inventory(
        cls, inventory: Mapping[str, object], channel: Channel = "device", user_enrollment: bool | None = None
    ) -> DeviceFacts:
        """Facts from a device's stored inventory (the `DeviceInformation` and `SecurityInfo` sections).

        Values of the wrong type (the device's answer is outside input) count as unknown.
        """
        info = inventory.get("DeviceInformation")
        info = info if isinstance(info, Mapping) else {}
        security = inventory.get("SecurityInfo")
        status = security.get("ManagementStatus") if isinstance(security, Mapping) else None
        status = status if isinstance(status, Mapping) else {}
        product = next(
            (v for k in ("ProductName", "Model", "ModelName") if isinstance(v := info.get(k), str)), None
        )
        if user_enrollment is None and isinstance(status.get("IsUserEnrollment"), bool):
            user_enrollment = bool(status["IsUserEnrollment"])
        return cls(
            platform=platform_of(product),
            os_version=_str_or_none(info.get("OSVersion")),
            supervised=_bool_or_none(info.get("IsSupervised")),
            channel=channel,
            user_enrollment=user_enrollment,
            shared_ipad=_bool_or_none(info.get("IsMultiUser")),
            ade=_bool_or_none(status.get("EnrolledViaDEP")),
        )


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _bool_or_none(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Support:
    """One platform's entry of Apple's `supportedOS`, for a command or for one of its keys.

    Every field is a constraint; its default means Apple states none. For a key, constraints add
    to those of its command. `available=False` is Apple's `introduced: n/a`.
    `device_channel`/`user_channel` are the macOS (and tvOS) channel flags, the `shared_ipad_*`
    ones iOS's on a Shared iPad. `access_rights` is the enrollment right it needs (not checked:
    Russet's profiles grant every right). `deprecated` is informational: Apple still runs it.
    """

    available: bool = True
    introduced: str | None = None
    deprecated: str | None = None
    removed: str | None = None
    supervised: bool = False
    requires_ade: bool = False
    user_enrollment: bool | None = None
    device_channel: bool | None = None
    user_channel: bool | None = None
    shared_ipad: SharedIPadMode | None = None
    shared_ipad_device_channel: bool | None = None
    shared_ipad_user_channel: bool | None = None
    access_rights: str | None = None

    def refusals(self, platform: Platform, facts: DeviceFacts, *, whole_command: bool) -> list[str]:
        """Why `facts` cannot run this on `platform`, each as the end of a sentence; [] when it can.

        `whole_command`: channels Apple leaves unstated for a command mean "device channel only";
        for a key, unstated means "as its command".
        """
        if not self.available:
            return [f"is not available on {platform}"]
        out = []
        running = version_tuple(facts.os_version) if facts.os_version else None
        if running is not None:
            runs = f"(the device runs {facts.os_version})"
            needed = version_tuple(self.introduced) if self.introduced else None
            if needed is not None and _older(running, needed):
                out.append(f"needs {platform} {self.introduced} or later {runs}")
            gone = version_tuple(self.removed) if self.removed else None
            if gone is not None and not _older(running, gone):
                out.append(f"was removed in {platform} {self.removed} {runs}")
        if self.supervised and facts.supervised is False:
            out.append(f"needs a supervised device on {platform}")
        if self.requires_ade and facts.ade is False:
            out.append(f"needs a device enrolled through Automated Device Enrollment on {platform}")
        if self.user_enrollment is False and facts.user_enrollment:
            out.append(f"is not available with User Enrollment on {platform}")
        if platform == "iOS":
            if self.shared_ipad == "forbidden" and facts.shared_ipad:
                out.append("is not available on a Shared iPad")
            if self.shared_ipad == "required" and facts.shared_ipad is False:
                out.append("needs a Shared iPad")
        if not self._channel_allowed(platform, facts, whole_command):
            out.append(f"is not available on the {facts.channel} channel on {platform}")
        return out

    def _channel_allowed(self, platform: Platform, facts: DeviceFacts, whole_command: bool) -> bool:
        # iOS has user channels only on a Shared iPad, and Apple states iOS's channels under
        # `sharedipad`; the device channel of any other iOS device takes every iOS command.
        if platform == "iOS":
            if facts.channel == "user":
                allowed = self.shared_ipad_user_channel
                return bool(allowed) if whole_command else allowed is not False
            return not (facts.shared_ipad and self.shared_ipad_device_channel is False)
        if facts.channel == "user":
            return bool(self.user_channel) if whole_command else self.user_channel is not False
        return self.device_channel is not False

    def allows_user_channel(self, platform: Platform) -> bool:
        """Whether Apple lets a command with this support run on a user channel of `platform`."""
        return bool(self.shared_ipad_user_channel if platform == "iOS" else self.user_channel)
