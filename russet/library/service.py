"""`ProfileLibrary`: the profile library's use cases, shared by the API and the CLI.

Upload (validated, versioned), list, show, versions, download, render for one device (variables
substituted, signed by Russet), install on devices (InstallProfile through the command queue),
delete when unused. Errors are `russet.kernel.errors` kinds; nothing here knows HTTP or click.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from russet.commands.profiles import InstallProfile
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.library import upload, variables
from russet.library.ports import CommandSender, DeviceFacts, ProfileSigner, ProfileUsers
from russet.library.store import LibraryStore
from russet.storage.db import as_utc
from russet.storage.secretbox import SecretBox

# A name is typed in CLIs and URLs; a PayloadIdentifier (the default name) fits it too.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+ -]{0,199}")
MAX_INSTALL_TARGETS = 10_000
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with its offset, the same on SQLite (which keeps naive times) and PostgreSQL."""
    aware = as_utc(value)
    return None if aware is None else aware.isoformat()


def _version_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "version": row["version"],
        "payload_uuid": row["payload_uuid"],
        "display_name": row["display_name"],
        "payload_types": row["payload_types"],
        "payloads": row["payloads"],
        "variables": row["variables"],
        "content_sha256": row["content_sha256"],
        "size": row["size"],
        "signed_by": row["signer"],
        "signer_sha256": row["signer_fp"],
        "uploaded_by": row["uploaded_by"],
        "created_at": _iso(row["created_at"]),
    }


def _profile_summary(profile: Mapping[str, Any], latest: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": profile["id"],
        "name": profile["name"],
        "identifier": profile["identifier"],
        "latest_version": latest["version"],
        "display_name": latest["display_name"],
        "payload_types": latest["payload_types"],
        "variables": latest["variables"],
        "content_sha256": latest["content_sha256"],
        "updated_at": _iso(profile["updated_at"]),
    }


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.fullmatch(name):
        raise Invalid(
            f"profile name {name[:60]!r}: use 1 to 200 letters, digits and . _ @ + - or spaces, "
            "starting with a letter or digit"
        )
    return name


class ProfileLibrary:
    """The profile library. `users` say whether a profile is in use (blueprints register later)."""

    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        signer: ProfileSigner,
        facts: DeviceFacts,
        sender: CommandSender,
        users: tuple[ProfileUsers, ...] = (),
    ) -> None:
        self._store = LibraryStore(engine, box)
        self._signer = signer
        self._facts = facts
        self._sender = sender
        self._users: list[ProfileUsers] = list(users)

    def add_users(self, users: ProfileUsers) -> None:
        """Register something that uses profiles (the composition root wires blueprints here)."""
        self._users.append(users)

    # -- upload -----------------------------------------------------------------------------

    def add(self, data: bytes, *, name: str | None = None, uploaded_by: str | None = None) -> dict[str, Any]:
        """Upload a profile: a new profile, a new version of one (same PayloadIdentifier or name),
        or nothing when the content is the latest version's. Nothing is stored for a refusal."""
        parsed = upload.read(data)
        if name is None:
            existing = self._store.profile(parsed.identifier)
            if existing is not None and existing["identifier"] == parsed.identifier:
                name = existing["name"]
            else:
                name = parsed.identifier
                if not _NAME.fullmatch(name):
                    raise Invalid(
                        f"the PayloadIdentifier {name[:60]!r} cannot be a profile name: name the profile"
                    )
        added = self._store.add(parsed, check_name(name), uploaded_by)
        return {
            "profile": _profile_summary(added.profile, added.version),
            "version": added.version["version"],
            "created": added.created,
            "unknown_variables": ["$" + v for v in parsed.unknown_variables],
        }

    # -- reads ------------------------------------------------------------------------------

    def _profile(self, ref: str) -> dict[str, Any]:
        profile = self._store.profile(ref)
        if profile is None:
            raise NotFound(f"no profile named {ref!r} in the library")
        return profile

    def _version(self, profile: Mapping[str, Any], version: int | None) -> dict[str, Any]:
        row = self._store.version(profile["id"], version)
        if row is None:
            raise NotFound(f"profile {profile['name']!r} has no version {version}")
        return row

    def list_profiles(self) -> list[dict[str, Any]]:
        return [_profile_summary(row, row) for row in self._store.profiles()]

    def show(self, ref: str) -> dict[str, Any]:
        """A profile with its latest version's payloads and every version's summary."""
        profile = self._profile(ref)
        versions = self._store.versions(profile["id"])
        return {
            **_profile_summary(profile, versions[0]),
            "created_at": _iso(profile["created_at"]),
            "payloads": versions[0]["payloads"],
            "versions": [_version_summary(v) for v in versions],
        }

    def versions(self, ref: str) -> list[dict[str, Any]]:
        return [_version_summary(v) for v in self._store.versions(self._profile(ref)["id"])]

    def download(self, ref: str, version: int | None = None, device: str | None = None) -> tuple[str, bytes]:
        """(file name, bytes): the stored profile (XML, unsigned, variables as written), or with
        `device` what that device is sent (variables substituted, signed by Russet)."""
        profile = self._profile(ref)
        row = self._version(profile, version)
        stem = _FILENAME_UNSAFE.sub("-", profile["name"]).strip("-") or "profile"
        if device is None:
            return f"{stem}-v{row['version']}.mobileconfig", row["content"]
        rendered = self._render(row, self._device_facts(device), device)
        return f"{stem}-v{row['version']}-{_FILENAME_UNSAFE.sub('-', device)[:64]}.mobileconfig", rendered

    # -- delivery ---------------------------------------------------------------------------

    def _device_facts(self, device: str) -> Mapping[str, str]:
        facts = self._facts.facts(device)
        if facts is None:
            raise NotFound(f"no enrolled device {device!r}")
        return facts

    def _render(self, row: Mapping[str, Any], facts: Mapping[str, str], device: str) -> bytes:
        profile = upload.load_content(row["content"])
        if row["variables"]:
            profile = variables.substitute(profile, facts, device)
        return self._signer.sign(profile)

    def render(
        self,
        profile: str,
        version: int | None,
        device_facts: Mapping[str, str],
        *,
        device: str = "the device",
    ) -> bytes:
        """The signed bytes one device is sent: `device_facts` by variable name (`SERIAL`...).

        A variable the facts lack is refused (MissingValue, a Conflict) naming it and `device`.
        """
        return self._render(self._version(self._profile(profile), version), device_facts, device)

    def render_for(self, profile: str, version: int | None, device: str) -> bytes:
        """`render` with the device's facts looked up (NotFound for a device not enrolled)."""
        return self.render(profile, version, self._device_facts(device), device=device)

    def install(
        self, ref: str, devices: list[str], *, version: int | None = None, created_by: str = "library"
    ) -> dict[str, Any]:
        """Queue InstallProfile with the profile (its latest version unless `version`) for each
        device. Every device's payload is rendered before anything is queued, so a device with
        no value for a variable, or not enrolled, queues nothing for any of them."""
        targets = list(dict.fromkeys(devices))
        if not targets:
            raise Invalid("name at least one device")
        if len(targets) > MAX_INSTALL_TARGETS:
            raise Invalid(f"at most {MAX_INSTALL_TARGETS} devices per install")
        if not all(isinstance(t, str) and t and "\x00" not in t for t in targets):
            raise Invalid("device ids must be non-empty strings without NUL")
        profile = self._profile(ref)
        row = self._version(profile, version)
        if row["variables"]:
            payloads = {t: self._render(row, self._device_facts(t), t) for t in targets}
            commands: list[dict[str, Any]] = []
            for target, payload in payloads.items():
                sent = self._sender.send_command(
                    [target], InstallProfile(Payload=payload).to_dict(), created_by=created_by
                )
                commands += sent["commands"]
        else:  # the same signed bytes for every device: one command body, one queue write
            payload = self._render(row, {}, "every device")
            sent = self._sender.send_command(
                targets, InstallProfile(Payload=payload).to_dict(), created_by=created_by
            )
            commands = sent["commands"]
        return {
            "profile": profile["name"],
            "identifier": profile["identifier"],
            "version": row["version"],
            "request_type": "InstallProfile",
            "commands": commands,
        }

    # -- delete -----------------------------------------------------------------------------

    def delete(self, ref: str) -> dict[str, Any]:
        """Delete a profile and every version, unless something uses it. Devices keep what they
        installed: removing it from them is RemoveProfile with its identifier."""
        profile = self._profile(ref)
        uses = [use for users in self._users for use in users.uses_of(profile["id"])]
        if uses:
            raise Conflict(f"profile {profile['name']!r} is in use: {', '.join(uses)}")
        removed = self._store.delete(profile["id"])
        return {"deleted": profile["name"], "identifier": profile["identifier"], "versions": removed}
