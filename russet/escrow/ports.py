"""What escrow needs from other features, declared here and implemented in `russet.runtime`.

`SecretViewer` is the one place that decides who may be shown an escrowed secret: roles (issue
#19) replace today's rule (every admin API key, and the CLI's local operator) by implementing it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes


@dataclass(frozen=True)
class EscrowDevice:
    """A device channel as escrow needs it (from the MDM core's enrollment and inventory)."""

    device_id: str
    serial_number: str | None
    product_type: str | None  # the model identifier Apple's services take: iPhone15,2, Mac14,2
    platform: str | None  # iOS | macOS | tvOS | visionOS | watchOS, when known
    apple_silicon: bool | None  # DeviceInformation's IsAppleSilicon (macOS), when known
    supervised: bool | None
    # Cellular devices' identifiers (DeviceInformation IMEI, MEID), which Apple's Activation Lock
    # service takes with the serial number; None for a device without them (or not known yet).
    imei: str | None = None
    meid: str | None = None


class Devices(Protocol):
    def find(self, device: str) -> EscrowDevice | None:
        """The device channel a UDID or serial number names, or None."""
        ...

    def unlock_token(self, device_id: str) -> bytes | None:
        """The UnlockToken the device escrowed in TokenUpdate, opened; None when it sent none."""
        ...


class Commands(Protocol):
    def send(self, device_id: str, command: Mapping[str, Any], created_by: str) -> str:
        """Queue one command for one device (validated, refused for the wrong platform or
        supervision); its CommandUUID. Secret keys are sealed at rest by the queue."""
        ...


class SecretViewer(Protocol):
    def may_view(self, viewer: str, device_id: str, kind: str) -> bool:
        """Whether `viewer` may be shown `kind` of `device_id`."""
        ...


class PushIdentity(Protocol):
    def identity(self) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        """The installed APNs certificate and key (Apple's Activation Lock service authenticates
        the MDM by it), or None when none is installed."""
        ...
