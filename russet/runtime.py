"""The assembled server, and the composition root: configuration, storage, the CA, and every
feature's service built with exactly what it needs, opened once.

The server (`russet serve`, each ASGI worker) starts from `Russet.open()`, which first sets the
database up under a lock shared by every process (migrations, the CA, the ledger's key), so a
fresh data directory becomes a working server without any setup step and two servers starting
at once make one CA. Other CLI commands open it with `migrate_db=False`: they only check that the
database is set up, and say `run russet migrate first` if not.

Surfaces (API, CLI, console) call the services kept here (`russet.devices`, `russet.push`,
`russet.enrollment`, `russet.ledger_admin`, ...); features never import this module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.abm.service import AbmService
from russet.abm.store import AbmSerials, AbmStore
from russet.access.audit import AuditEntry, AuditLog
from russet.access.roles import Role
from russet.access.service import AccessService
from russet.access.sso import OidcConfig, SingleSignOn
from russet.access.users import UserStore
from russet.apns import hooks as apns_hooks
from russet.apns.certificate import push_identity
from russet.apns.pusher import Pusher
from russet.apns.service import PushService
from russet.apns.topic import PushTopic
from russet.apple.admin import LedgerAdmin
from russet.apple.connection.admin import ConnectionConfig
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.apple.ports import Link
from russet.apple.privacy import LedgerPrivacy
from russet.apps import ports as app_ports
from russet.apps.service import AppCatalogue
from russet.apps.tokens import DownloadTokens
from russet.blueprints.ports import AppVersion, DeviceReport, ProfileVersion
from russet.blueprints.service import BlueprintService
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.commands.support import DeviceFacts
from russet.config import Settings
from russet.declarative.ports import DeviceLife
from russet.declarative.service import DeclarativeService
from russet.declarative.status import facts_of
from russet.declarative.store import DeclarationStore
from russet.enrollment.authority import Authority, ensure_authority
from russet.enrollment.profile import ProfileIssuer, signed_profile
from russet.enrollment.service import EnrollmentService
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentTokenStore
from russet.escrow import hooks as escrow_hooks
from russet.escrow.ports import EscrowDevice
from russet.escrow.service import EscrowService
from russet.escrow.store import EscrowStore
from russet.groups.service import GroupService, Scope
from russet.infra.tasks import Schedule
from russet.kernel.errors import NotFound, RussetError
from russet.kernel.events import (
    BlueprintsChanged,
    CommandAnswered,
    DeviceAwaitingConfiguration,
    DeviceFactsChanged,
    EventBus,
    GroupMembersChanged,
)
from russet.kernel.tasks import PeriodicTask
from russet.library.service import ProfileLibrary
from russet.mdm.actions import DeviceActions
from russet.mdm.devices import DeviceService
from russet.mdm.facts import MdmDeviceFacts
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.lifecycle import EnrollmentLives
from russet.mdm.proxy_cert import CertFormat, ProxyClientCertSource
from russet.mdm.reenroll import ReenrollmentStore
from russet.mdm.reports import DeviceReports
from russet.mdm.service import LastSeen, MdmService
from russet.mdm.signatures import SeenSignatures
from russet.storage.bundle import Storage
from russet.storage.db import Migration, first_start_lock, make_engine, migrate, require_migrated, utcnow
from russet.storage.leases import TaskLeases
from russet.storage.login_failures import LoginLimiter
from russet.storage.rotation import finish_interrupted_rotation
from russet.storage.secretbox import SecretBox
from russet.vpp import hooks as vpp_hooks
from russet.vpp.installs import locate_asset
from russet.vpp.ports import DeviceRef
from russet.vpp.service import VppService
from russet.vpp.store import VppStore

T = TypeVar("T")
log = logging.getLogger("russet")
HOUSEKEEPING_SECONDS = 6 * 3600
AUDIT_RETENTION_SECONDS = 24 * 3600
APP_LICENCES_SECONDS = 30.0  # the app catalogue's licence requests are moved on this often


def _inventory_hook(
    request_type: str, report: dict[str, Any], max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    sections = inventory_update(request_type, report, max_section_bytes)
    if sections is None:
        return None
    return sections, summary_fields(sections)


def identity_sources(settings: Settings) -> list[IdentitySource]:
    """Where device identities come from: the proxy's client-certificate header when one is
    configured (and then only there), else the Mdm-Signature header."""
    if settings.client_cert_header:
        fmt = cast(CertFormat, settings.client_cert_format)
        return [ProxyClientCertSource(settings.client_cert_header, fmt)]
    return [MdmSignatureSource()]


# Each Apple service's own knowledge of its credentials and data, for disconnect and purge.
SERVICE_HOOKS: list[ServiceHooks] = []
SERVICE_HOOKS.append(abm_hooks.HOOKS)
SERVICE_HOOKS.append(apns_hooks.HOOKS)
SERVICE_HOOKS.append(vpp_hooks.HOOKS)
SERVICE_HOOKS.append(escrow_hooks.HOOKS)


# -- the blueprints' ports over the real services (issue #13) ------------------------------------


class _GroupScopes:
    """The blueprints' Scopes port over GroupService: group ids in, device channel ids out. An
    unknown group is the groups service's NotFound, which the blueprint service turns into a
    refusal (nothing stored)."""

    def __init__(self, groups: GroupService) -> None:
        self._groups = groups

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        return set(self._groups.scope_devices(Scope(tuple(include), tuple(exclude))))

    def groups_of(self, device_id: str) -> set[int]:
        return set(self._groups.lookup(names=self._groups.groups_of(device_id)).values())


class _LibraryProfiles:
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


class _CoreReports:
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


class _AbmBlueprintNames:
    """ABM's BlueprintNames port over BlueprintService: an ADE profile names a blueprint by name
    or id; ABM keeps the id and shows the current name."""

    def __init__(self, blueprints: BlueprintService) -> None:
        self._blueprints = blueprints

    def resolve(self, ref: str) -> tuple[int, str]:
        found = self._blueprints.get(int(ref) if ref.isdigit() else ref)
        return found["id"], found["name"]

    def names(self, ids: Collection[int]) -> Mapping[int, str]:
        return self._blueprints.blueprints.names(ids)


class _BlueprintsUseProfiles:
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

DOWNLOAD_KEY_SETTING = "apps.download_key"  # keys the hosted apps' download tokens
DOWNLOAD_TTL = timedelta(days=7)  # a device offline for days still fetches its queued install


class _VppForApps:
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


class _DevicesForApps:
    """The catalogue's DeviceLookup: a user channel's licence is its device's serial number."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def find_device(self, device: str) -> app_ports.DeviceRef | None:
        row = self._devices.find_device(device)
        if (row is None or not row["serial_number"]) and ":" in device:
            row = self._devices.find_device(device.rpartition(":")[0]) or row
        return None if row is None else app_ports.DeviceRef(row["id"], row["serial_number"])


class _CatalogueApps:
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

DDM_DATA_KEY_SETTING = "declarative.data_key"  # keys each device's data URL token


class _DeclaredStatus:
    """The core's DeclaredStatus facts port over the declarative feature's status values."""

    def __init__(self, store: DeclarationStore) -> None:
        self._store = store

    def status_facts(self, device_ids: Collection[str] | None) -> dict[str, dict[str, Any]]:
        return {d: facts_of(v) for d, v in self._store.status_values(device_ids).items()}


class _DeclarationGroups:
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


class _DeclarationDevices:
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


class _BlueprintDeclarationKinds:
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


class _DeclarationsUseProfiles:
    """The library's ProfileUsers: a profile a legacy declaration wraps is not deleted."""

    def __init__(self, library: ProfileLibrary, declarations: DeclarativeService) -> None:
        self._library = library
        self._declarations = declarations

    def uses_of(self, profile_id: int) -> list[str]:
        found = next((p for p in self._library.list_profiles() if p["id"] == profile_id), None)
        return [] if found is None else self._declarations.uses_of_profile({found["name"], str(profile_id)})


def single_sign_on(settings: Settings) -> SingleSignOn | None:
    """The console's OpenID Connect client, when RUSSET_OIDC_DISCOVERY_URL is set."""
    if not settings.oidc_discovery_url:
        return None
    return SingleSignOn(
        OidcConfig(
            discovery_url=settings.oidc_discovery_url,
            client_id=settings.oidc_client_id or "",
            client_secret=settings.oidc_client_secret or "",
            redirect_url=settings.oidc_redirect_url or f"{settings.public_url}/console/sso/callback",
            scopes=settings.oidc_scopes,
            role_claim=settings.oidc_role_claim,
        )
    )


def _did_something(result: Any) -> bool:
    """Whether a task's result says it changed something (a non-zero count, a non-empty list...)."""
    if isinstance(result, Mapping):
        return any(_did_something(v) for v in result.values())
    if isinstance(result, (list, tuple, set)):
        return bool(result)
    if isinstance(result, bool):
        return result
    if isinstance(result, (int, float)):
        return result != 0
    return result is not None and result != ""


def audited_task(task: PeriodicTask, access: AccessService) -> PeriodicTask:
    """`task` whose runs that did something, or failed, are recorded in the audit log."""
    host = socket.gethostname()

    def record(outcome: str, detail: dict[str, Any]) -> None:
        try:
            access.record(
                AuditEntry(
                    actor=f"task:{task.name}",
                    surface="task",
                    action=f"task {task.name}",
                    source=host,
                    outcome=outcome,
                    detail=detail,
                )
            )
        except Exception:  # the audit log must not stop the work; the failure is logged
            log.exception("audit log: task %s not recorded", task.name)

    def summary(result: Any) -> dict[str, Any]:
        return {"result": result if isinstance(result, (Mapping, int, float, str)) else repr(result)[:500]}

    def run() -> Any:
        try:
            out = task.run()
        except Exception as exc:
            record("failed", {"error": str(exc)[:500]})
            raise
        if not inspect.isawaitable(out):
            if _did_something(out):
                record("ok", summary(out))
            return out
        awaited = out

        async def finish() -> Any:
            try:
                value = await awaited
            except Exception as exc:
                await asyncio.to_thread(record, "failed", {"error": str(exc)[:500]})
                raise
            if _did_something(value):
                await asyncio.to_thread(record, "ok", summary(value))
            return value

        return finish()

    run.__wrapped__ = task.run  # type: ignore[attr-defined]  # the work itself, for `russet tasks` and tests
    return dataclasses.replace(task, run=run)


def set_up(storage: Storage, box: SecretBox) -> tuple[Migration, Authority]:
    """First-start work, once for all processes starting together: migrations, the CA and the
    profile signer, the ledger's fingerprint key. Idempotent; cheap when already done."""
    with first_start_lock(storage.engine):
        done = migrate(storage.engine, box)
        authority = ensure_authority(storage.certificates)
        Fingerprinter.load(storage.settings)
        for key in (DOWNLOAD_KEY_SETTING, DDM_DATA_KEY_SETTING):  # made once, sealed in the settings
            storage.settings.random_key(key)
    return done, authority


class _AuthoritySigner:
    """The library's ProfileSigner: Russet's profile-signing identity, as for enrollment profiles."""

    def __init__(self, authority: Authority) -> None:
        self._authority = authority

    def sign(self, profile: dict[str, Any]) -> bytes:
        return signed_profile(profile, self._authority)


class _EnrollmentFacts:
    """The library's DeviceFacts, read from the MDM core's enrollments (a user channel's facts are
    its device's, plus the user's names)."""

    def __init__(self, storage: Storage) -> None:
        self._enrollments = storage.enrollments

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


@dataclass
class Russet:
    settings: Settings
    storage: Storage
    authority: Authority
    mdm: MdmService
    identities: IdentityVerifier
    last_seen: LastSeen
    ledger: Ledger
    connections: ConnectionRegistry
    gateway: AppleGateway
    pusher: Pusher
    push_topic: PushTopic  # call it for the current topic; settings.push_topic is only the fallback
    devices: DeviceService
    actions: DeviceActions  # lost mode, erase, lock, Shared iPad users, OS updates (issue #15)
    push: PushService
    enrollment: EnrollmentService
    ledger_admin: LedgerAdmin
    ledger_privacy: LedgerPrivacy  # the Intune-shaped report, subjects, retention (issue #16)
    events: EventBus  # in-process events between features (DeviceFactsChanged -> groups)
    groups: GroupService
    library: ProfileLibrary  # the profile library
    abm: AbmService  # Apple Business/School Manager
    vpp: VppService  # Apps and Books
    apps: AppCatalogue  # the app catalogue: Apps and Books and enterprise apps, hosted downloads
    blueprints: BlueprintService
    escrow: EscrowService  # device secrets: unlock token, passwords, FileVault, Activation Lock
    declarations: DeclarativeService  # declarative device management (DDM)
    access: AccessService  # API keys, console users and sign-on, sign-in failures, the audit log
    migration: Migration | None = field(default=None)  # what opening with migrate_db did

    @classmethod
    def open(cls, settings: Settings, *, migrate_db: bool = True, apple_backoff: float = 0.5) -> Russet:
        """Open storage and everything on it. `migrate_db`: set the database up first (under the
        first-start lock); without it an un-migrated database raises NotMigrated. `apple_backoff`:
        the gateway's first wait before retrying Apple (tests against simulators shorten it)."""
        engine = make_engine(settings.database_url)
        try:
            finished = finish_interrupted_rotation(settings, engine)
            if finished:
                log.warning("%s", finished)
            box = SecretBox.load(settings.data_dir, settings.master_key)
            storage = Storage.open(
                engine,
                box,
                max_attempts=settings.max_delivery_attempts,
                inventory_hook=partial(
                    _inventory_hook, max_section_bytes=settings.max_inventory_section_bytes
                ),
            )
            migration: Migration | None = None
            if migrate_db:
                migration, authority = set_up(storage, box)
            else:
                require_migrated(engine)
                authority = ensure_authority(storage.certificates, create=False)
        except BaseException:
            engine.dispose()
            raise
        # The installed push certificate names the topic; RUSSET_PUSH_TOPIC is only the fallback.
        # Looked up while serving, so a new certificate (imported anywhere) needs no restart.
        push_topic = PushTopic(storage, settings.push_topic)
        last_seen = LastSeen()
        ledger = Ledger(engine, Fingerprinter.load(storage.settings))
        ledger.start()
        connections = ConnectionRegistry(engine, SERVICE_HOOKS)
        gateway = AppleGateway(ledger, connections, ca_file=settings.apple_ca_file, backoff=apple_backoff)
        pusher = Pusher(storage, gateway, settings.apns_url)
        signatures = SeenSignatures(engine)
        push = PushService(storage, pusher, push_topic, connections, known=storage.enrollments)
        devices = DeviceService(
            storage.enrollments,
            storage.queue,
            storage.bootstrap,
            ReenrollmentStore(engine),
            signatures,
            pushes=push,
        )
        issuer = ProfileIssuer(
            authority,
            storage.certificates,
            storage.challenges,
            settings.public_url,
            # Behind a proxy that forwards client certificates, devices need not sign requests.
            sign_message=settings.client_cert_header is None,
        )
        ade_log = EnrollmentRequestLog(engine)  # ADE profiles handed out: tokens, facts
        events = EventBus()
        ddm_store = DeclarationStore(engine)
        reports = DeviceReports(engine)  # the MDM core's bulk read model (blueprints, Apps and Books)
        groups = GroupService(
            engine,
            MdmDeviceFacts(engine, abm=AbmSerials(engine), ade=ade_log, declared=_DeclaredStatus(ddm_store)),
            events=events,
        )
        events.subscribe(DeviceFactsChanged, groups.on_facts_changed)
        library = ProfileLibrary(engine, box, _AuthoritySigner(authority), _EnrollmentFacts(storage), devices)
        vpp = VppService(
            VppStore(engine, box),
            gateway,
            connections,
            _DevicesForAppsAndBooks(devices, reports),
            devices,
            engine=engine,
            config=ConnectionConfig.of(
                settings.vpp_url, settings.public_url, sync_minutes=settings.vpp_sync_minutes
            ),
            poll_seconds=settings.vpp_poll_seconds,
        )
        apps = AppCatalogue(
            engine,
            settings.data_dir / "apps",
            DownloadTokens(storage.settings.random_key(DOWNLOAD_KEY_SETTING), DOWNLOAD_TTL),
            settings.public_url,
            _VppForApps(vpp),
            _DevicesForApps(devices),
        )
        library_profiles = _LibraryProfiles(library)  # signed once per version for every device
        blueprints = BlueprintService(
            engine,
            _GroupScopes(groups),
            library_profiles,
            devices,
            _CoreReports(reports),
            max_in_flight=settings.reconcile_max_in_flight,
            ade=AbmSerials(engine),
            ade_release_after=timedelta(minutes=settings.ade_release_minutes),
            apps=_CatalogueApps(apps),
            declarations=_BlueprintDeclarationKinds(ddm_store),
            events=events,
        )
        library.add_users(_BlueprintsUseProfiles(library, blueprints))
        apps.add_users(blueprints)
        events.subscribe(CommandAnswered, blueprints.on_command_answered)
        # A static group's members changed by an admin: the next blueprints pass is a full one.
        events.subscribe(GroupMembersChanged, lambda _changed: blueprints.mark_changed())
        # After the groups' handler (subscription order): smart groups are re-evaluated first.
        events.subscribe(DeviceFactsChanged, blueprints.on_facts_changed)
        # Published after the TokenUpdate's DeviceFactsChanged: groups are up to date by then.
        events.subscribe(DeviceAwaitingConfiguration, blueprints.on_awaiting_configuration)
        access = AccessService(
            storage.api_keys,
            LoginLimiter(engine),
            users=UserStore(engine),
            audit=AuditLog(engine),
            sso=single_sign_on(settings),
            audit_retention_days=settings.audit_retention_days,
        )
        escrow = EscrowService(
            EscrowStore(engine, box),
            storage.certificates,
            _EscrowDevices(devices, storage),
            _EscrowCommands(devices),
            _AdminsMayViewSecrets(access),
            _PushIdentity(storage),
            gateway,
            connections,
            activation_lock_url=settings.activation_lock_url,
            filevault_location=f"Russet ({settings.public_url})",
        )
        events.subscribe(CommandAnswered, escrow.on_command_answered)
        declarations = DeclarativeService(
            ddm_store,
            _DeclarationGroups(groups),
            _DeclarationDevices(devices, EnrollmentLives(engine)),
            devices,
            public_url=settings.public_url,
            data_key=storage.settings.random_key(DDM_DATA_KEY_SETTING),
            events=events,
            library=library_profiles,
            blueprints=blueprints,  # the declarations blueprints list, in their scopes
        )
        library.add_users(_DeclarationsUseProfiles(library, declarations))
        events.subscribe(BlueprintsChanged, declarations.on_blueprints_changed)
        events.subscribe(GroupMembersChanged, declarations.on_group_members_changed)
        # After groups (membership first) and blueprints; an enrolled-again device is told again.
        events.subscribe(DeviceFactsChanged, declarations.on_facts_changed)
        return cls(
            settings=settings,
            storage=storage,
            authority=authority,
            mdm=MdmService(
                storage.enrollments,
                storage.queue,
                storage.bootstrap,
                push_topic,
                last_seen,
                settings.user_authenticate,
                settings.max_result_bytes,
                settings.reenroll_policy,
                events=events,
                declarative=declarations,
            ),
            identities=IdentityVerifier(
                authority.ca_certificate,
                identity_sources(settings),
                ReplayGuard(signatures, settings.signing_window_seconds),
            ),
            last_seen=last_seen,
            ledger=ledger,
            connections=connections,
            gateway=gateway,
            pusher=pusher,
            push_topic=push_topic,
            devices=devices,
            actions=DeviceActions(devices),
            push=push,
            enrollment=EnrollmentService(
                EnrollmentTokenStore(engine), ade_log, issuer, push_topic
            ),
            ledger_admin=LedgerAdmin(ledger, connections, devices, settings.ledger_retention_days),
            ledger_privacy=LedgerPrivacy(
                engine,
                ledger,
                [_MdmSubjects(devices), _AppsAndBooksPeople(vpp.store), _AbmSubjects(AbmSerials(engine))],
            ),
            events=events,
            groups=groups,
            library=library,
            blueprints=blueprints,
            escrow=escrow,
            declarations=declarations,
            access=access,
            migration=migration,
            abm=AbmService(
                AbmStore(engine, box),
                gateway,
                connections,
                ledger,
                ConnectionConfig.of(
                    settings.abm_url, settings.public_url, sync_minutes=settings.abm_sync_minutes
                ),
                blueprints=_AbmBlueprintNames(blueprints),
            ),
            vpp=vpp,
            apps=apps,
        )

    def housekeeping(self) -> dict[str, int]:
        """Periodic deletions, each its owner's: ledger rows past retention, SCEP challenges that
        expired unused, console sign-in failure counts whose window has ended, check-in signatures
        whose signing time left the replay window, refused re-enrollments after 90 days.

        Run every 6 hours, once across nodes, as the `housekeeping` task of `tasks()`.
        """
        folded = self.ledger_privacy.apply_retention()  # before the prune: old detail becomes counts
        return {
            "ledger_rows_counted": sum(folded.values()),
            "ledger_rows": self.ledger_admin.prune_ledger(),
            "scep_challenges": self.enrollment.prune_challenges(),
            "login_failures": self.access.prune_sign_in_failures(),
            "seen_signatures": self.devices.prune_seen_signatures(),
            "enrollment_refusals": self.devices.prune_refusals(),
        }

    def flush_last_seen(self) -> None:
        self.mdm.flush_last_seen()

    # -- background work ---------------------------------------------------------------------------

    def tasks(self) -> list[PeriodicTask]:
        """Every periodic task of the server, for the lifespan's runner (`russet.infra.tasks`) and
        for `russet tasks`: each service's own (`tasks()`), and housekeeping, which gathers the
        periodic deletions of several features and so belongs to the composition."""

        def housekeeping() -> dict[str, int]:
            removed = self.housekeeping()
            if any(removed.values()):
                log.info("housekeeping removed %s", removed)
            return removed

        tasks = [
            *self.mdm.tasks(),
            PeriodicTask(
                "audit.retention",
                AUDIT_RETENTION_SECONDS,
                self.access.prune_audit,
                once_across_nodes=True,
                first_delay=60.0,
                description="remove audit log rows past RUSSET_AUDIT_RETENTION_DAYS, anchoring the "
                "rest of the chain",
            ),
            PeriodicTask(
                "housekeeping",
                HOUSEKEEPING_SECONDS,
                housekeeping,
                once_across_nodes=True,
                description="fold ledger detail past each service's retention into counts, "
                "prune the ledger past retention, expired SCEP challenges, sign-in "
                "failures, check-in signatures and old re-enrollment refusals",
            ),
            *self.abm.tasks(),
            *self.vpp.tasks(),
            *self.push.tasks(),
            PeriodicTask(  # the catalogue and the blueprints together: composed here
                "apps.licences",
                APP_LICENCES_SECONDS,
                self.work_app_licences,
                once_across_nodes=True,
                first_delay=APP_LICENCES_SECONDS,
                description="Apps and Books licences the reconciler asked for: assign or give back "
                "with Apple, then reconcile those devices again",
            ),
            *self.groups.tasks(),
            *self.blueprints.tasks(),
            *self.declarations.tasks(),
        ]
        # Cluster-wide work acts for the organisation: each run that did something, or failed, is
        # in the audit log (per-process chores such as flushing last-seen times are not).
        return [audited_task(t, self.access) if t.once_across_nodes else t for t in tasks]

    async def work_app_licences(self) -> dict[str, Any]:
        """The `apps.licences` task: the catalogue moves licence requests on with Apple; the devices
        whose licence changed are reconciled at the next periodic pass."""
        outcome = await self.apps.work_licences()
        try:
            self.blueprints.mark_devices(outcome["devices"])
        except RussetError as exc:
            log.warning("apps.licences: devices not marked for the reconciler: %s", exc)
        return outcome

    @cached_property
    def schedule(self) -> Schedule:
        """The periodic tasks and their shared state (leases, last runs): the lifespan runs
        `schedule.runner()`, `russet tasks` and `GET /api/v1/tasks` show `schedule.overview()`."""
        return Schedule(TaskLeases(self.storage.engine), self.tasks)

    def run(self, work: Awaitable[T]) -> T:
        """Run work that talks to Apple from synchronous code (the CLI), in a loop of its own.

        The gateway's connections belong to that loop, so they are closed before it ends.
        """

        async def main() -> T:
            try:
                return await work
            finally:
                await self.gateway.aclose()

        return asyncio.run(main())

    def close(self) -> None:
        self.flush_last_seen()
        self.ledger.stop()
        self.storage.engine.dispose()


class _DevicesForAppsAndBooks:
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


# -- the ledger's subject look-up over the features that know who is who (apple.ports.SubjectLinks) --


class _MdmSubjects:
    """Devices and their users, from the MDM core's enrollments."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def links(self, identifier: str) -> list[Link]:
        found = self._devices.subject_links(identifier)
        return [Link(kind, value, "MDM enrollments") for kind, value in found]


class _AppsAndBooksPeople:
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


class _AbmSubjects:
    """Which ABM/ASM connections list a serial number."""

    def __init__(self, serials: AbmSerials) -> None:
        self._serials = serials

    def links(self, identifier: str) -> list[Link]:
        found = self._serials.connections_by_serial([identifier.strip().upper()])
        return [
            Link("abm_connection", name, "ABM/ASM devices") for names in found.values() for name in names
        ]


# -- escrow's ports over the MDM core, the API keys and the push certificate ---------------------


class _EscrowDevices:
    """Escrow's Devices port: the device channel DeviceService finds, with the facts escrow needs
    from its inventory, and its escrowed UnlockToken from the enrollment store."""

    def __init__(self, devices: DeviceService, storage: Storage) -> None:
        self._devices = devices
        self._enrollments = storage.enrollments

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


class _EscrowCommands:
    """Escrow's Commands port: one command for one device through DeviceService (validated,
    refused for the wrong platform, sealed at rest when it carries secrets)."""

    def __init__(self, devices: DeviceService) -> None:
        self._devices = devices

    def send(self, device_id: str, command: Mapping[str, Any], created_by: str) -> str:
        queued = self._devices.send_command([device_id], dict(command), created_by=created_by)
        return str(queued["commands"][0]["command_uuid"])


class _AdminsMayViewSecrets:
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


class _PushIdentity:
    """Escrow's PushIdentity: the installed APNs certificate and key."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    def identity(self) -> tuple[Any, Any] | None:
        found = push_identity(self._storage)
        return None if found is None else (found.certificate, found.key)
