"""Declarative device management: declarations and their assignments (admin use cases), the
DDM check-in a device makes (tokens, declaration-items, each declaration, status), and keeping each
device's effective set, with a DeclarativeManagement command whenever it changes.

Tokens are derived from content: a declaration's ServerToken hashes its Type, Identifier, Payload
and any uploaded data, so an edit that changes nothing changes no token and a real change changes
only that declaration's; a device's DeclarationsToken hashes its set's (identifier, token) pairs.
The set is computed off the hot path (`refresh`: after an admin change, when a device's facts
change, and every few minutes for static groups) and stored per device, so a check-in reads one
row and the declarations it names.

A device is sent the command once per change of its set: `ddm_devices.commanded_token` records the
set commanded, claimed conditionally so two processes refreshing at once send it once. A device
that enrolls again (an erased device keeping its UDID) has an Authenticate later than the last
command and is sent it again, though nothing changed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

from sqlalchemy.exc import IntegrityError

from russet.declarative.ports import (
    BlueprintDeclarations,
    CommandSender,
    Devices,
    Groups,
    LibraryProfiles,
    LibraryVersion,
)
from russet.declarative.status import facts_of, parse_status
from russet.declarative.store import DeclarationStore
from russet.declarative.validate import IDENTIFIER, KINDS, check_declaration
from russet.kernel.errors import Conflict, Invalid, NotFound, TooLarge
from russet.kernel.events import BlueprintsChanged, DeviceFactsChanged, EventBus, GroupMembersChanged
from russet.kernel.tasks import PeriodicTask

log = logging.getLogger("russet.declarative")

TOKEN_CHARS = 40  # Apple: a ServerToken should not exceed 64 octets
MAX_DATA_BYTES = 512 * 1024  # an asset's data or a legacy profile (base64 within the API's 1 MiB bodies)
MAX_TARGETS = 1000  # devices or groups per assignment call
SEND_CHUNK = 10_000  # devices per DeclarativeManagement send_command (PostgreSQL: 65,535 parameters)
MAX_VALUES_BYTES = 256 * 1024
REFRESH_SECONDS = 300.0  # static group edits publish no event; this pass catches them up
DATA_MARKER = "russet:data"  # stored in place of the per-device URL of uploaded data
ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific"
LEGACY = "com.apple.configuration.legacy"
COMMAND_CREATOR = "declarations"
_VERSION = re.compile(r"\d{1,6}(\.\d{1,6}){0,3}")


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:TOKEN_CHARS]


def server_token(
    declaration_type: str, identifier: str, payload: Mapping[str, Any], data_sha: str | None
) -> str:
    """Over the whole declaration content (Apple: so it changes whenever anything changes)."""
    content = {"Type": declaration_type, "Identifier": identifier, "Payload": payload, "Data": data_sha}
    return _hash(json.dumps(content, sort_keys=True, separators=(",", ":")))


def set_token(items: Collection[tuple[str, str]]) -> str:
    """The DeclarationsToken of a set of (identifier, server token)."""
    return _hash("\n".join(f"{i}:{t}" for i, t in sorted(items)))


EMPTY_SET_TOKEN = set_token(())


def version_key(text: Any) -> tuple[int, ...] | None:
    if not isinstance(text, str) or not _VERSION.fullmatch(text.strip()):
        return None
    parts = [int(p) for p in text.strip().split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _timestamp(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else "2025-01-01T00:00:00Z"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _replace(value: Any, marker: str, url: str) -> Any:
    if value == marker:
        return url
    if isinstance(value, dict):
        return {k: _replace(v, marker, url) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace(v, marker, url) for v in value]
    return value


def item_state(declared_token: str | None, reported: Mapping[str, Any] | None) -> str:
    """One word for a declaration on a device: pending (not reported yet), outdated (it reports
    an older version), failed, active, inactive (valid but not active: no activation, a false
    predicate)."""
    if reported is None:
        return "pending"
    if declared_token is not None and reported.get("server_token") not in (None, declared_token):
        return "outdated"
    reasons = reported.get("reasons") or []
    if reported.get("valid") == "invalid" or any(str(r.get("code", "")).startswith("Error") for r in reasons):
        return "failed"
    return "active" if reported.get("active") else "inactive"


def _asset_references(value: Any, out: set[str], depth: int = 0) -> set[str]:
    """The strings a configuration's payload gives under its asset-reference keys (Apple's
    schemas name them `…AssetReference`, `…AssetReferences`, `…AssetReferenceItem`)."""
    if depth > 32:
        return out
    if isinstance(value, Mapping):
        for key, item in value.items():
            if "AssetReference" in str(key):
                if isinstance(item, str):
                    out.add(item)
                elif isinstance(item, list):
                    out.update(i for i in item if isinstance(i, str))
            _asset_references(item, out, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _asset_references(item, out, depth + 1)
    return out


def _brings(
    declarations: Mapping[int, Mapping[str, Any]], by_identifier: Mapping[str, int]
) -> dict[int, set[int]]:
    """What each declaration brings with it into a set: an activation the configurations it names
    (Apple applies only what an activation names, so assigning an activation is enough), a
    configuration the assets it references (an account's credentials, an identity)."""
    brings: dict[int, set[int]] = {}
    for declaration_id, d in declarations.items():
        if d["kind"] == "activation":
            named = json.loads(d["payload"]).get("StandardConfigurations") or []
            wanted = {by_identifier[n] for n in named if isinstance(n, str) and n in by_identifier}
        elif d["kind"] == "configuration":
            referenced = _asset_references(json.loads(d["payload"]), set())
            wanted = {by_identifier[n] for n in referenced if n in by_identifier}
            wanted = {i for i in wanted if declarations[i]["kind"] == "asset"}
        else:
            continue
        if wanted:
            brings[declaration_id] = wanted
    return brings


def _closure(ids: Collection[int], brings: Mapping[int, set[int]]) -> set[int]:
    """`ids` and all they bring, and all that brings (an activation's configurations' assets)."""
    found = set(ids)
    todo = list(found)
    while todo:
        for more in brings.get(todo.pop(), ()):
            if more not in found:
                found.add(more)
                todo.append(more)
    return found


def _reason_text(reasons: list[dict[str, Any]]) -> str:
    if not reasons:
        return "no reason given"
    first = reasons[0]
    return (
        f"{first.get('code')}: {first['description']}" if first.get("description") else str(first.get("code"))
    )


class DeclarativeService:
    def __init__(
        self,
        store: DeclarationStore,
        groups: Groups,
        devices: Devices,
        commands: CommandSender,
        *,
        public_url: str,
        data_key: bytes,
        events: EventBus | None = None,
        refresh_seconds: float = REFRESH_SECONDS,
        library: LibraryProfiles | None = None,
        blueprints: BlueprintDeclarations | None = None,
    ) -> None:
        self._blueprints = blueprints  # declarations listed by blueprints reach their scopes
        self._library = library  # legacy declarations wrapping a library profile
        self._store = store
        self._groups = groups
        self._devices = devices
        self._commands = commands
        self._public_url = public_url.rstrip("/")
        self._data_key = data_key  # keys the per-device token of data URLs
        self._events = events or EventBus()
        self._refresh_seconds = refresh_seconds

    # -- declarations (admin) ----------------------------------------------------------------------

    def list_declarations(self) -> dict[str, Any]:
        """Every declaration, with what it is assigned to: devices (how many), groups and the
        blueprints that list it (by name)."""
        rows = self._store.assignments()
        assignments: dict[int, int] = Counter(a[0] for a in rows)
        devices: dict[int, int] = Counter(a[0] for a in rows if a[1] == "device")
        groups: dict[int, list[int]] = defaultdict(list)
        for declaration_id, kind, target in rows:
            if kind == "group":
                groups[declaration_id].append(int(target))
        names = self._groups.group_names() if groups else {}
        listed = self._blueprints.declaration_items() if self._blueprints else {}
        return {
            "declarations": [
                {
                    "identifier": d["identifier"],
                    "kind": d["kind"],
                    "type": d["type"],
                    "server_token": d["server_token"],
                    "version": d["version"],
                    "assignments": assignments.get(d["id"], 0),
                    "devices": devices.get(d["id"], 0),
                    "groups": [names.get(g, str(g)) for g in groups.get(d["id"], [])],
                    "blueprints": listed.get(d["identifier"], []),
                    "updated_at": _iso(d["updated_at"]),
                }
                for d in self._store.all()
            ]
        }

    def declaration_kind(self, identifier: str) -> str:
        """The declaration's kind; NotFound if there is none (the blueprints' Declarations port)."""
        return str(self._get(identifier)["kind"])

    def _get(self, identifier: str) -> dict[str, Any]:
        found = self._store.get(identifier)
        if found is None:
            raise NotFound(f"no declaration {identifier[:100]!r}")
        return found

    def show(self, identifier: str) -> dict[str, Any]:
        d = self._get(identifier)
        names = self._groups.group_names()
        return {
            "identifier": d["identifier"],
            "kind": d["kind"],
            "type": d["type"],
            "payload": json.loads(d["payload"]),
            "server_token": d["server_token"],
            "version": d["version"],
            "data": None
            if d["data"] is None
            else {
                "bytes": len(d["data"]),
                "sha256": hashlib.sha256(d["data"]).hexdigest(),
                "content_type": d["data_type"],
            },
            "profile": None
            if d["profile_ref"] is None
            else {"ref": d["profile_ref"], "version": d["profile_version"]},
            "created_by": d["created_by"],
            "created_at": _iso(d["created_at"]),
            "updated_at": _iso(d["updated_at"]),
            "versions": [{**v, "created_at": _iso(v["created_at"])} for v in self._store.versions(d["id"])],
            "assignments": self._shown_assignments(d["id"], names),
            "blueprints": (self._blueprints.declaration_items() if self._blueprints else {}).get(
                d["identifier"], []
            ),
        }

    def _shown_assignments(self, declaration_id: int, names: dict[int, str]) -> dict[str, list[Any]]:
        shown: dict[str, list[Any]] = {"devices": [], "groups": []}
        for _, kind, target in self._store.assignments(declaration_id):
            if kind == "device":
                shown["devices"].append(target)
            else:
                shown["groups"].append({"id": int(target), "name": names.get(int(target))})
        return shown

    def _content(
        self,
        declaration_type: str,
        identifier: str,
        payload: Mapping[str, Any],
        data: bytes | None,
        profile: LibraryVersion | None = None,
    ) -> tuple[str, dict[str, Any], str | None]:
        """Validate; fill in where uploaded data (or a library profile) is served; the kind,
        payload and a hash of what is served (part of the ServerToken)."""
        payload = dict(payload)
        data_sha = None
        if profile is not None:
            if declaration_type != LEGACY or data is not None:
                raise Invalid(
                    f"profile: only a legacy declaration ({LEGACY}) wraps a library profile, without data"
                )
            payload["ProfileURL"] = DATA_MARKER
            pinned = f"profile:{profile.ref}:{profile.version}:{profile.content_hash}"
            data_sha = hashlib.sha256(pinned.encode()).hexdigest()
        elif data is not None:
            if len(data) > MAX_DATA_BYTES:
                raise TooLarge(f"data: {len(data)} bytes, more than the {MAX_DATA_BYTES} accepted")
            data_sha = hashlib.sha256(data).hexdigest()
            if declaration_type == LEGACY:
                payload["ProfileURL"] = DATA_MARKER
            elif declaration_type.startswith("com.apple.asset."):
                reference = payload.get("Reference")
                reference = dict(reference) if isinstance(reference, Mapping) else {}
                reference.update({"DataURL": DATA_MARKER, "Size": len(data), "Hash-SHA-256": data_sha})
                payload["Reference"] = reference
            else:
                raise Invalid(
                    "data: only an asset (its Reference) or a legacy profile (its ProfileURL) serves "
                    "uploaded data"
                )
        kind = check_declaration(declaration_type, identifier, payload)
        return kind, payload, data_sha

    def create(
        self,
        declaration_type: str,
        payload: Mapping[str, Any],
        *,
        identifier: str | None = None,
        data: bytes | None = None,
        data_type: str | None = None,
        profile: str | None = None,
        profile_version: int | None = None,
        created_by: str,
    ) -> dict[str, Any]:
        """A new declaration, validated against Apple's schema (refused with its words). A legacy
        declaration may wrap a library `profile` (its latest version unless `profile_version`),
        served signed to each device."""
        identifier = identifier or str(uuid.uuid4()).upper()
        pinned = self._profile(profile, profile_version)
        kind, payload, data_sha = self._content(declaration_type, identifier, payload, data, pinned)
        values = {
            "kind": kind,
            "type": declaration_type,
            "payload": json.dumps(payload, sort_keys=True),
            "data": data,
            "data_type": data_type if data is not None else None,
            "profile_ref": pinned.ref if pinned else None,
            "profile_version": pinned.version if pinned else None,
            "server_token": server_token(declaration_type, identifier, payload, data_sha),
        }
        try:
            self._store.save(identifier, values, data_sha, created_by, create=True)
        except IntegrityError:
            raise Conflict(f"a declaration {identifier!r} exists already") from None
        log.info("declaration %s (%s) created by %s", identifier, declaration_type, created_by)
        return self.show(identifier)

    def update(
        self,
        identifier: str,
        payload: Mapping[str, Any],
        *,
        data: bytes | None = None,
        data_type: str | None = None,
        profile: str | None = None,
        profile_version: int | None = None,
        created_by: str,
    ) -> dict[str, Any]:
        """A new version (new ServerToken) if the content changed; devices holding it are told.
        Data or a wrapped library profile is kept unless replaced (name the `profile` again to
        take its latest version)."""
        current = self._get(identifier)
        if data is None and profile is None and current["data"] is not None:
            data, data_type = current["data"], current["data_type"]
        if profile is None and data is None and current["profile_ref"] is not None:
            profile, profile_version = current["profile_ref"], profile_version or current["profile_version"]
        pinned = self._profile(profile, profile_version)
        _, payload, data_sha = self._content(current["type"], identifier, payload, data, pinned)
        values = {
            "payload": json.dumps(payload, sort_keys=True),
            "data": data,
            "data_type": data_type if data is not None else None,
            "profile_ref": pinned.ref if pinned else None,
            "profile_version": pinned.version if pinned else None,
            "server_token": server_token(current["type"], identifier, payload, data_sha),
        }
        _, changed = self._store.save(identifier, values, data_sha, created_by, create=False)
        if changed:
            log.info("declaration %s changed by %s", identifier, created_by)
            self.refresh()
        return {**self.show(identifier), "changed": changed}

    def uses_of_profile(self, names: Collection[str]) -> list[str]:
        """The legacy declarations wrapping a library profile known by one of `names`."""
        wanted = set(names)
        return [
            f"declaration {d['identifier']!r}"
            for d in self._store.all()
            if d.get("profile_ref") is not None and d["profile_ref"] in wanted
        ]

    def _profile(self, ref: str | None, version: int | None) -> LibraryVersion | None:
        if ref is None:
            if version is not None:
                raise Invalid("profile_version: name the profile too")
            return None
        if self._library is None:
            raise Invalid("profile: this server has no profile library")
        return self._library.latest(ref) if version is None else self._library.version(ref, version)

    def delete(self, identifier: str) -> dict[str, Any]:
        """Delete a declaration (devices holding it drop it); one a blueprint lists is refused."""
        d = self._get(identifier)
        listed = (self._blueprints.declaration_items() if self._blueprints else {}).get(identifier)
        if listed:
            names = ", ".join(repr(n) for n in listed)
            raise Conflict(
                f"declaration {identifier!r} is in blueprint {names}; take it out of the blueprint first"
            )
        self._store.delete(d["id"])
        result = self.refresh()
        return {"deleted": identifier, **result}

    # -- assignments -------------------------------------------------------------------------------

    def _targets(self, devices: Collection[str], groups: Collection[str]) -> list[tuple[str, str]]:
        if len(devices) + len(groups) > MAX_TARGETS:
            raise Invalid(f"at most {MAX_TARGETS} devices and groups at a time")
        targets = []
        for ref in devices:
            device_id = self._devices.device_id(ref)
            if device_id is None:
                raise NotFound(f"no device {ref[:100]!r} (a UDID or serial number)")
            targets.append(("device", device_id))
        targets += [("group", str(self._groups.group_id(ref))) for ref in groups]
        return targets

    def assign(
        self, identifier: str, *, devices: Collection[str] = (), groups: Collection[str] = ()
    ) -> dict[str, Any]:
        """Give the declaration to these devices and groups' members (the groups' members as they
        change); each device whose set changes is sent a DeclarativeManagement command."""
        d = self._get(identifier)
        added = self._store.assign(d["id"], self._targets(devices, groups))
        result = self.refresh() if added else {"changed": 0, "commanded": 0}
        return {"identifier": identifier, "added": added, **result}

    def unassign(
        self, identifier: str, *, devices: Collection[str] = (), groups: Collection[str] = ()
    ) -> dict[str, Any]:
        d = self._get(identifier)
        removed = self._store.unassign(d["id"], self._targets(devices, groups))
        result = self.refresh() if removed else {"changed": 0, "commanded": 0}
        return {"identifier": identifier, "removed": removed, **result}

    # -- effective sets and the command --------------------------------------------------------------

    def on_facts_changed(self, event: DeviceFactsChanged) -> None:
        """Membership or enrollment of these devices may have changed (subscribed after groups)."""
        self.refresh(event.device_ids)

    def on_group_members_changed(self, event: GroupMembersChanged) -> None:
        """An admin changed a static group: the devices it named may have joined or left a
        group a declaration (or a blueprint listing one) is scoped to."""
        self.refresh(event.device_ids)

    def on_blueprints_changed(self, event: BlueprintsChanged) -> None:
        """A blueprint's declarations or scope may have moved: every device's set is recomputed."""
        self.refresh()

    def tasks(self) -> list[PeriodicTask]:
        return [
            PeriodicTask(
                "declarations.refresh",
                self._refresh_seconds,
                self.refresh,
                once_across_nodes=True,
                first_delay=self._refresh_seconds,
                description="recompute each device's declarations (static group changes) and send "
                "DeclarativeManagement to devices whose set changed",
            )
        ]

    def _wanted(
        self, device_ids: Collection[str] | None, assignments: list[tuple[int, str, str]]
    ) -> dict[str, set[int]]:
        """Device -> declaration ids assigned to it directly or through a group."""
        wanted: dict[str, set[int]] = defaultdict(set)
        if device_ids is None:
            members: dict[int, set[str]] = {}
            for declaration_id, kind, target in assignments:
                if kind == "device":
                    wanted[target].add(declaration_id)
                    continue
                group = int(target)
                if group not in members:
                    members[group] = self._groups.members(group)
                for device_id in members[group]:
                    wanted[device_id].add(declaration_id)
            return wanted
        scope = set(device_ids)
        by_group: dict[int, list[int]] = defaultdict(list)
        for declaration_id, kind, target in assignments:
            if kind == "device":
                if target in scope:
                    wanted[target].add(declaration_id)
            else:
                by_group[int(target)].append(declaration_id)
        if by_group:
            ids_by_name = {name: gid for gid, name in self._groups.group_names().items()}
            for device_id in scope:
                for name in self._groups.groups_of(device_id):
                    for declaration_id in by_group.get(ids_by_name.get(name, -1), ()):
                        wanted[device_id].add(declaration_id)
        return wanted

    def refresh(self, device_ids: Collection[str] | None = None) -> dict[str, int]:
        """Recompute the effective sets (of these devices, or all), store those that changed, and
        command each device whose set is not the one last commanded (or that enrolled again)."""
        from_blueprints = self._blueprints.declaration_scope(device_ids) if self._blueprints else {}
        if not from_blueprints and device_ids is not None and not self._store.anything_for(device_ids):
            return {"changed": 0, "commanded": 0}  # asked on every facts change: a few indexed reads
        assignments = self._store.assignments()
        current = self._store.device_sets(device_ids)
        if not assignments and not current and not from_blueprints:
            return {"changed": 0, "commanded": 0}  # nothing declared for them: the common case, cheap
        declarations = {d["id"]: d for d in self._store.all(with_payload=True)}
        by_identifier = {d["identifier"]: i for i, d in declarations.items()}
        brings = _brings(declarations, by_identifier)
        wanted = self._wanted(device_ids, assignments)
        for device_id, listed in from_blueprints.items():
            for identifier in listed:  # one deleted meanwhile is not there
                if identifier in by_identifier:
                    wanted[device_id].add(by_identifier[identifier])
        changed: dict[str, tuple[list[int], str]] = {}
        for device_id in set(wanted) | set(current):
            ids = _closure(wanted.get(device_id, ()), brings)
            ordered = sorted(i for i in ids if i in declarations)  # one deleted meanwhile is gone
            token = set_token(
                [(declarations[i]["identifier"], declarations[i]["server_token"]) for i in ordered]
            )
            row = current.get(device_id)
            if (
                row is None
                or (row["declarations_token"] or EMPTY_SET_TOKEN) != token
                or row["declaration_ids"] != ordered
            ):
                changed[device_id] = (ordered, token)
        if changed:
            self._store.set_sets(changed)
        states = self._store.device_sets(set(changed) | set(current)) if changed else current
        commanded = self._command(states)
        if changed or commanded:
            log.info("declarations: %d device sets changed, %d devices commanded", len(changed), commanded)
        return {"changed": len(changed), "commanded": commanded}

    def _command(self, states: Mapping[str, Mapping[str, Any]]) -> int:
        lives = self._devices.lives(list(states)) if states else {}
        claims: list[tuple[str, str, str | None, datetime | None]] = []
        again: set[str] = set()
        for device_id, state in states.items():
            life = lives.get(device_id)
            if life is None or not life.enrolled:
                continue  # told when it enrolls (its TokenUpdate publishes DeviceFactsChanged)
            token, commanded = state["declarations_token"], state["commanded_token"]
            has_set = bool(state["declaration_ids"])
            new_set = token != commanded and (commanded is not None or has_set)
            enrolled_again = bool(
                has_set
                and state["commanded_at"] is not None
                and life.authenticated_at is not None
                and life.authenticated_at > state["commanded_at"]
            )
            if not (new_set or enrolled_again):
                continue
            claims.append((device_id, token, commanded, state["commanded_at"]))
            if enrolled_again:
                again.add(device_id)
        # Claimed conditionally, a batch in one statement: of two processes, one sends each.
        send = sorted(self._store.claim_commands(claims)) if claims else []
        for device_id in again.intersection(send):
            self._store.forget_reported(device_id)
        sent = 0
        for start in range(0, len(send), SEND_CHUNK):  # the MDM core's queue takes a chunk at a time
            sent += self._send(send[start : start + SEND_CHUNK])
        return sent

    def _send(self, chunk: list[str]) -> int:
        command = {"RequestType": "DeclarativeManagement"}
        try:
            self._commands.send_command(chunk, command, created_by=COMMAND_CREATOR)
        except (Invalid, NotFound, Conflict) as exc:
            # Refused for some (a platform without DDM): send to each alone, so the others get it.
            log.warning(
                "DeclarativeManagement to %d devices refused (%s); sending one by one", len(chunk), exc
            )
            sent = 0
            for device_id in chunk:
                try:
                    self._commands.send_command([device_id], command, created_by=COMMAND_CREATOR)
                    sent += 1
                except (Invalid, NotFound, Conflict) as one:
                    log.warning("DeclarativeManagement to %s refused: %s", device_id, one)
            return sent
        return len(chunk)

    # -- the device's DDM check-in -----------------------------------------------------------------

    def answer(self, device_id: str, endpoint: str, data: bytes | None) -> dict[str, Any] | None:
        """The JSON answer to one DeclarativeManagement check-in (None: an empty 200). Raises
        Invalid/TooLarge for bad input (nothing stored) and NotFound for a declaration the device
        does not have."""
        if endpoint == "status":
            if data is None:
                raise Invalid("DeclarativeManagement status: Data (the JSON status report) is required")
            self._status(device_id, data)
            return None
        found = self._store.device_set(device_id)
        ids, token, at = found if found else ([], "", None)
        token = token or EMPTY_SET_TOKEN
        if endpoint == "tokens":
            return {"SyncTokens": {"DeclarationsToken": token, "Timestamp": _timestamp(at)}}
        if endpoint == "declaration-items":
            lists: dict[str, list[dict[str, str]]] = {k: [] for k in KINDS}
            for d in self._store.by_ids(ids):
                lists[d["kind"]].append({"Identifier": d["identifier"], "ServerToken": d["server_token"]})
            return {
                "Declarations": {
                    "Activations": lists["activation"],
                    "Configurations": lists["configuration"],
                    "Assets": lists["asset"],
                    "Management": lists["management"],
                },
                "DeclarationsToken": token,
            }
        group, _, identifier = endpoint.removeprefix("declaration/").partition("/")
        if not endpoint.startswith("declaration/") or group not in KINDS or not identifier:
            raise Invalid(f"unknown DeclarativeManagement Endpoint {endpoint[:100]!r}")
        declaration = self._store.served(identifier) if IDENTIFIER.fullmatch(identifier) else None
        if declaration is None or declaration["id"] not in ids or declaration["kind"] != group:
            raise NotFound(f"no {group} declaration {identifier[:100]!r} for this device")
        payload = json.loads(declaration["payload"])
        if declaration["has_data"]:
            payload = _replace(payload, DATA_MARKER, self.data_url(device_id, identifier))
        return {
            "Type": declaration["type"],
            "Identifier": declaration["identifier"],
            "ServerToken": declaration["server_token"],
            "Payload": payload,
        }

    def _status(self, device_id: str, data: bytes) -> None:
        report = parse_status(data)  # everything checked before anything is stored
        before = self._store.status_values([device_id]).get(device_id, {})
        values = report.values if report.full else {**before, **report.values}
        if len(json.dumps(values)) > MAX_VALUES_BYTES:
            raise TooLarge(f"status report: its values are more than {MAX_VALUES_BYTES} bytes")
        try:
            self._store.store_status(
                device_id, report.raw, report.full, values, report.capabilities, report.declarations
            )
        except IntegrityError:  # a concurrent report of the same device inserted its states first
            self._store.store_status(
                device_id, report.raw, report.full, values, report.capabilities, report.declarations
            )
        if facts_of(before) != facts_of(values):
            self._events.publish(DeviceFactsChanged((device_id,)))

    # -- uploaded data, through a per-device URL ---------------------------------------------------------

    def _data_token(self, device_id: str) -> str:
        return hmac.new(self._data_key, device_id.encode(), hashlib.sha256).hexdigest()[:32]

    def data_url(self, device_id: str, identifier: str) -> str:
        device = quote(device_id, safe="")
        return f"{self._public_url}/mdm/ddm/data/{device}/{identifier}/{self._data_token(device_id)}"

    def data(self, device_id: str, identifier: str, token: str) -> tuple[bytes, str]:
        """The data a declaration serves, for a device that holds it and shows its own token.
        Anything else is NotFound (never saying which part was wrong)."""
        if not hmac.compare_digest(token.encode(), self._data_token(device_id).encode()):
            raise NotFound("no such data")
        found = self._store.device_set(device_id)
        d = self._store.get(identifier) if IDENTIFIER.fullmatch(identifier) else None
        if found is None or d is None or d["id"] not in found[0]:
            raise NotFound("no such data")
        if d["profile_ref"] is not None and self._library is not None:
            signed = self._library.render(
                d["profile_ref"], d["profile_version"], device_id
            )  # NotFound: deleted
            return signed, "application/x-apple-aspen-config"
        if d["data"] is None:
            raise NotFound("no such data")
        return d["data"], d["data_type"] or "application/octet-stream"

    # -- what devices reported -----------------------------------------------------------------------

    def device_state(self, ref: str) -> dict[str, Any]:
        """A device's declarations as declared and as reported, its status values and capabilities."""
        device_id = self._devices.device_id(ref) or ref
        row: dict[str, Any] | None = self._store.device(device_id)
        if row is None:
            if self._devices.device_id(ref) is None:
                raise NotFound(f"no device {ref[:100]!r}")
            row = {"declaration_ids": "[]", "declarations_token": "", "commanded_at": None}
        declared = self._store.by_ids(json.loads(row["declaration_ids"]))
        reported = {r["identifier"]: r for r in self._store.reported(device_id)}
        sources = self._sources(device_id, {d["id"] for d in declared})
        items = []
        for d in sorted(declared, key=lambda d: d["identifier"]):
            r = reported.pop(d["identifier"], None)
            item = self._item(d["identifier"], d["kind"], d["type"], d["server_token"], r)
            items.append({**item, "from": sources.get(d["identifier"], [])})
        for r in reported.values():  # reported, no longer declared (being removed)
            items.append({**self._item(r["identifier"], r["kind"], None, None, r), "from": []})
        last = json.loads(row["last_report"]) if row.get("last_report") else None
        return {
            "device": device_id,
            "declarations_token": row["declarations_token"] or EMPTY_SET_TOKEN,
            "commanded_at": _iso(row.get("commanded_at")),
            "status_at": _iso(row.get("status_at")),
            "declarations": items,
            "status": json.loads(row["status_values"]) if row.get("status_values") else {},
            "capabilities": json.loads(row["capabilities"]) if row.get("capabilities") else None,
            "errors": (last or {}).get("Errors", []),
        }

    def _sources(self, device_id: str, held: set[int]) -> dict[str, list[str]]:
        """Why the device holds each declaration: assigned to it, to a group it is in, listed by a
        blueprint whose scope holds it, or brought by another (an activation, a configuration)."""
        declarations = {d["id"]: d for d in self._store.all(with_payload=True)}
        by_identifier = {d["identifier"]: i for i, d in declarations.items()}
        sources: dict[int, list[str]] = defaultdict(list)
        groups = set(self._groups.groups_of(device_id))
        names = self._groups.group_names() if groups else {}
        for declaration_id, kind, target in self._store.assignments():
            if kind == "device" and target == device_id:
                sources[declaration_id].append("device")
            elif kind == "group" and names.get(int(target)) in groups:
                sources[declaration_id].append(f"group {names[int(target)]!r}")
        scope = self._blueprints.declaration_scope([device_id]) if self._blueprints else {}
        for identifier, blueprint in scope.get(device_id, {}).items():
            if identifier in by_identifier:
                sources[by_identifier[identifier]].append(f"blueprint {blueprint!r}")
        for declaration_id, more in _brings(declarations, by_identifier).items():
            if declaration_id not in held:
                continue
            bringer = declarations[declaration_id]
            for other in more:
                sources[other].append(f"{bringer['kind']} {bringer['identifier']!r}")
        return {declarations[i]["identifier"]: why for i, why in sources.items() if i in declarations}

    @staticmethod
    def _item(
        identifier: str,
        kind: str,
        declaration_type: str | None,
        token: str | None,
        r: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        return {
            "identifier": identifier,
            "kind": kind,
            "type": declaration_type,
            "declared": token is not None,
            "server_token": token,
            "reported_token": r.get("server_token") if r else None,
            "state": item_state(token, r) if token is not None else "removing",
            "active": r.get("active") if r else None,
            "valid": r.get("valid") if r else None,
            "reasons": r.get("reasons", []) if r else [],
            "reported_at": _iso(r.get("reported_at")) if r else None,
        }

    def declaration_status(
        self, identifier: str, sets: Mapping[str, Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """One declaration across the fleet: how many devices hold it in each state, and why not.
        `sets`: every device's set, when the caller read them already (the summary)."""
        d = self._get(identifier)
        alone = sets is None  # one declaration's view: the OS versions its devices report too
        sets = self._store.device_sets(None) if sets is None else sets
        holders = [dev for dev, s in sets.items() if d["id"] in s["declaration_ids"]]
        reported = {r["device_id"]: r for r in self._store.reported_for(identifier)}
        states: Counter[str] = Counter()
        reasons: Counter[str] = Counter()
        devices = []
        for device_id in sorted(holders):
            r = reported.get(device_id)
            state = item_state(d["server_token"], r)
            states[state] += 1
            if state == "failed" and r is not None:
                reasons[_reason_text(r["reasons"])] += 1
            devices.append({"device": device_id, "state": state, "reasons": r["reasons"] if r else []})
        versions: Counter[str] = Counter()
        if alone and holders:
            values = self._store.status_values(holders)
            versions.update(
                str(values.get(h, {}).get("device.operating-system.version") or "unknown") for h in holders
            )
        lines = [f"{n} devices on {v}" for v, n in versions.most_common(10)]
        lines += [f"{n} devices {state}" for state, n in states.most_common()]
        lines += [f"{n} failed: {why}" for why, n in reasons.most_common(10)]
        return {
            "identifier": identifier,
            "os_versions": dict(versions),
            "server_token": d["server_token"],
            "devices": len(holders),
            "states": dict(states),
            "failure_reasons": dict(reasons),
            "summary": lines,
            "by_device": devices,
        }

    def summary(self) -> dict[str, Any]:
        """The fleet at a glance: OS versions reported, and each declaration's states."""
        values = self._store.status_values(None)
        versions = Counter(v.get("device.operating-system.version") or "unknown" for v in values.values())
        sets = self._store.device_sets(None)  # read once for every declaration
        declarations = [
            {"identifier": d["identifier"], "type": d["type"], **self._counts(d, sets)}
            for d in self._store.all()
        ]
        lines = [f"{n} devices on {v}" for v, n in sorted(versions.items(), key=lambda kv: -kv[1])]
        for d in declarations:
            counts = ", ".join(f"{n} {s}" for s, n in d["states"].items())
            lines.append(f"{d['identifier']}: {counts or 'no devices'}")
            lines += [f"  {n} failed: {why}" for why, n in d["failure_reasons"].items()]
        return {"os_versions": dict(versions), "declarations": declarations, "summary": lines}

    def _counts(self, d: Mapping[str, Any], sets: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
        shown = self.declaration_status(d["identifier"], sets)
        return {
            "devices": shown["devices"],
            "states": shown["states"],
            "failure_reasons": shown["failure_reasons"],
        }

    def software_updates(self) -> dict[str, Any]:
        """Each device given a software-update enforcement: what it runs, what it was told to take
        and by when, what it reports of the update, and whether it did."""
        enforcements = {d["id"]: d for d in self._store.all(with_payload=True) if d["type"] == ENFORCEMENT}
        rows = []
        values = self._store.status_values(None)
        for device_id, s in sorted(self._store.device_sets(None).items()):
            told = [enforcements[i] for i in s["declaration_ids"] if i in enforcements]
            if not told:
                continue
            targets = [json.loads(t["payload"]) for t in told]
            target = max(targets, key=lambda p: version_key(p.get("TargetOSVersion")) or ())
            v = values.get(device_id, {})
            running = v.get("device.operating-system.version")
            have, want = version_key(running), version_key(target.get("TargetOSVersion"))
            reported = {r["identifier"]: r for r in self._store.reported(device_id)}
            chosen = next(t for t in told if json.loads(t["payload"]) == target)
            state = item_state(chosen["server_token"], reported.get(chosen["identifier"]))
            pending = v.get("softwareupdate.pending-version")
            failure = v.get("softwareupdate.failure-reason")
            rows.append(
                {
                    "device": device_id,
                    "os_version": running,
                    "target_os_version": target.get("TargetOSVersion"),
                    "target_build_version": target.get("TargetBuildVersion"),
                    "by": target.get("TargetLocalDateTime"),
                    "declaration": chosen["identifier"],
                    "declaration_state": state,
                    "install_state": v.get("softwareupdate.install-state"),
                    "pending_version": pending.get("os-version") if isinstance(pending, Mapping) else None,
                    "failure_reason": failure if isinstance(failure, Mapping) else None,
                    "updated": None if have is None or want is None else have >= want,
                }
            )
        done = sum(1 for r in rows if r["updated"])
        failed = Counter(
            str(r["failure_reason"].get("reason", "unknown")) for r in rows if r["failure_reason"]
        )
        lines = [f"{len(rows)} devices told to update, {done} updated"]
        lines += [f"{n} failed: {why}" for why, n in failed.most_common(10)]
        return {"devices": rows, "summary": lines}
