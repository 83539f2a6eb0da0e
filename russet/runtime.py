"""The assembled server: configuration, storage, the CA and the MDM service, opened once.

The CLI and the ASGI app both start from `Russet.open()`, which also runs migrations, so a
fresh data directory becomes a working server without any setup step.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from russet.abm import hooks as abm_hooks
from russet.apns import hooks as apns_hooks
from russet.apns.certificate import effective_push_topic
from russet.apns.pusher import Pusher
from russet.apple.connections import ConnectionRegistry, ServiceHooks
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Fingerprinter, Ledger
from russet.commands.inventory import inventory_update, summary_fields
from russet.config import Settings
from russet.enrollment.authority import Authority, ensure_authority
from russet.mdm.identity import IdentitySource, IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.proxy_cert import CertFormat, ProxyClientCertSource
from russet.mdm.service import LastSeen, MdmService
from russet.storage import Storage
from russet.storage.db import make_engine, migrate
from russet.storage.secretbox import SecretBox
from russet.storage.signatures import SeenSignatures
from russet.vpp import hooks as vpp_hooks

T = TypeVar("T")


def _inventory_hook(
    request_type: str, report: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    sections = inventory_update(request_type, report)
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

    @classmethod
    def open(cls, settings: Settings, *, migrate_db: bool = True) -> Russet:
        box = SecretBox.load(settings.data_dir, settings.master_key)
        engine = make_engine(settings.database_url)
        if migrate_db:
            migrate(engine)
        storage = Storage.open(
            engine, box, max_attempts=settings.max_delivery_attempts, inventory_hook=_inventory_hook
        )
        # The installed push certificate names the topic; RUSSET_PUSH_TOPIC is only the fallback.
        settings = replace(settings, push_topic=effective_push_topic(storage, settings.push_topic))
        authority = ensure_authority(storage.certificates)
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
                storage, settings.push_topic, last_seen, settings.user_authenticate, settings.reenroll_policy
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
