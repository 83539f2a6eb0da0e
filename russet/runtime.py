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
from collections.abc import Awaitable, Mapping
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
from russet.commands.inventory import DEFAULT_MAX_SECTION_BYTES, inventory_update, summary_fields
from russet.config import Settings
from russet.enrollment.authority import Authority, ensure_authority
from russet.enrollment.profile import signed_profile
from russet.library.service import ProfileLibrary
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


class _OperationsSender:
    """The library's CommandSender: `operations.send_command` (validation, queue, push)."""

    def __init__(self, russet: Russet) -> None:
        self._russet = russet

    def send_command(
        self, targets: list[str], command: dict[str, Any], *, created_by: str | None
    ) -> dict[str, Any]:
        from russet import operations  # operations imports this module

        return operations.send_command(self._russet, targets, command, created_by)


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
    migration: Migration | None = field(default=None)  # what opening with migrate_db did
    library: ProfileLibrary = field(init=False)  # the profile library (needs the Russet to send)

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
        )
        russet.library = ProfileLibrary(
            engine,
            box,
            _AuthoritySigner(authority),
            _EnrollmentFacts(storage),
            _OperationsSender(russet),
        )
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
