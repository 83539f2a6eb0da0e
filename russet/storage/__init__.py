"""Storage, split by concern behind small stores that share one engine."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from russet.commands.secrets import is_secret
from russet.scep.challenges import ChallengeStore
from russet.storage.apikeys import ApiKeyStore
from russet.storage.bootstrap import BootstrapTokenStore
from russet.storage.certificates import CertificateStore
from russet.storage.enrollments import EnrollmentStore
from russet.storage.queue import CommandQueue, InventoryHook
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
            enrollments=EnrollmentStore(engine, box),
            queue=CommandQueue(engine, max_attempts, inventory_hook, box=box, is_secret=is_secret),
            api_keys=ApiKeyStore(engine),
            bootstrap=BootstrapTokenStore(engine, box),
        )
