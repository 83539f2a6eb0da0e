"""Small in-memory implementations of the blueprints feature's ports, for tests and the benchmark.

They stand for the groups service, the profile library, the MDM core's device service and its
inventory, which are built on other branches; they behave as those ports promise (NotFound for an
unknown group or profile, one CommandUUID per target, reports read in bulk) and record what they
were asked, so tests can assert what the reconciler queued.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from russet.blueprints.ports import AppVersion, DeviceReport, ProfileVersion
from russet.kernel.errors import NotFound


class MemoryGroups:
    def __init__(self, groups: Mapping[int, Collection[str]] | None = None) -> None:
        self.groups: dict[int, set[str]] = {g: set(m) for g, m in (groups or {}).items()}

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        for g in [*include, *exclude]:
            if g not in self.groups:
                raise NotFound(f"no group {g}")
        members: set[str] = set()
        for g in include:
            members |= self.groups[g]
        for g in exclude:
            members -= self.groups[g]
        return members

    def groups_of(self, device_id: str) -> set[int]:
        return {g for g, members in self.groups.items() if device_id in members}


class MemoryLibrary:
    """Profiles by ref, each a list of versions; `render` is deterministic, per device only when
    the profile is marked as using variables."""

    def __init__(self) -> None:
        self.versions: dict[str, list[ProfileVersion]] = {}
        self.with_variables: set[str] = set()
        self.renders = 0

    def add(self, ref: str, identifier: str | None = None) -> ProfileVersion:
        versions = self.versions.setdefault(ref, [])
        n = len(versions) + 1
        pv = ProfileVersion(
            ref,
            n,
            identifier or f"com.example.{ref}",
            f"UUID-{ref}-{n}",
            hashlib.sha256(f"{ref}:{n}".encode()).hexdigest(),
        )
        versions.append(pv)
        return pv

    def latest(self, ref: str) -> ProfileVersion:
        if not self.versions.get(ref):
            raise NotFound(f"no profile {ref!r} in the library")
        return self.versions[ref][-1]

    def version(self, ref: str, version: int) -> ProfileVersion:
        versions = self.versions.get(ref) or []
        if not 1 <= version <= len(versions):
            raise NotFound(f"profile {ref!r} has no version {version}")
        return versions[version - 1]

    def render(self, ref: str, version: int, device_id: str) -> bytes:
        self.renders += 1
        pv = self.version(ref, version)
        suffix = f":{device_id}" if ref in self.with_variables else ""
        return f"signed:{pv.payload_uuid}{suffix}".encode()


@dataclass
class Sent:
    targets: list[str]
    command: dict[str, Any]
    created_by: str
    uuids: dict[str, str]


@dataclass
class MemorySender:
    sent: list[Sent] = field(default_factory=list)
    counter: Any = field(default_factory=lambda: itertools.count(1))
    fail_with: Exception | None = None
    keep: bool = True  # False: count only (the benchmark queues hundreds of thousands)
    queued: int = 0

    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        if self.fail_with is not None:
            raise self.fail_with
        uuids = {t: f"CMD-{next(self.counter)}" for t in targets}
        self.queued += len(targets)
        if self.keep:
            self.sent.append(Sent(list(targets), command, created_by, uuids))
        return {
            "request_type": command["RequestType"],
            "commands": [{"device": t, "command_uuid": u} for t, u in uuids.items()],
        }

    def commands_for(self, device_id: str) -> list[tuple[str, dict[str, Any]]]:
        """(CommandUUID, command) queued for one device, in order."""
        return [(s.uuids[device_id], s.command) for s in self.sent if device_id in s.uuids]

    def by_type(self, request_type: str) -> list[tuple[str, str, dict[str, Any]]]:
        return [
            (d, s.uuids[d], s.command)
            for s in self.sent
            if s.command["RequestType"] == request_type
            for d in s.targets
        ]


class MemoryReports:
    def __init__(self) -> None:
        self.reports: dict[str, DeviceReport] = {}
        self.calls = 0

    def reported(self, device_ids: Collection[str]) -> Mapping[str, DeviceReport]:
        self.calls += 1
        return {d: self.reports[d] for d in device_ids if d in self.reports}

    def set(self, device_id: str, **changes: Any) -> None:
        self.reports[device_id] = replace(self.reports.get(device_id, DeviceReport()), **changes)

    def profile_list(self, device_id: str, profiles: Mapping[str, str], at: datetime) -> None:
        self.set(device_id, profiles=dict(profiles), profiles_at=at)

    def app_list(self, device_id: str, apps: Mapping[str, str], at: datetime) -> None:
        self.set(device_id, apps=dict(apps), apps_at=at)


class MemoryApps:
    """The app catalogue: apps by name, each with a licence count (None: an enterprise app, no
    licence needed); `licence` answers ready while licences are left, recording who holds one."""

    def __init__(self) -> None:
        self.apps: dict[str, AppVersion] = {}
        self.licences_left: dict[str, int | None] = {}
        self.held: set[tuple[str, str]] = set()  # (device, ref)
        self.released: list[tuple[str, str]] = []
        self.waiting: set[tuple[str, str]] = set()  # (device, ref) Apple has not answered yet

    def add(self, ref: str, bundle_id: str | None = None, licences: int | None = None) -> AppVersion:
        app = AppVersion(ref, bundle_id or f"com.example.{ref}", hashlib.sha256(ref.encode()).hexdigest())
        self.apps[ref] = app
        self.licences_left[ref] = licences
        return app

    def app(self, ref: str) -> AppVersion:
        if ref not in self.apps:
            raise NotFound(f"no app {ref!r} in the catalogue")
        return self.apps[ref]

    def shortfall(self, ref: str, device_ids: Sequence[str]) -> str | None:
        left = self.licences_left[ref]
        need = len([d for d in device_ids if (d, ref) not in self.held])
        if left is not None and need > left:
            return f"app {ref!r}: {need} devices in scope need a licence, {left} left"
        return None

    def install_command(
        self, ref: str, device_id: str, configuration: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        command: dict[str, Any] = {"RequestType": "InstallApplication", "Identifier": self.app(ref).bundle_id}
        if configuration:
            command["Configuration"] = dict(configuration)
        return command

    def licence(self, device_id: str, ref: str, *, retry: bool) -> tuple[str, str | None]:
        left = self.licences_left[ref]
        if left is None or (device_id, ref) in self.held:
            return "ready", None
        if (device_id, ref) in self.waiting:
            return "waiting", "asked of Apple"
        if left < 1:
            return "failed", f"app {ref!r}: no licence left"
        self.licences_left[ref] = left - 1
        self.held.add((device_id, ref))
        return "ready", None

    def release(self, device_id: str, ref: str) -> None:
        self.released.append((device_id, ref))
        if (device_id, ref) in self.held:
            self.held.discard((device_id, ref))
            left = self.licences_left[ref]
            self.licences_left[ref] = None if left is None else left + 1
