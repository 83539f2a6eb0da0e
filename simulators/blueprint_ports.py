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

from russet.blueprints.ports import DeviceReport, ProfileVersion
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
