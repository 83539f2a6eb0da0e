"""What a receiver is sent: Russet's own JSON, or the shape NanoMDM's and MicroMDM's webhook users
already consume (`topic` mdm.Authenticate / mdm.TokenUpdate / mdm.CheckOut / mdm.Connect,
`event_id`, `created_at`, and a `checkin_event` or `acknowledge_event` with `udid`,
`enrollment_id`, `url_params` and the device's `raw_payload`, base64 as Go encodes []byte).

Russet's own shape carries no raw payload: only what the event says (ids, status, the command's
type, an Error's chain), never the push token, PushMagic or UnlockToken of a TokenUpdate.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from russet.kernel.events import (
    CommandReported,
    ConnectionDisconnected,
    DeviceCheckedIn,
    InventoryChanged,
    PushFailed,
)

CHECK_IN_TYPES = {
    "Authenticate": "device.authenticated",
    "TokenUpdate": "device.token_updated",
    "CheckOut": "device.checked_out",
}
REPORT_TYPES = {
    "Acknowledged": "command.acknowledged",
    "Error": "command.error",
    "CommandFormatError": "command.format_error",
    "NotNow": "command.not_now",
}
INVENTORY_CHANGED = "inventory.changed"
PUSH_FAILED = "push.failed"
APPLE_DISCONNECTED = "apple.disconnected"
APPLE_PURGED = "apple.purged"
APPLE_EXPIRING = "apple.expiring"
EVENT_TYPES: tuple[str, ...] = (
    *CHECK_IN_TYPES.values(),
    *REPORT_TYPES.values(),
    INVENTORY_CHANGED,
    PUSH_FAILED,
    APPLE_DISCONNECTED,
    APPLE_PURGED,
    APPLE_EXPIRING,
)
# Russet's own events, which NanoMDM's webhook has no shape for.
NOT_IN_NANOMDM = frozenset({INVENTORY_CHANGED, PUSH_FAILED, APPLE_DISCONNECTED, APPLE_PURGED, APPLE_EXPIRING})
# Told when a credential has this many days left or fewer, once per threshold (and expiry date).
EXPIRY_THRESHOLDS = (30, 7, 1, 0)
_EXPIRY_IDS = uuid.UUID("5b0a3a1e-7d51-4c1e-9a57-2f1f3c7e0e13")  # uuid5 namespace of expiry events
FORMATS = ("russet", "nanomdm")

# Facts of an Authenticate worth telling (no secrets among them).
_AUTHENTICATE_FACTS = ("SerialNumber", "Model", "ModelName", "ProductName", "OSVersion", "BuildVersion")


@dataclass(frozen=True)
class Outgoing:
    """One event, in both shapes: `nanomdm` is None when NanoMDM has no such event."""

    event_id: str
    event_type: str
    device_id: str
    russet: dict[str, Any]
    nanomdm: dict[str, Any] | None

    def body(self, fmt: str) -> dict[str, Any] | None:
        return self.russet if fmt == "russet" else self.nanomdm


def _stamp(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def _raw(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _russet(
    event_id: str, event_type: str, at: datetime, device_id: str, enrollment_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": event_type,
        "created_at": _stamp(at),
        "device_id": device_id,
        "enrollment_id": enrollment_id,
        "data": data,
    }


def from_check_in(event: DeviceCheckedIn, at: datetime) -> Outgoing:
    event_id = str(uuid.uuid4())
    event_type = CHECK_IN_TYPES[event.message_type]
    data: dict[str, Any] = {}
    if event.message_type == "Authenticate":
        data = {k: event.message[k] for k in _AUTHENTICATE_FACTS if isinstance(event.message.get(k), str)}
    elif event.message_type == "TokenUpdate":
        data = {"awaiting_configuration": event.message.get("AwaitingConfiguration") is True}
    checkin: dict[str, Any] = {
        "udid": event.device_id,
        "enrollment_id": event.enrollment_id,
        "url_params": None,
        "raw_payload": _raw(event.raw),
    }
    nano = {
        "topic": f"mdm.{event.message_type}",
        "event_id": event_id,
        "created_at": _stamp(at),
        "checkin_event": checkin,
    }
    return Outgoing(
        event_id,
        event_type,
        event.device_id,
        _russet(event_id, event_type, at, event.device_id, event.enrollment_id, data),
        nano,
    )


def from_report(event: CommandReported, at: datetime) -> Outgoing:
    event_id = str(uuid.uuid4())
    event_type = REPORT_TYPES[event.status]
    data: dict[str, Any] = {
        "command_uuid": event.command_uuid,
        "request_type": event.request_type,
        "status": event.status,
    }
    chain = event.message.get("ErrorChain")
    if event.status == "Error" and isinstance(chain, list):
        data["error_chain"] = [_plain(e) for e in chain if isinstance(e, Mapping)]
    nano = {
        "topic": "mdm.Connect",
        "event_id": event_id,
        "created_at": _stamp(at),
        "acknowledge_event": {
            "udid": event.device_id,
            "enrollment_id": event.enrollment_id,
            "status": event.status,
            "command_uuid": event.command_uuid,
            "raw_payload": _raw(event.raw),
        },
    }
    return Outgoing(
        event_id,
        event_type,
        event.device_id,
        _russet(event_id, event_type, at, event.device_id, event.enrollment_id, data),
        nano,
    )


def from_inventory(event: InventoryChanged, at: datetime) -> Outgoing:
    event_id = str(uuid.uuid4())
    data = {"request_type": event.request_type}
    body = _russet(event_id, INVENTORY_CHANGED, at, event.device_id, event.enrollment_id, data)
    return Outgoing(event_id, INVENTORY_CHANGED, event.device_id, body, None)


def from_push_failure(event: PushFailed, at: datetime) -> Outgoing:
    event_id = str(uuid.uuid4())
    data = {"outcome": event.outcome, "reason": event.reason, "apns_status": event.status}
    body = _russet(event_id, PUSH_FAILED, at, event.device_id, event.enrollment_id, data)
    return Outgoing(event_id, PUSH_FAILED, event.device_id, body, None)


def from_disconnection(event: ConnectionDisconnected, at: datetime) -> Outgoing:
    """A disconnection or purge, with its receipt (counts and hashes, no data); ordered per
    connection (`apple:<service>/<name>`), not per device."""
    event_id = str(uuid.uuid4())
    event_type = APPLE_PURGED if event.purged else APPLE_DISCONNECTED
    body = {
        "id": event_id,
        "type": event_type,
        "created_at": _stamp(at),
        "data": {"service": event.service, "connection": event.connection, "receipt": dict(event.receipt)},
    }
    return Outgoing(event_id, event_type, f"apple:{event.service}/{event.connection}", body, None)


def expiring(service: str, connection: str, expires_at: datetime, at: datetime) -> Outgoing | None:
    """The warning for a push certificate or an Apple token past a threshold, or None. Its id is
    derived from the credential, its expiry and the threshold: asked again, it is the same event
    (the outbox keeps one per endpoint), and a renewed credential warns afresh."""
    days_left = (expires_at - at).total_seconds() / 86400
    passed = [t for t in EXPIRY_THRESHOLDS if days_left <= t]
    if not passed:
        return None
    threshold = min(passed)
    key = f"{service}/{connection}/{expires_at.isoformat()}/{threshold}"
    event_id = str(uuid.uuid5(_EXPIRY_IDS, key))
    body = {
        "id": event_id,
        "type": APPLE_EXPIRING,
        "created_at": _stamp(at),
        "data": {
            "service": service,
            "connection": connection,
            "expires_at": _stamp(expires_at),
            "days_left": round(days_left, 2),
            "threshold_days": threshold,
        },
    }
    return Outgoing(event_id, APPLE_EXPIRING, f"apple:{service}/{connection}", body, None)


def _plain(entry: Mapping[str, Any]) -> dict[str, Any]:
    """An ErrorChain entry with JSON's types only (its values are strings and integers)."""
    return {str(k): v for k, v in entry.items() if isinstance(v, str | int | bool)}
