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
from collections.abc import Awaitable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.abm.service import AbmService
from russet.abm.store import AbmStore
from russet.apns import hooks as apns_hooks
from russet.apns.pusher import Pusher
from russet.apns.topic import PushTopic
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.config import Settings
from russet.enrollment.authority import Authority, ensure_authority
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.proxy_cert import CertFormat, ProxyClientCertSource
from russet.mdm.service import LastSeen, MdmService
from russet.mdm.signatures import SeenSignatures
from russet.storage.bundle import Storage
from russet.storage.db import Migration, first_start_lock, make_engine, migrate, require_migrated
from russet.storage.rotation import finish_interrupted_rotation
from russet.storage.secretbox import SecretBox
from russet.vpp import hooks as vpp_hooks
from russet.vpp.ports import DeviceRef
from russet.vpp.service import VppService
from russet.vpp.store import VppStore

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
    abm: AbmService  # Apple Business/School Manager
    vpp: VppService  # Apps and Books
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
        mdm = _MdmForAppsAndBooks()
        russet = cls(
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
            migration=migration,
            abm=AbmService(
                AbmStore(engine, box),
                gateway,
                connections,
                ledger,
                abm_url=settings.abm_url,
                public_url=settings.public_url,
                sync_minutes=settings.abm_sync_minutes,
            ),
            vpp=VppService(
                VppStore(engine, box),
                gateway,
                connections,
                mdm,
                mdm,
                engine=engine,
                vpp_url=settings.vpp_url,
                public_url=settings.public_url,
                poll_seconds=settings.vpp_poll_seconds,
                sync_minutes=settings.vpp_sync_minutes,
            ),
        )
        mdm.russet = russet
        return russet

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


class _MdmForAppsAndBooks:
    """TEMPORARY (issue #12): Apps and Books' ports (`russet.vpp.ports`) over today's
    `russet.operations` and the MDM core's stores, until the core's DeviceService (h/core)
    implements them and this class goes."""

    russet: Russet  # set once the Russet holding the Apps and Books service is built

    def send_command(self, targets: list[str], command: dict[str, Any], *, created_by: str) -> dict[str, Any]:
        from russet import operations  # operations imports this module: import it when first used

        return operations.send_command(self.russet, targets, command, created_by)

    def command_status(self, command_uuid: str) -> dict[str, Any] | None:
        return self.russet.storage.queue.by_uuid(command_uuid)

    def find_device(self, device: str) -> DeviceRef | None:
        enrollments = self.russet.storage.enrollments
        rows = [enrollments.get(i) for i in enrollments.aliases(device.strip())]
        found = sorted(
            (r for r in rows if r is not None and r["channel"] == "device"),
            key=lambda r: (bool(r["enabled"]), r["last_seen_at"] is not None, r["last_seen_at"] or 0),
            reverse=True,
        )
        if not found:
            return None
        return DeviceRef(found[0]["id"], found[0]["serial_number"], bool(found[0]["enabled"]))
