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
import logging
import threading
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.abm.service import AbmService
from russet.abm.store import AbmSerials, AbmStore
from russet.access.service import AccessService
from russet.apns import hooks as apns_hooks
from russet.apns.pusher import Pusher
from russet.apns.service import PushService
from russet.apns.topic import PushTopic
from russet.apple.admin import LedgerAdmin
from russet.apple.connection.admin import ConnectionConfig
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.blueprints.ports import DeviceReport, ProfileVersion
from russet.blueprints.service import BlueprintService
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.config import Settings
from russet.enrollment.authority import Authority, ensure_authority
from russet.enrollment.profile import ProfileIssuer, signed_profile
from russet.enrollment.service import EnrollmentService
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentTokenStore
from russet.groups.service import GroupService, Scope
from russet.infra.tasks import Schedule
from russet.kernel.errors import NotFound
from russet.kernel.events import CommandAnswered, DeviceFactsChanged, EventBus, GroupMembersChanged
from russet.kernel.tasks import PeriodicTask
from russet.library.service import ProfileLibrary
from russet.mdm.devices import DeviceService
from russet.mdm.facts import MdmDeviceFacts
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
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
from russet.vpp.ports import DeviceRef
from russet.vpp.service import VppService
from russet.vpp.store import VppStore

T = TypeVar("T")
log = logging.getLogger("russet")
HOUSEKEEPING_SECONDS = 6 * 3600


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


# -- the blueprints' ports over the real services (issue #13) ------------------------------------


class _GroupScopes:
    """The blueprints' Scopes port over GroupService: group ids in, device channel ids out. An
    unknown group is the groups service's NotFound, which the blueprint service turns into a
    refusal (nothing stored)."""

    def __init__(self, groups: GroupService) -> None:
        self._groups = groups

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        return set(self._groups.scope_devices(Scope(tuple(include), tuple(exclude))))


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
            )
            for device_id, r in self._reports.reports(device_ids).items()
        }


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


def set_up(storage: Storage, box: SecretBox) -> tuple[Migration, Authority]:
    """First-start work, once for all processes starting together: migrations, the CA and the
    profile signer, the ledger's fingerprint key. Idempotent; cheap when already done."""
    with first_start_lock(storage.engine):
        done = migrate(storage.engine, box)
        authority = ensure_authority(storage.certificates)
        Fingerprinter.load(storage.settings)
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
    push: PushService
    enrollment: EnrollmentService
    ledger_admin: LedgerAdmin
    events: EventBus  # in-process events between features (DeviceFactsChanged -> groups)
    groups: GroupService
    library: ProfileLibrary  # the profile library
    abm: AbmService  # Apple Business/School Manager
    vpp: VppService  # Apps and Books
    blueprints: BlueprintService
    access: AccessService  # API keys, console sign-in failures
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
        reports = DeviceReports(engine)  # the MDM core's bulk read model (blueprints, Apps and Books)
        groups = GroupService(
            engine, MdmDeviceFacts(engine, abm=AbmSerials(engine), ade=ade_log), events=events
        )
        events.subscribe(DeviceFactsChanged, groups.on_facts_changed)
        library = ProfileLibrary(engine, box, _AuthoritySigner(authority), _EnrollmentFacts(storage), devices)
        blueprints = BlueprintService(
            engine,
            _GroupScopes(groups),
            _LibraryProfiles(library),
            devices,
            _CoreReports(reports),
            max_in_flight=settings.reconcile_max_in_flight,
        )
        library.add_users(_BlueprintsUseProfiles(library, blueprints))
        events.subscribe(CommandAnswered, blueprints.on_command_answered)
        # A static group's members changed by an admin: the next blueprints pass is a full one.
        events.subscribe(GroupMembersChanged, lambda _changed: blueprints.mark_changed())
        # After the groups' handler (subscription order): smart groups are re-evaluated first.
        events.subscribe(DeviceFactsChanged, blueprints.on_facts_changed)
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
            push=push,
            enrollment=EnrollmentService(
                EnrollmentTokenStore(engine), ade_log, issuer, push_topic
            ),
            ledger_admin=LedgerAdmin(ledger, connections, devices, settings.ledger_retention_days),
            events=events,
            groups=groups,
            library=library,
            blueprints=blueprints,
            access=AccessService(storage.api_keys, LoginLimiter(engine)),
            migration=migration,
            abm=AbmService(
                AbmStore(engine, box),
                gateway,
                connections,
                ledger,
                ConnectionConfig.of(
                    settings.abm_url, settings.public_url, sync_minutes=settings.abm_sync_minutes
                ),
            ),
            vpp=VppService(
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
            ),
        )

    def housekeeping(self) -> dict[str, int]:
        """Periodic deletions, each its owner's: ledger rows past retention, SCEP challenges that
        expired unused, console sign-in failure counts whose window has ended, check-in signatures
        whose signing time left the replay window, refused re-enrollments after 90 days.

        Run every 6 hours, once across nodes, as the `housekeeping` task of `tasks()`.
        """
        return {
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

        return [
            *self.mdm.tasks(),
            PeriodicTask(
                "housekeeping",
                HOUSEKEEPING_SECONDS,
                housekeeping,
                once_across_nodes=True,
                description="prune the ledger past retention, expired SCEP challenges, sign-in "
                "failures, check-in signatures and old re-enrollment refusals",
            ),
            *self.abm.tasks(),
            *self.vpp.tasks(),
            *self.push.tasks(),
            *self.groups.tasks(),
            *self.blueprints.tasks(),
        ]

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
