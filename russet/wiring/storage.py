"""`Storage`: the stores the composition root opens over one engine and hands around.

It bundles the infrastructure stores of `russet.storage` (settings, certificates, API keys) with
stores that features own (the MDM core's enrollments, queue and bootstrap tokens, SCEP's
challenges), so it belongs to the composition layer: services are given the stores they use from
it (APNs takes it as its `PushStores`: engine, settings, certificates), never import it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from russet.commands.secrets import is_secret
from russet.enrollment.tokens import EnrollmentRequestLog
from russet.mdm.bootstrap import BootstrapTokenStore
from russet.mdm.enrollments import EnrollmentStore
from russet.mdm.queue import CommandQueue, InventoryHook
from russet.scep.challenges import ChallengeStore
from russet.storage.apikeys import ApiKeyStore
from russet.storage.certificates import CertificateStore
from russet.storage.secretbox import SecretBox
from russet.storage.settings import SettingsStore


@dataclass
class Storage:
    engine: Engine
    settings: SettingsStore
    certificates: CertificateStore
    challenges: ChallengeStore
    enrollments: EnrollmentStore
    queue: CommandQueue
    api_keys: ApiKeyStore
    bootstrap: BootstrapTokenStore

    @classmethod
    def open(
        cls, engine: Engine, box: SecretBox, *, max_attempts: int, inventory_hook: InventoryHook | None
    ) -> Storage:
        return cls(
            engine=engine,
            settings=SettingsStore(engine, box),
            certificates=CertificateStore(engine, box),
            challenges=ChallengeStore(engine),
            # re-enrollment asks enrollment's log which identities were issued for a device's ADE
            enrollments=EnrollmentStore(engine, box, EnrollmentRequestLog(engine)),
            queue=CommandQueue(engine, max_attempts, inventory_hook, box=box, is_secret=is_secret),
            api_keys=ApiKeyStore(engine),
            bootstrap=BootstrapTokenStore(engine, box),
        )
