"""What APNs needs from others, as Protocols the composition root wires: the MDM core's known
devices, and the infrastructure stores its certificate, pending key and settings live in."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy import Engine

from russet.storage.certificates import CertificateStore
from russet.storage.settings import SettingsStore


class PushStores(Protocol):
    """The stores APNs keeps its state in: the engine (push state and requests), the settings
    (the pending key, the stop flag) and the certificates (the push identity)."""

    @property
    def engine(self) -> Engine: ...

    @property
    def settings(self) -> SettingsStore: ...

    @property
    def certificates(self) -> CertificateStore: ...


class KnownDevices(Protocol):
    """Which of these enrollment ids exist (an on-demand push names only known enrollments)."""

    def existing(self, ids: list[str]) -> set[str]: ...
