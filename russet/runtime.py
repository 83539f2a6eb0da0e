"""The assembled server: configuration, storage, the CA and the MDM service, opened once.

The server (`russet serve`, each ASGI worker) starts from `Russet.open()`, which first sets the
database up under a lock shared by every process (migrations, the CA, the ledger's key), so a
fresh data directory becomes a working server without any setup step and two servers starting
at once make one CA. Other CLI commands open it with `migrate_db=False`: they only check that the
database is set up, and say `run russet migrate first` if not.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.apns import hooks as apns_hooks
from russet.apns.pusher import Pusher
from russet.apns.topic import PushTopic
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.blueprints.ports import DeviceReport, ProfileVersion
from russet.blueprints.service import BlueprintService
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.config import Settings
from russet.enrollment.authority import Authority, ensure_authority
from russet.kernel.errors import NotFound, Unavailable
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.proxy_cert import CertFormat, ProxyClientCertSource
from russet.mdm.service import LastSeen, MdmService
from russet.mdm.signatures import SeenSignatures
from russet.storage.bundle import Storage
from russet.storage.db import Migration, first_start_lock, make_engine, migrate, require_migrated
from russet.storage.rotation import finish_interrupted_rotation
from russet.storage.secretbox import SecretBox
from russet.vpp import hooks as vpp_hooks

T = TypeVar("T")
log = logging.getLogger("russet")


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


# -- TEMPORARY port adapters for the blueprints feature (issue #13) ------------------------------
# The groups service (h/groups), the profile library (h/library) and the device service with its
# reports (h/core) are on other branches. Until they are merged these adapters stand for services
# that hold nothing: every group and profile is unknown (so a blueprint naming one is refused with
# a 400 that says the feature is not installed, and nothing is stored), no device has reported
# anything, and queueing a command is Unavailable (unreachable: no blueprint can have a scope).
# They answer as empty services rather than 503 so the admin API keeps answering every request
# with a 4xx (tests/test_api_fuzz.py). At merge the lead passes GroupService, ProfileLibrary and
# DeviceService (or thin adapters over them) to BlueprintService, and deletes this block.


class _GroupsNotInstalled:
    """TEMPORARY (until h/groups): the Scopes port, with no groups."""

    def devices_in(self, include: Sequence[int], exclude: Sequence[int]) -> set[str]:
        if include or exclude:
            raise NotFound(f"no group {[*include, *exclude][0]}: groups are not installed yet")
        return set()


class _LibraryNotInstalled:
    """TEMPORARY (until h/library): the Profiles port, with no profiles."""

    def latest(self, ref: str) -> ProfileVersion:
        raise NotFound("the profile library is not installed yet")

    def version(self, ref: str, version: int) -> ProfileVersion:
        raise NotFound("the profile library is not installed yet")

    def render(self, ref: str, version: int, device_id: str) -> bytes:
        raise NotFound("the profile library is not installed yet")


class _DevicesNotInstalled:
    """TEMPORARY (until h/core): the CommandSender and ReportedState ports."""

    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        raise Unavailable("device service not installed: the reconciler cannot queue commands yet")

    def reported(self, device_ids: Collection[str]) -> Mapping[str, DeviceReport]:
        return {}  # no ProfileList or inventory is read yet


def set_up(storage: Storage, box: SecretBox) -> tuple[Migration, Authority]:
    """First-start work, once for all processes starting together: migrations, the CA and the
    profile signer, the ledger's fingerprint key. Idempotent; cheap when already done."""
    with first_start_lock(storage.engine):
        done = migrate(storage.engine, box)
        authority = ensure_authority(storage.certificates)
        Fingerprinter.load(storage.settings)
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
    blueprints: BlueprintService
    migration: Migration | None = field(default=None)  # what opening with migrate_db did

    @classmethod
    def open(cls, settings: Settings, *, migrate_db: bool = True) -> Russet:
        """Open storage and everything on it. `migrate_db`: set the database up first (under the
        first-start lock); without it an un-migrated database raises NotMigrated."""
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
        gateway = AppleGateway(ledger, connections, ca_file=settings.apple_ca_file)
        return cls(
            settings=settings,
            storage=storage,
            authority=authority,
            mdm=MdmService(
                storage,
                push_topic,
                last_seen,
                settings.user_authenticate,
                settings.max_result_bytes,
                settings.reenroll_policy,
            ),
            identities=IdentityVerifier(
                authority.ca_certificate,
                identity_sources(settings),
                ReplayGuard(SeenSignatures(engine), settings.signing_window_seconds),
            ),
            last_seen=last_seen,
            ledger=ledger,
            connections=connections,
            gateway=gateway,
            pusher=Pusher(storage, gateway, settings.apns_url),
            push_topic=push_topic,
            blueprints=BlueprintService(
                engine,
                _GroupsNotInstalled(),
                _LibraryNotInstalled(),
                _DevicesNotInstalled(),
                _DevicesNotInstalled(),
                max_in_flight=settings.reconcile_max_in_flight,
            ),
            migration=migration,
        )

    def flush_last_seen(self) -> None:
        self.storage.enrollments.touch(self.last_seen.drain())

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
