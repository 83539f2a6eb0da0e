"""What the blueprints feature needs from other features, as Protocols the composition root wires.

Blueprints never read another feature's tables: group membership comes from the groups service,
profile versions and their signed bytes from the profile library, apps, their InstallApplication
and their Apps and Books licences from the app catalogue, command queueing from the MDM
core's device service, and what each device last reported from the MDM core's inventory. Each
port is the smallest surface the reconciler uses, so that those services satisfy it as they are
(`GroupService`, `ProfileLibrary`, `DeviceService`) or through a thin adapter in
`russet/runtime.py`. Tests and the benchmark use small in-memory implementations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


class Scopes(Protocol):
    """Group membership (the groups feature)."""

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        """Enrollment ids of the devices in any `include` group and in no `exclude` group.

        Raises `russet.kernel.errors.NotFound` naming a group id that does not exist (the
        blueprint service relies on it to refuse a scope naming an unknown group)."""
        ...

    def groups_of(self, device_id: str) -> set[int]:
        """Ids of the groups one device is in (an indexed read, however large the groups): for
        one device's desired state without reading every scope's devices."""
        ...


@dataclass(frozen=True, slots=True)
class ProfileVersion:
    """One version of a library profile: what a device reports back once it is installed."""

    ref: str  # the library's name (or id, as text) of the profile
    version: int
    payload_identifier: str  # top-level PayloadIdentifier: RemoveProfile's Identifier
    payload_uuid: str  # top-level PayloadUUID: what ProfileList shows for the installed version
    content_hash: str  # hash of the version's content (a new version changes it)


class Profiles(Protocol):
    """The profile library."""

    def latest(self, ref: str) -> ProfileVersion:
        """The newest version of profile `ref`; NotFound when there is no such profile."""
        ...

    def version(self, ref: str, version: int) -> ProfileVersion:
        """Version `version` of profile `ref`; NotFound when either does not exist."""
        ...

    def render(self, ref: str, version: int, device_id: str) -> bytes:
        """The signed .mobileconfig of that version for one device (its variables substituted):
        the `Payload` of InstallProfile. Profiles without variables may return the same bytes for
        every device; the executor then queues one command for all of them."""
        ...


class CommandSender(Protocol):
    """The MDM core's device service."""

    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        """Validate `command` and queue it once per target. Answers
        `{"request_type": ..., "commands": [{"device": id, "command_uuid": uuid}, ...]}`; raises a
        kind of `russet.kernel.errors` (Invalid, NotFound for unknown targets) and queues nothing."""
        ...


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """What one device last told the MDM core about itself."""

    # PayloadIdentifier -> PayloadUUID of every profile in its last ProfileList answer.
    profiles: Mapping[str, str] = field(default_factory=dict)
    profiles_at: datetime | None = None  # when that ProfileList was answered; None: never asked
    # Bundle id -> Status from its last ManagedApplicationList answer.
    apps: Mapping[str, str] = field(default_factory=dict)
    serial_number: str | None = None
    model: str | None = None
    device_name: str | None = None
    facts_at: datetime | None = None  # when device_name/serial/model were last reported
    in_flight: int = 0  # commands queued or sent to the device and not answered, by anyone
    apps_at: datetime | None = None  # when that ManagedApplicationList was answered; None: never


class ReportedState(Protocol):
    """The MDM core's inventory and queue, read in bulk (one call per batch of devices)."""

    def reported(self, device_ids: Collection[str]) -> Mapping[str, DeviceReport]:
        """Each known device's last report; a device the core does not know is left out."""
        ...


class AdeBlueprints(Protocol):
    """Which blueprint the ADE profile that enrolls each device names (the ABM feature)."""

    def ade_blueprints(self) -> Mapping[str, int]:
        """Device channel id -> blueprint id, for every enrolled device whose ADE profile (the one
        ABM/ASM has assigned to its serial number) names a blueprint. A blueprint id that no longer
        exists is ignored by the reconciler."""


@dataclass(frozen=True, slots=True)
class AppVersion:
    """A catalogue app as the reconciler needs it."""

    ref: str  # the catalogue's name of the app
    bundle_id: str  # what ManagedApplicationList lists and RemoveApplication names
    content_hash: str  # changes when what is installed changes


class Apps(Protocol):
    """The app catalogue (`russet.apps`)."""

    def app(self, ref: str) -> AppVersion:
        """The app named `ref` (name or id); NotFound when the catalogue has none."""
        ...

    def shortfall(self, ref: str, device_ids: Sequence[str]) -> str | None:
        """Why the app cannot be licensed to all these devices (too few licences left), or None."""
        ...

    def install_command(
        self, ref: str, device_id: str, configuration: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The InstallApplication command for one device (a ManifestURL may carry its own token)."""
        ...

    def licence(self, device_id: str, ref: str, *, retry: bool) -> tuple[str, str | None]:
        """("ready", None) when InstallApplication may be sent; ("waiting", why) while a licence is
        being assigned (asked when missing); ("failed", why) when none can be had."""
        ...

    def release(self, device_id: str, ref: str) -> None:
        """The app left the device (or never got there): give its licence back, if it has one."""
        ...


class Declarations(Protocol):
    """The declarative feature: the declarations a blueprint may list (`russet.declarations`).
    Blueprints only name them; the declarative feature puts them in each device's set."""

    def declaration_kind(self, identifier: str) -> str:
        """The kind (activation, configuration, asset, management) of the declaration with this
        Identifier; NotFound when there is none."""
        ...
