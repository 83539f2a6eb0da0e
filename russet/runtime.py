"""The assembled server, and the composition root: configuration, storage, the CA, and every
feature's service built with exactly what it needs, opened once.

The server (`russet serve`, each ASGI worker) starts from `Russet.open()`, which first sets the
database up under a lock shared by every process (migrations, the CA, the ledger's key), so a
fresh data directory becomes a working server without any setup step and two servers starting
at once make one CA. Other CLI commands open it with `migrate_db=False`: they only check that the
database is set up, and say `run russet migrate first` if not.

Surfaces (API, CLI, console) call the services kept here (`russet.devices`, `russet.push`,
`russet.enrollment`, `russet.ledger_admin`, ...); features never import this module.

It builds the services, wires the ports and gathers the periodic tasks; its parts are in
`russet/wiring/`: the Storage bundle it opens (`storage.py`), the adapters that answer one
feature's port with another's service (`adapters.py`), the sealed columns `russet secrets rotate`
re-seals (`sealed.py`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import platform
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, partial
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.abm.service import AbmService
from russet.abm.store import AbmSerials, AbmStore
from russet.access.audit import AuditEntry, AuditLog
from russet.access.service import AccessService
from russet.access.sso import OidcConfig, SingleSignOn
from russet.access.users import UserStore
from russet.apns import hooks as apns_hooks
from russet.apns.pusher import Pusher
from russet.apns.service import PushService
from russet.apns.topic import PushTopic
from russet.apple.admin import LedgerAdmin
from russet.apple.connection.admin import ConnectionConfig
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.apple.privacy import LedgerPrivacy
from russet.apple.receipts import ReceiptSeal
from russet.apps.service import AppCatalogue
from russet.apps.tokens import DownloadTokens
from russet.blueprints.service import BlueprintService
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.config import Settings
from russet.declarative.service import DeclarativeService
from russet.declarative.store import DeclarationStore
from russet.enrollment.account import CALLBACK_PATH as ACCOUNT_CALLBACK_PATH
from russet.enrollment.account import AccountEnrollment
from russet.enrollment.authority import ensure_authority
from russet.enrollment.minimum_os import MinimumOsSettings
from russet.enrollment.primary_account import PrimaryAccounts
from russet.enrollment.profile import ProfileIssuer
from russet.enrollment.service import EnrollmentService
from russet.enrollment.signin import callback_url as signin_callback_url
from russet.enrollment.tokens import EnrollmentRequestLog, EnrollmentTokenStore
from russet.escrow import hooks as escrow_hooks
from russet.escrow.service import EscrowService
from russet.escrow.store import EscrowStore
from russet.groups.service import GroupService
from russet.infra.tasks import Schedule
from russet.kernel.errors import RussetError
from russet.kernel.events import (
    BlueprintsChanged,
    CommandAnswered,
    CommandReported,
    ConnectionDisconnected,
    DeviceAwaitingConfiguration,
    DeviceCheckedIn,
    DeviceFactsChanged,
    EventBus,
    GroupMembersChanged,
    InventoryChanged,
    PushFailed,
)
from russet.kernel.tasks import PeriodicTask
from russet.library.service import ProfileLibrary
from russet.mdm.actions import DeviceActions
from russet.mdm.checkins import CheckinHistory
from russet.mdm.devices import DeviceService
from russet.mdm.facts import MdmDeviceFacts
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.lifecycle import EnrollmentLives
from russet.mdm.proxy_cert import CertFormat, ProxyClientCertSource
from russet.mdm.reenroll import ReenrollmentStore
from russet.mdm.reports import DeviceReports
from russet.mdm.service import LastSeen, MdmService
from russet.mdm.signatures import SeenSignatures
from russet.pki.authority import Authority
from russet.storage.db import Migration, first_start_lock, make_engine, migrate, require_migrated
from russet.storage.leases import TaskLeases
from russet.storage.login_failures import LoginLimiter
from russet.storage.rotation import finish_interrupted_rotation
from russet.storage.secretbox import SecretBox
from russet.vpp import hooks as vpp_hooks
from russet.vpp.service import VppService
from russet.vpp.store import VppStore
from russet.webhooks.service import WebhookService
from russet.webhooks.store import WebhookStore
from russet.wiring import adapters
from russet.wiring.storage import Storage

T = TypeVar("T")
log = logging.getLogger("russet")
HOUSEKEEPING_SECONDS = 6 * 3600
AUDIT_RETENTION_SECONDS = 24 * 3600
APP_LICENCES_SECONDS = 30.0  # the app catalogue's licence requests are moved on this often
EXPIRY_CHECK_SECONDS = 3600.0  # credentials expiring: webhooks are told within the hour of a threshold


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


# Settings keys of random keys made once (first start), sealed in the settings.
DOWNLOAD_KEY_SETTING = "apps.download_key"  # keys the hosted apps' download tokens
DOWNLOAD_TTL = timedelta(days=7)  # a device offline for days still fetches its queued install
DDM_DATA_KEY_SETTING = "declarative.data_key"  # keys each device's data URL token


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
    host = platform.node()

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
    accounts: AccountEnrollment  # account-driven enrollment: domains, discovery, sign-in, profiles
    webhooks: WebhookService  # events to the organisation's receivers, from a durable outbox
    checkins: CheckinHistory  # devices seen per 15 minutes, for the dashboard (issue #19 item 5)
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
        events = EventBus()
        connections = ConnectionRegistry(
            engine, SERVICE_HOOKS, seal=ReceiptSeal(authority), flush_ledger=ledger.flush, events=events
        )
        gateway = AppleGateway(ledger, connections, ca_file=settings.apple_ca_file, backoff=apple_backoff)
        pusher = Pusher(storage, storage.enrollments.open_push, gateway, settings.apns_url)
        signatures = SeenSignatures(engine)
        push = PushService(storage, pusher, push_topic, connections, known=storage.enrollments)
        ade_log = EnrollmentRequestLog(engine)  # profiles handed out: tokens, facts, how devices enrolled
        sign_ins = adapters.EnrollmentSignIns(ade_log)  # the ledger subject look-up and erasure
        devices = DeviceService(
            storage.enrollments,
            storage.queue,
            storage.bootstrap,
            ReenrollmentStore(engine),
            signatures,
            pushes=push,
            origins=ade_log,
        )
        issuer = ProfileIssuer(
            authority,
            storage.certificates,
            storage.challenges,
            settings.public_url,
            # Behind a proxy that forwards client certificates, devices need not sign requests.
            sign_message=settings.client_cert_header is None,
        )
        ddm_store = DeclarationStore(engine)
        reports = DeviceReports(engine)  # the MDM core's bulk read model (blueprints, Apps and Books, ABM)
        abm_serials = AbmSerials(engine, reports)  # which ABM connections list a serial; ADE blueprints
        groups = GroupService(
            engine,
            MdmDeviceFacts(
                engine,
                abm=abm_serials,
                ade=ade_log,
                declared=adapters.DeclaredStatus(ddm_store),
                origins=ade_log,
            ),
            events=events,
        )
        events.subscribe(DeviceFactsChanged, groups.on_facts_changed)
        library = ProfileLibrary(
            engine,
            box,
            adapters.AuthoritySigner(authority),
            adapters.EnrollmentFacts(storage.enrollments),
            devices,
        )
        vpp = VppService(
            VppStore(engine, box),
            gateway,
            connections,
            adapters.DevicesForAppsAndBooks(devices, reports),
            devices,
            engine=engine,
            config=ConnectionConfig.of(
                settings.vpp_url, settings.public_url, sync_minutes=settings.vpp_sync_minutes
            ),
            poll_seconds=settings.vpp_poll_seconds,
            people=adapters.SignedInPeopleForAppsAndBooks(ade_log),
        )
        apps = AppCatalogue(
            engine,
            settings.data_dir / "apps",
            DownloadTokens(storage.settings.random_key(DOWNLOAD_KEY_SETTING), DOWNLOAD_TTL),
            settings.public_url,
            adapters.VppForApps(vpp),
            adapters.DevicesForApps(devices),
        )
        library_profiles = adapters.LibraryProfiles(library)  # signed once per version for every device
        blueprints = BlueprintService(
            engine,
            adapters.GroupScopes(groups),
            library_profiles,
            devices,
            adapters.CoreReports(reports),
            max_in_flight=settings.reconcile_max_in_flight,
            ade=abm_serials,
            ade_release_after=timedelta(minutes=settings.ade_release_minutes),
            apps=adapters.CatalogueApps(apps),
            declarations=adapters.BlueprintDeclarationKinds(ddm_store),
            events=events,
        )
        library.add_users(adapters.BlueprintsUseProfiles(library, blueprints))
        apps.add_users(blueprints)
        events.subscribe(CommandAnswered, blueprints.on_command_answered)
        # A static group's members changed by an admin: the next blueprints pass is a full one.
        events.subscribe(GroupMembersChanged, lambda _changed: blueprints.mark_changed())
        # After the groups' handler (subscription order): smart groups are re-evaluated first.
        events.subscribe(DeviceFactsChanged, blueprints.on_facts_changed)
        events.subscribe(InventoryChanged, blueprints.on_inventory_changed)
        # A Mac whose person signed in during Setup Assistant: its primary account pre-filled,
        # queued before the blueprints' DeviceConfigured (subscription order).
        primary_accounts = PrimaryAccounts(ade_log, adapters.MacSetupCommands(devices))
        events.subscribe(DeviceAwaitingConfiguration, primary_accounts.on_awaiting_configuration)
        # Published after the TokenUpdate's DeviceFactsChanged: groups are up to date by then.
        events.subscribe(DeviceAwaitingConfiguration, blueprints.on_awaiting_configuration)
        sso = single_sign_on(settings)
        access = AccessService(
            storage.api_keys,
            LoginLimiter(engine),
            users=UserStore(engine),
            audit=AuditLog(engine),
            sso=sso,
            audit_retention_days=settings.audit_retention_days,
        )
        escrow = EscrowService(
            EscrowStore(engine, box),
            storage.certificates,
            adapters.EscrowDevices(devices, storage.enrollments),
            adapters.EscrowCommands(devices),
            adapters.AdminsMayViewSecrets(access),
            adapters.PushIdentity(storage),
            gateway,
            connections,
            activation_lock_url=settings.activation_lock_url,
            filevault_location=f"Russet ({settings.public_url})",
        )
        events.subscribe(CommandAnswered, escrow.on_command_answered)
        declarations = DeclarativeService(
            ddm_store,
            adapters.DeclarationGroups(groups),
            adapters.DeclarationDevices(devices, EnrollmentLives(engine)),
            devices,
            public_url=settings.public_url,
            data_key=storage.settings.random_key(DDM_DATA_KEY_SETTING),
            events=events,
            library=library_profiles,
            blueprints=blueprints,  # the declarations blueprints list, in their scopes
        )
        library.add_users(adapters.DeclarationsUseProfiles(library, declarations))
        events.subscribe(BlueprintsChanged, declarations.on_blueprints_changed)
        events.subscribe(GroupMembersChanged, declarations.on_group_members_changed)
        # After groups (membership first) and blueprints; an enrolled-again device is told again.
        events.subscribe(DeviceFactsChanged, declarations.on_facts_changed)
        webhooks = WebhookService(WebhookStore(engine, box))
        events.subscribe(DeviceCheckedIn, webhooks.on_check_in)
        events.subscribe(CommandReported, webhooks.on_report)
        events.subscribe(InventoryChanged, webhooks.on_inventory)
        events.subscribe(PushFailed, webhooks.on_push_failed)
        events.subscribe(ConnectionDisconnected, webhooks.on_disconnected)
        pusher.observe(adapters.PushFailures(events))
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
                EnrollmentTokenStore(engine),
                ade_log,
                issuer,
                push_topic,
                minimum_os=MinimumOsSettings(storage.settings, engine),
                blueprints=adapters.AbmBlueprintNames(blueprints),
                people=adapters.EnrollmentPeople(
                    access,
                    None
                    if sso is None
                    else adapters.OidcPersonSignIn(sso, signin_callback_url(settings.public_url)),
                ),
            ),
            ledger_admin=LedgerAdmin(ledger, connections, devices, settings.ledger_retention_days),
            ledger_privacy=LedgerPrivacy(
                engine,
                ledger,
                [
                    adapters.MdmSubjects(devices),
                    adapters.AppsAndBooksPeople(vpp.store),
                    adapters.AbmSubjects(abm_serials),
                    sign_ins,
                ],
                [sign_ins],
            ),
            events=events,
            groups=groups,
            library=library,
            blueprints=blueprints,
            escrow=escrow,
            declarations=declarations,
            access=access,
            accounts=AccountEnrollment(
                engine,
                box,
                issuer,
                ade_log,
                push_topic,
                # The same provider as the console's sign-on, with account-driven enrollment's callback.
                sign_in=None
                if sso is None
                else adapters.OidcPersonSignIn(sso, f"{settings.public_url}{ACCOUNT_CALLBACK_PATH}"),
            ),
            webhooks=webhooks,
            checkins=CheckinHistory(engine),
            migration=migration,
            abm=AbmService(
                AbmStore(engine, box),
                gateway,
                connections,
                ledger,
                ConnectionConfig.of(
                    settings.abm_url, settings.public_url, sync_minutes=settings.abm_sync_minutes
                ),
                enrolled=reports,
                blueprints=adapters.AbmBlueprintNames(blueprints),
            ),
            vpp=vpp,
            apps=apps,
        )

    def housekeeping(self) -> dict[str, int]:
        """Periodic deletions, each its owner's: ledger rows past retention, SCEP challenges that
        expired unused, console sign-in failure counts whose window has ended, check-in signatures
        whose signing time left the replay window, refused re-enrollments after 90 days,
        account-driven enrollment's bearer tokens (and the person in them) a day after use or expiry.

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
            "account_tokens": self.accounts.prune_tokens(),
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
            *self.checkins.tasks(),
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
            PeriodicTask(
                "apple.purge_sweep",
                ConnectionRegistry.SWEEP_SECONDS,
                self.connections.sweep_after_purge,
                once_across_nodes=True,
                first_delay=ConnectionRegistry.SWEEP_SECONDS,
                description="delete ledger rows other processes wrote for a connection after it "
                "was purged (buffered or in flight at the time)",
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
            *self.webhooks.tasks(),
            PeriodicTask(  # the credentials of several features: composed here
                "webhooks.expiring",
                EXPIRY_CHECK_SECONDS,
                self.warn_expiring,
                once_across_nodes=True,
                first_delay=120.0,
                description="tell webhooks of a push certificate or Apple token 30, 7 or 1 days "
                "before it expires, and once expired",
            ),
        ]
        # Cluster-wide work acts for the organisation: each run that did something, or failed, is
        # in the audit log (per-process chores such as flushing last-seen times are not).
        return [audited_task(t, self.access) if t.once_across_nodes else t for t in tasks]

    def credential_expiries(self) -> list[tuple[str, str, datetime | None]]:
        """(service, connection, expiry) of every Apple credential: the push certificate ("apns",
        "default"; None when none is installed), then each ABM/ASM and Apps and Books connection
        holding a token (None: Apple did not date it). Cheap reads, shared by the expiry webhooks
        and the console's dashboard so both see the same list."""
        credentials: list[tuple[str, str, datetime | None]] = [
            ("apns", "default", self.push.certificate_expiry())
        ]
        credentials += [("abm", name, when) for name, when in self.abm.token_expiries().items()]
        credentials += [("vpp", name, when) for name, when in self.vpp.token_expiries().items()]
        return credentials

    def warn_expiring(self) -> int:
        """The `webhooks.expiring` task: the push certificate's and each Apple token's expiry,
        given to the webhooks (which tell each threshold once)."""
        return self.webhooks.warn_expiring(self.credential_expiries())

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
