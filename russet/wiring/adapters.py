"""The ports' adapters: small classes that give one feature what its `ports.py` asks for, over
another feature's service or store. The composition root (`russet/runtime.py`) builds them as it
wires the services; each is a translation, no policy of its own.

Grouped by the port's owner: the blueprints (groups, library, core reports, app catalogue), ABM
(blueprint names), the app catalogue (Apps and Books, devices), the declarative feature, the
profile library (signer, device facts, who uses a profile), Apps and Books (devices), escrow
(devices, commands, who may view secrets, the push identity), the ledger's subject look-up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from russet.abm.store import AbmSerials
from russet.access.roles import Role
from russet.access.service import AccessService
from russet.access.sso import Pending, SingleSignOn
from russet.apns.certificate import push_identity
from russet.apns.ports import PushStores
from russet.apns.state import Outcome
from russet.apple.ports import Link
from russet.apps import ports as app_ports
from russet.apps.service import AppCatalogue
from russet.blueprints.ports import AppVersion, DeviceReport, ProfileVersion
from russet.blueprints.service import BlueprintService
from russet.commands.support import DeviceFacts
from russet.declarative.ports import DeviceLife
from russet.declarative.service import DeclarativeService
from russet.declarative.status import facts_of
from russet.declarative.store import DeclarationStore
from russet.enrollment.ports import Person
from russet.enrollment.profile import signed_profile
from russet.enrollment.tokens import EnrollmentRequestLog
from russet.escrow.ports import EscrowDevice
from russet.groups.service import GroupService, Scope
from russet.kernel.errors import Invalid, NotFound, Refused
from russet.kernel.events import EventBus, PushFailed
from russet.library.service import ProfileLibrary
from russet.mdm.devices import DeviceService
from russet.mdm.enrollments import EnrollmentStore
from russet.mdm.facts import platform_of
from russet.mdm.lifecycle import EnrollmentLives
from russet.mdm.reports import DeviceReports
from russet.pki.authority import Authority
from russet.storage.db import as_utc, utcnow
from russet.storage.login_failures import MAX_BUCKET_CHARS, buckets
from russet.vpp.installs import locate_asset
from russet.vpp.ports import DeviceRef
from russet.vpp.service import VppService
from russet.vpp.store import VppStore

# -- the blueprints' ports over the real services (issue #13) ------------------------------------


class GroupScopes:
    """The blueprints' Scopes port over GroupService: group ids in, device channel ids out. An
    unknown group is the groups service's NotFound, which the blueprint service turns into a
    refusal (nothing stored)."""

    def __init__(self, groups: GroupService) -> None:
        self._groups = groups

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        return set(self._groups.scope_devices(Scope(tuple(include), tuple(exclude))))

    def groups_of(self, device_id: str) -> set[int]:
        return set(self._groups.lookup(names=self._groups.groups_of(device_id)).values())


class LibraryProfiles:
    """The blueprints' Profiles port over the profile library.

    A version without variables is signed once and the bytes kept for a while (`SIGNED_TTL`), so a
    pass sends one InstallProfile body to every device that gets it rather than one per device
    (each signature carries its signing time, so two signings never give the same bytes)."""

    SIGNED_TTL = timedelta(hours=1)
    MAX_KEPT = 256

    def __init__(self, library: ProfileLibrary, clock: Callable[[], datetime] = utcnow) -> None:
        self._library = library
        self._clock = clock
        self._signed: dict[tuple[str, int, str], tuple[datetime, bytes]] = {}
        self._lock = threading.Lock()

    def _pick(self, ref: str, version: int | None) -> tuple[dict[str, Any], dict[str, Any]]:
        shown = self._library.show(ref)  # NotFound: no such profile
        for row in shown["versions"]:
            if version is None or row["version"] == version:
                return shown, row
        raise NotFound(f"profile {shown['name']!r} has no version {version}")

    def _version(self, ref: str, version: int | None) -> ProfileVersion:
        shown, row = self._pick(ref, version)
        return ProfileVersion(
            ref=shown["name"],
            version=row["version"],
            payload_identifier=shown["identifier"],
            payload_uuid=row["payload_uuid"],
            content_hash=row["content_sha256"],
        )

    def latest(self, ref: str) -> ProfileVersion:
        return self._version(ref, None)

    def version(self, ref: str, version: int) -> ProfileVersion:
        return self._version(ref, version)

    def render(self, ref: str, version: int, device_id: str) -> bytes:
        shown, row = self._pick(ref, version)
        if row["variables"]:
            return self._library.render_for(ref, version, device_id)
        key = (shown["name"], row["version"], row["content_sha256"])
        now = self._clock()
        with self._lock:
            kept = self._signed.get(key)
            if kept is not None and now - kept[0] < self.SIGNED_TTL:
                return kept[1]
        signed = self._library.render(ref, version, {}, device="every device")
        with self._lock:
            if len(self._signed) >= self.MAX_KEPT:
                self._signed.clear()
            self._signed[key] = (now, signed)
        return signed


class CoreReports:
    """The blueprints' ReportedState port over the MDM core's read model (`russet.mdm.reports`)."""

    def __init__(self, reports: DeviceReports) -> None:
        self._reports = reports

    def reported(self, device_ids: Collection[str]) -> Mapping[str, DeviceReport]:
        return {
            device_id: DeviceReport(
                profiles=r.profiles,
                profiles_at=r.profiles_at,
                apps=r.apps,
                serial_number=r.serial_number,
                model=r.model,
                device_name=r.device_name,
                facts_at=r.facts_at,
                in_flight=r.in_flight,
                apps_at=r.apps_at,
            )
            for device_id, r in self._reports.reports(device_ids).items()
        }


class AbmBlueprintNames:
    """ABM's BlueprintNames port over BlueprintService: an ADE profile names a blueprint by name
    or id; ABM keeps the id and shows the current name."""

    def __init__(self, blueprints: BlueprintService) -> None:
        self._blueprints = blueprints

    def resolve(self, ref: str) -> tuple[int, str]:
        found = self._blueprints.get(int(ref) if ref.isdigit() else ref)
        return found["id"], found["name"]

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self._blueprints.blueprints.names(ids)


class BlueprintsUseProfiles:
    """The library's ProfileUsers: a profile a blueprint names is not deleted. Blueprints know a
    library profile by its PayloadIdentifier (fixed for a library profile), so the profile's id is
    turned into its identifier first."""

    def __init__(self, library: ProfileLibrary, blueprints: BlueprintService) -> None:
        self._library = library
        self._blueprints = blueprints

    def uses_of(self, profile_id: int) -> list[str]:
        identifier = next(
            (p["identifier"] for p in self._library.list_profiles() if p["id"] == profile_id), None
        )
        return [] if identifier is None else self._blueprints.uses_of_identifier(identifier)


# -- the app catalogue's ports, and the blueprints' Apps port over it ------------------------------


class VppForApps:
    """The catalogue's AppsAndBooks port over VppService: assets and device licences."""

    def __init__(self, vpp: VppService) -> None:
        self._vpp = vpp

    def asset(self, adam_id: str, *, location: str | None, pricing: str | None) -> app_ports.Asset:
        store = self._vpp.store
        name, found = locate_asset(store, adam_id, location, pricing, store.active_names())
        return app_ports.Asset(
            name,
            found["adam_id"],
            found["pricing_param"],
            found["product_type"],
            int(found["available_count"]),
            bool(found["device_assignable"]),
        )

    def _device_rows(self, asset: app_ports.Asset, serial: str | None = None) -> list[dict[str, Any]]:
        rows = self._vpp.store.licences(asset.location, adam_id=asset.adam_id, subject=serial)
        return [r for r in rows if r["subject_type"] == "device" and r["pricing_param"] == asset.pricing]

    def licence(self, asset: app_ports.Asset, serial: str) -> app_ports.Licence | None:
        rows = self._device_rows(asset, serial)
        return app_ports.Licence(rows[0]["status"], rows[0]["error_message"]) if rows else None

    def device_licences(self, asset: app_ports.Asset, serials: list[str]) -> set[str]:
        wanted = set(serials)
        return {
            r["subject"]
            for r in self._device_rows(asset)
            if r["subject"] in wanted and r["status"] in ("assigned", "associating")
        }

    async def assign(self, asset: app_ports.Asset, serial: str) -> None:
        await self._vpp.assign(asset.location, asset.adam_id, serials=[serial], pricing=asset.pricing)

    async def unassign(self, asset: app_ports.Asset, serial: str) -> None:
        await self._vpp.unassign(asset.location, asset.adam_id, serials=[serial], pricing=asset.pricing)


class DevicesForApps:
    """The catalogue's DeviceLookup: a user channel's licence is its device's serial number."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def find_device(self, device: str) -> app_ports.DeviceRef | None:
        row = self._devices.find_device(device)
        if (row is None or not row["serial_number"]) and ":" in device:
            row = self._devices.find_device(device.rpartition(":")[0]) or row
        return None if row is None else app_ports.DeviceRef(row["id"], row["serial_number"])


class CatalogueApps:
    """The blueprints' Apps port over the app catalogue."""

    def __init__(self, catalogue: AppCatalogue) -> None:
        self._catalogue = catalogue

    def app(self, ref: str) -> AppVersion:
        found = self._catalogue.resolve(ref)
        return AppVersion(found["name"], found["bundle_id"], found["content_hash"])

    def shortfall(self, ref: str, device_ids: Sequence[str]) -> str | None:
        return self._catalogue.shortfall(ref, device_ids)

    def install_command(
        self, ref: str, device_id: str, configuration: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        return self._catalogue.install_command(ref, device_id, dict(configuration) if configuration else None)

    def licence(self, device_id: str, ref: str, *, retry: bool) -> tuple[str, str | None]:
        return self._catalogue.licence_for(device_id, ref, retry=retry)

    def release(self, device_id: str, ref: str) -> None:
        self._catalogue.return_licence(device_id, ref)


# -- the declarative feature's ports (issue #14) -------------------------------------------------------


class BlueprintDeclarationKinds:
    """The blueprints' Declarations port: whether a declaration a blueprint lists exists (read
    from the declarative feature's store: the service is built after the blueprints, which it
    asks in turn for their declarations' scopes)."""

    def __init__(self, store: DeclarationStore) -> None:
        self._store = store

    def declaration_kind(self, identifier: str) -> str:
        found = self._store.get(identifier)
        if found is None:
            raise NotFound(f"no declaration {identifier[:100]!r}")
        return str(found["kind"])


class DeclaredStatus:
    """The core's DeclaredStatus facts port over the declarative feature's status values."""

    def __init__(self, store: DeclarationStore) -> None:
        self._store = store

    def status_facts(self, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
        return {d: facts_of(v) for d, v in self._store.status_values(device_ids).items()}


class DeclarationGroups:
    """The declarative feature's Groups port over GroupService."""

    def __init__(self, groups: GroupService) -> None:
        self._groups = groups

    def group_id(self, ref: str) -> int:
        if ref.isdigit():
            for group in self._all():
                if group["id"] == int(ref):
                    return int(group["id"])
        return int(self._groups.show(ref, limit=1)["id"])  # NotFound: no such group

    def _all(self) -> list[dict[str, Any]]:
        found, after = [], None
        while True:
            page = self._groups.page(limit=1000, after=after)
            found += page["groups"]
            after = page.get("next")
            if not after:
                return found

    def group_names(self) -> dict[int, str]:
        return {int(g["id"]): g["name"] for g in self._all()}

    def members(self, group_id: int) -> set[str]:
        try:
            return set(self._groups.scope_devices(Scope((group_id,), ())))
        except NotFound:
            return set()  # deleted since it was assigned: it reaches no device

    def groups_of(self, device_id: str) -> list[str]:
        return self._groups.groups_of(device_id)


class DeclarationDevices:
    """The declarative feature's Devices port over DeviceService and the core's lifecycle read."""

    def __init__(self, devices: DeviceService, lives: EnrollmentLives) -> None:
        self._devices = devices
        self._lives = lives

    def device_id(self, ref: str) -> str | None:
        row = self._devices.find_device(ref)
        return None if row is None else str(row["id"])

    def lives(self, device_ids: Collection[str]) -> dict[str, DeviceLife]:
        found = self._lives.lives(device_ids)
        return {d: DeviceLife(life.enrolled, life.authenticated_at) for d, life in found.items()}


class DeclarationsUseProfiles:
    """The library's ProfileUsers: a profile a legacy declaration wraps is not deleted."""

    def __init__(self, library: ProfileLibrary, declarations: DeclarativeService) -> None:
        self._library = library
        self._declarations = declarations

    def uses_of(self, profile_id: int) -> list[str]:
        found = next((p for p in self._library.list_profiles() if p["id"] == profile_id), None)
        return [] if found is None else self._declarations.uses_of_profile({found["name"], str(profile_id)})


class AuthoritySigner:
    """The library's ProfileSigner: Russet's profile-signing identity, as for enrollment profiles."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    def sign(self, profile: dict[str, Any]) -> bytes:
        return signed_profile(profile, self._authority)


class EnrollmentFacts:
    """The library's DeviceFacts, read from the MDM core's enrollments (a user channel's facts are
    its device's, plus the user's names)."""

    def __init__(self, enrollments: EnrollmentStore) -> None:
        self._enrollments = enrollments

    def facts(self, target: str) -> Mapping[str, str] | None:
        row = self._enrollments.get(target)
        if row is None and ":" in target:
            device_id, _, user = target.rpartition(":")
            named = self._enrollments.user_channel_named(device_id, user)
            row = self._enrollments.get(named) if named else None
        if row is None:
            return None
        device = row if row["channel"] == "device" else self._enrollments.get(row["device_id"]) or row
        values = {
            "UDID": device["id"],
            "ENROLLMENT_ID": row["id"],
            "SERIAL": device["serial_number"],
            "DEVICE_NAME": device["device_name"],
            "MODEL": device["model"],
            "MODEL_NAME": device["model_name"],
            "PRODUCT_NAME": device["product_name"],
            "OS_VERSION": device["os_version"],
            "BUILD_VERSION": device["build_version"],
            "USERNAME": row["user_short_name"],
            "USER_FULL_NAME": row["user_long_name"],
        }
        if row["enrollment_type"] == "shared_ipad" and "@" in (row["user_short_name"] or ""):
            values["EMAIL"] = row["user_short_name"]  # a Shared iPad user is a Managed Apple Account
        return {name: value for name, value in values.items() if value}


class DevicesForAppsAndBooks:
    """Apps and Books' device lookup (`russet.vpp.ports.DeviceLookup`) over the MDM core's
    DeviceService (the enrollment row it finds, in the shape an install keeps) and its read
    model (`DeviceReports.departed`: devices that left)."""

    def __init__(self, devices: DeviceService, reports: DeviceReports) -> None:
        self._devices = devices
        self._reports = reports

    def departed(self, since: Mapping[str, datetime | None]) -> dict[str, str]:
        return self._reports.departed(since)

    def find_device(self, device: str) -> DeviceRef | None:
        row = self._devices.find_device(device)
        if row is None:
            return None
        return DeviceRef(row["id"], row["serial_number"], bool(row["enabled"]))


# -- escrow's ports over the MDM core, the API keys and the push certificate ---------------------


class EscrowDevices:
    """Escrow's Devices port: the device channel DeviceService finds, with the facts escrow needs
    from its inventory, and its escrowed UnlockToken from the enrollment store."""

    def __init__(self, devices: DeviceService, enrollments: EnrollmentStore) -> None:
        self._devices = devices
        self._enrollments = enrollments

    def find(self, device: str) -> EscrowDevice | None:
        row = self._devices.find_device(device)
        if row is None:
            return None
        inventory = row.get("inventory") or {}
        info = inventory.get("DeviceInformation")
        info = info if isinstance(info, dict) else {}
        facts = DeviceFacts.from_inventory(inventory)
        silicon = info.get("IsAppleSilicon")
        product = row["product_name"] or info.get("ProductName")
        return EscrowDevice(
            device_id=row["id"],
            serial_number=row["serial_number"],
            product_type=product if isinstance(product, str) else None,
            platform=facts.platform,
            apple_silicon=silicon if isinstance(silicon, bool) else None,
            supervised=facts.supervised,
            imei=_cellular_id(info.get("IMEI")),
            meid=_cellular_id(info.get("MEID")),
        )

    def unlock_token(self, device_id: str) -> bytes | None:
        return self._enrollments.unlock_token(device_id)


def _cellular_id(value: object) -> str | None:
    """An IMEI or MEID as Apple's services take it (devices report the IMEI with spaces): its
    digits (hex digits for a MEID), or None when there is none or it is not one."""
    if not isinstance(value, str):
        return None
    text = value.replace(" ", "")
    return text if 14 <= len(text) <= 18 and all(c in "0123456789ABCDEFabcdef" for c in text) else None


class EscrowCommands:
    """Escrow's Commands port: one command for one device through DeviceService (validated,
    refused for the wrong platform, sealed at rest when it carries secrets)."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def send(self, device_id: str, command: Mapping[str, Any], created_by: str) -> str:
        queued = self._devices.send_command([device_id], dict(command), created_by=created_by)
        return str(queued["commands"][0]["command_uuid"])


class AdminsMayViewSecrets:
    """Escrow's SecretViewer by roles (issue #19): only an admin's live API key (`api:<key name>`)
    or console user (`user:<email>`), and the CLI (`cli:<user>`), which runs as the server's
    operator holding the database and the master key already."""

    def __init__(self, access: AccessService) -> None:
        self._access = access

    def may_view(self, viewer: str, device_id: str, kind: str) -> bool:
        if viewer.startswith("cli:"):
            return True
        role: Role | None = None
        if viewer.startswith("api:"):
            role = self._access.key_role(viewer[len("api:") :])
        elif viewer.startswith("user:") and self._access.users is not None:
            user = self._access.users.get(viewer[len("user:") :])
            role = None if user is None else user.role
        return role is not None and role.allows(Role.ADMIN)


class PushIdentity:
    """Escrow's PushIdentity: the installed APNs certificate and key."""

    def __init__(self, stores: PushStores) -> None:
        self._storage = stores

    def identity(self) -> tuple[Any, Any] | None:
        found = push_identity(self._storage)
        return None if found is None else (found.certificate, found.key)


# -- enrollment: sign-in during Setup Assistant (enrollment.ports.PeopleSignIn) -------------------


class EnrollmentPeople:
    """The console's OpenID Connect provider (through OidcPersonSignIn, with the sign-in's own
    callback as redirect URL) and Russet's local accounts (console users' Argon2 passwords),
    failures counted with the console's sign-in limiter (per address and per email)."""

    def __init__(self, access: AccessService, sso: OidcPersonSignIn | None) -> None:
        self._access = access
        self._sso = sso

    def sso_enabled(self) -> bool:
        return self._sso is not None

    def _single_sign_on(self) -> OidcPersonSignIn:
        if self._sso is None:
            raise NotFound("single sign-on is not configured (RUSSET_OIDC_DISCOVERY_URL)")
        return self._sso

    def sso_start(self) -> tuple[str, dict[str, str]]:
        return self._single_sign_on().start()

    def sso_finish(self, flow: Mapping[str, str], params: Mapping[str, str]) -> Person:
        if not all(flow.get(k) for k in ("state", "nonce", "verifier")):
            raise Invalid("the single sign-on flow is incomplete: start again")
        return self._single_sign_on().finish(flow, params)

    def password(self, email: str, password: str, client: str | None) -> Person:
        names = [*buckets(client, ""), f"enroll:{email.strip().lower()}"[:MAX_BUCKET_CHARS]]
        wait = self._access.sign_in_wait(names)
        if wait is not None:
            raise Refused(f"too many failed sign-ins: try again in {wait} seconds")
        users = self._access.users
        if users is None:
            raise NotFound("local accounts are not set up")
        user = users.verify(email, password)
        if user is None:
            self._access.sign_in_failed(names)
            raise Refused("wrong email address or password")
        self._access.sign_in_succeeded(names)
        return Person(user.email, user.email, None)


class MacSetupCommands:
    """The MDM core's device service, for pre-filling a Mac's primary account (enrollment.ports.
    SetupCommands)."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def is_mac(self, device_id: str) -> bool:
        row = self._devices.find_device(device_id)
        return (
            row is not None and platform_of(row["product_name"], row["model"], row["model_name"]) == "macOS"
        )

    def sent_since(self, device_id: str, request_type: str, since: datetime | None) -> bool:
        for command in self._devices.device_commands(device_id)["commands"]:
            if command["request_type"] != request_type:
                continue
            start = as_utc(since)  # the enrollment's Authenticate time (naive from SQLite)
            created = as_utc(datetime.fromisoformat(command["created_at"]))
            if start is None or (created is not None and created >= start.replace(microsecond=0)):
                return True
        return False

    def send(self, device_id: str, command: dict[str, Any]) -> None:
        self._devices.send_command([device_id], command, created_by="russet:ade-sign-in")


# -- the ledger's subject look-up over the features that know who is who (apple.ports.SubjectLinks) --


class MdmSubjects:
    """Devices and their users, from the MDM core's enrollments."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def links(self, identifier: str) -> list[Link]:
        found = self._devices.subject_links(identifier)
        return [Link(kind, value, "MDM enrollments") for kind, value in found]


class AppsAndBooksPeople:
    """People of every Apps and Books location: client user id, email, Managed Apple ID."""

    def __init__(self, store: VppStore) -> None:
        self._store = store

    def links(self, identifier: str) -> list[Link]:
        out = []
        for user in self._store.people(identifier):
            source = f"Apps and Books users (location {user['location']})"
            out.append(Link("client_user_id", user["client_user_id"], source))
            if user["email"]:
                out.append(Link("email", user["email"], source))
            if user["managed_apple_id"]:
                out.append(Link("managed_apple_id", user["managed_apple_id"], source))
            out.append(Link("vpp_location", user["location"], source))
        return out


class EnrollmentSignIns:
    """People who signed in before an enrollment profile (during Setup Assistant, or account-driven)
    and the devices they enrolled (personal data kept in enrollment_requests): the subject look-up's
    links (apple.ports.SubjectLinks), and forgotten by its erasure (apple.ports.SubjectErasure)."""

    def __init__(self, requests: EnrollmentRequestLog) -> None:
        self._requests = requests

    def links(self, identifier: str) -> list[Link]:
        return [
            Link(kind, value, "sign-ins before enrollment (enrollment requests)")
            for kind, value in self._requests.subject_links(identifier)
        ]

    def forget(self, conn: Connection, people: Collection[str]) -> int:
        return self._requests.forget_people(conn, people)


class SignedInPeopleForAppsAndBooks:
    """The people who signed in before enrollment, for Apps and Books to register as users
    (vpp.ports.SignedInPeople)."""

    def __init__(self, requests: EnrollmentRequestLog) -> None:
        self._requests = requests

    def emails(self, limit: int) -> list[str]:
        return self._requests.person_emails(limit)


class AbmSubjects:
    """Which ABM/ASM connections list a serial number."""

    def __init__(self, serials: AbmSerials) -> None:
        self._serials = serials

    def links(self, identifier: str) -> list[Link]:
        found = self._serials.connections_by_serial([identifier.strip().upper()])
        return [Link("abm_connection", name, "ABM/ASM devices") for names in found.values() for name in names]


class PushFailures:
    """The pusher's outcome observer that publishes PushFailed for each dead token or failed push.

    The pusher tells its observers on the event loop, and PushFailed's subscribers write to the
    database (the webhooks' outbox), so the events are published from a worker thread. A user
    channel's id is `<device>:<user>` (`russet.mdm.channels`), so the device is its first part."""

    KINDS = frozenset({"token_dead", "failed"})

    def __init__(self, events: EventBus) -> None:
        self._events = events

    def __call__(self, outcomes: Sequence[Outcome]) -> None:
        failed = [
            PushFailed(o.enrollment_id.split(":", 1)[0], o.enrollment_id, o.outcome, o.reason, o.status)
            for o in outcomes
            if o.outcome in self.KINDS
        ]
        if not failed:
            return

        def publish() -> None:
            for event in failed:
                self._events.publish(event)

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # told outside the loop (a synchronous caller): publish here
            publish()
            return
        loop.run_in_executor(None, publish)


class OidcPersonSignIn:
    """Enrollment's PersonSignIn port over the console's OpenID Connect client: the same provider,
    with account-driven enrollment's callback as redirect URL (register it at the provider)."""

    def __init__(self, sso: SingleSignOn, redirect_url: str) -> None:
        self._sso = SingleSignOn(dataclasses.replace(sso.config, redirect_url=redirect_url))

    def start(self) -> tuple[str, dict[str, str]]:
        url, pending = self._sso.start()
        return url, {"state": pending.state, "nonce": pending.nonce, "verifier": pending.verifier}

    def finish(self, flow: Mapping[str, str], params: Mapping[str, str]) -> Person:
        pending = Pending(flow.get("state", ""), flow.get("nonce", ""), flow.get("verifier", ""))
        identity = self._sso.finish(pending, params)
        return Person(identity.subject, identity.email, identity.name)
