"""The minimum OS version an ADE device needs to enroll, per platform, and the answer for one below it.

The admin sets a version per platform (`russet enrollment minimum-os ios 17.4`); it lives in the
settings table (one key per platform), so no table of its own. When an ADE device's MachineInfo
says it runs an older OS, /mdm/enroll answers Apple's `com.apple.softwareupdate.required` 403
(iOS 17 and macOS 14 know it): Setup Assistant installs the version named and asks again, and
that request, from the updated OS, gets its profile.

A blueprint may have its own minimum per platform: it wins for a device whose serial ABM/ASM has
assigned an ADE profile naming that blueprint (`… minimum-os ios 18.1 --blueprint Lab`). It is
kept under the blueprint's id; a blueprint deleted while a profile still names its id keeps it.

A device that does not say `MDM_CAN_REQUEST_SOFTWARE_UPDATE` cannot act on that answer (older
systems, and tvOS, watchOS and visionOS, which Apple's schema lists as unsupported); it gets a
plain 403 naming the minimum. So does a device that does not say which OS it runs (OS_VERSION,
sent from iOS 17 and macOS 14): a minimum is a promise that every enrolled device meets it, and
a device whose version is unknown cannot be shown to. OTA enrollment is not checked: its request
carries no trustworthy version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from russet.abm.tables import abm_devices, abm_profiles
from russet.kernel.errors import Invalid, NotFound
from russet.storage.db import reading
from russet.storage.settings import SettingsStore

PLATFORMS = ("ios", "macos", "tvos", "visionos", "watchos")
NAMES = {"ios": "iOS", "macos": "macOS", "tvos": "tvOS", "visionos": "visionOS", "watchos": "watchOS"}
SETTING_PREFIX = "enrollment.minimum_os."
MAX_VERSION_CHARS = 20
_VERSION = re.compile(r"\d{1,4}(\.\d{1,4}){0,2}")
# MachineInfo PRODUCT prefix -> platform (iPads run iPadOS, whose versions are iOS's).
_PRODUCTS = (
    ("iPhone", "ios"),
    ("iPad", "ios"),
    ("iPod", "ios"),
    ("VirtualMac", "macos"),
    ("Mac", "macos"),
    ("iMac", "macos"),
    ("AppleTV", "tvos"),
    ("RealityDevice", "visionos"),
    ("Watch", "watchos"),
)
SOFTWARE_UPDATE_REQUIRED = "com.apple.softwareupdate.required"


def platform_of_product(product: str) -> str | None:
    """The platform of a MachineInfo PRODUCT (iPhone15,2 -> ios, Mac14,2 -> macos), None if unknown."""
    for prefix, platform in _PRODUCTS:
        if product.startswith(prefix):
            return platform
    return None


def version_key(version: str) -> tuple[int, ...]:
    """A version as numbers to compare (17.10 > 17.4), trailing zeros dropped (17.4.0 == 17.4)."""
    parts = [int(p) for p in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def check_platform(platform: str) -> str:
    found = platform.strip().lower()
    if found not in PLATFORMS:
        raise Invalid(f"unknown platform {platform[:40]!r}: expected one of {', '.join(PLATFORMS)}")
    return found


def check_version(version: str) -> str:
    """An OS version as the admin writes it: 17, 17.4 or 17.4.1 (numbers only)."""
    found = version.strip()
    if len(found) > MAX_VERSION_CHARS or not _VERSION.fullmatch(found):
        raise Invalid(f"{version[:40]!r} is not an OS version: expected numbers such as 17.4 or 14.6.1")
    return found


def device_version(os_version: str | None) -> tuple[int, ...] | None:
    """The numbers of a device's OS_VERSION ("17.4", "17.4.1"), None when absent or unreadable."""
    if not os_version:
        return None
    found = _VERSION.match(os_version.strip())
    return None if found is None else version_key(found.group(0))


@dataclass(frozen=True)
class Minimum:
    """The minimum OS a device's platform needs."""

    platform: str
    version: str
    blueprint_id: int | None = None  # None: the platform's minimum for every device

    @property
    def label(self) -> str:
        return f"{NAMES[self.platform]} {self.version}"

    @property
    def source(self) -> str:
        """Whose minimum it is, for the log."""
        return "every device" if self.blueprint_id is None else f"blueprint {self.blueprint_id}"


@dataclass(frozen=True)
class Shortfall:
    """A device below the minimum: what it runs, what it needs, and whether it can be asked to update."""

    minimum: Minimum
    running: str | None
    can_update: bool

    def reason(self) -> str:
        """The plain 403's text, for a device that cannot act on the software update answer."""
        runs = (
            f"runs {NAMES[self.minimum.platform]} {self.running}"
            if self.running
            else "did not say which OS version it runs"
        )
        return (
            f"Russet requires {self.minimum.label} or later to enroll; this device {runs} and cannot be "
            "asked to update during enrollment: update it, then enroll again"
        )

    def apple_error(self) -> dict[str, Any]:
        """Apple's ErrorCodeSoftwareUpdateRequired body (mdm/errors/softwareupdate.required.yaml)."""
        return {
            "code": SOFTWARE_UPDATE_REQUIRED,
            "description": (
                f"Russet requires {self.minimum.label} or later to enroll; the device runs {self.running}"
            ),
            "message": f"This device must update to {self.minimum.label} or later before it can enroll.",
            "details": {"OSVersion": self.minimum.version},
        }


def shortfall(
    minimum: Minimum | None, os_version: str | None, can_request_software_update: bool
) -> Shortfall | None:
    """Why a device with this OS_VERSION may not enroll yet, or None when it may."""
    if minimum is None:
        return None
    running = device_version(os_version)
    if running is not None and running >= version_key(minimum.version):
        return None
    return Shortfall(
        minimum,
        os_version if running is not None else None,
        can_request_software_update and running is not None,
    )


def _key(platform: str, blueprint_id: int | None) -> str:
    if blueprint_id is None:
        return SETTING_PREFIX + platform  # enrollment.minimum_os.ios
    return f"{SETTING_PREFIX}blueprint.{blueprint_id}.{platform}"  # enrollment.minimum_os.blueprint.3.ios


class MinimumOsSettings:
    """The minimum OS of each platform, one settings key each (`enrollment.minimum_os.ios`), and
    each blueprint's (`enrollment.minimum_os.blueprint.3.ios`); `engine` reads which blueprint a
    serial's ADE profile names (ABM's tables, as the request log reads them)."""

    def __init__(self, settings: SettingsStore, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine

    def for_device(self, product: str, serial: str) -> Minimum | None:
        """The minimum for a MachineInfo's device: its ADE profile's blueprint's for the platform
        of its PRODUCT, else the platform's (None: no platform known, or none set)."""
        platform = platform_of_product(product)
        if platform is None:
            return None
        blueprint_id = self._ade_blueprint(serial)
        if blueprint_id is not None:
            version = self._settings.get(_key(platform, blueprint_id))
            if version is not None:
                return Minimum(platform, version, blueprint_id)
        version = self._settings.get(_key(platform, None))
        return None if version is None else Minimum(platform, version)

    def _ade_blueprint(self, serial: str) -> int | None:
        """The blueprint named by the ADE profile ABM/ASM assigned to `serial` (the first
        connection's, by name, when several list it: as the blueprints' ADE set-up picks)."""
        d, p = abm_devices.c, abm_profiles.c
        with reading(self._engine) as conn:
            found = conn.execute(
                select(p.blueprint_id)
                .select_from(
                    abm_devices.join(
                        abm_profiles, (p.connection == d.connection) & (p.profile_uuid == d.profile_uuid)
                    )
                )
                .where(d.serial_number == serial, p.blueprint_id.is_not(None))
                .order_by(d.connection)
                .limit(1)
            ).scalar()
        return None if found is None else int(found)

    def all(self) -> list[Minimum]:
        """The platforms' minimums, then each blueprint's (by id)."""
        found = self._settings.with_prefix(SETTING_PREFIX)
        minimums = [Minimum(p, found[_key(p, None)]) for p in PLATFORMS if _key(p, None) in found]
        blueprint_ids = set()
        for key in found:
            parts = key.removeprefix(SETTING_PREFIX).split(".")
            if len(parts) == 3 and parts[0] == "blueprint" and parts[1].isdigit():
                blueprint_ids.add(int(parts[1]))
        for blueprint_id in sorted(blueprint_ids):
            minimums.extend(
                Minimum(p, found[_key(p, blueprint_id)], blueprint_id)
                for p in PLATFORMS
                if _key(p, blueprint_id) in found
            )
        return minimums

    def set(self, platform: str, version: str, blueprint_id: int | None = None) -> Minimum:
        """Check both (Invalid names the problem, nothing stored), then store."""
        minimum = Minimum(check_platform(platform), check_version(version), blueprint_id)
        self._settings.set(_key(minimum.platform, blueprint_id), minimum.version)
        return minimum

    def clear(self, platform: str, blueprint_id: int | None = None) -> str:
        """The platform, checked; NotFound when it had no minimum."""
        found = check_platform(platform)
        if not self._settings.delete(_key(found, blueprint_id)):
            raise NotFound(
                f"no minimum OS is set for {found}" + ("" if blueprint_id is None else " in this blueprint")
            )
        return found
