"""The MDM protocol service: check-in messages and command reports, independent of HTTP.

Each method takes the verified identity and the parsed message and returns the response body
(None for an empty 200) or raises a DeviceRequestError carrying the status Apple expects.
"""

from __future__ import annotations

import logging
import plistlib
import threading
from datetime import datetime
from typing import Any

from russet.mdm.channels import resolve_channel
from russet.mdm.errors import BadRequest, Forbidden, UnknownEnrollment
from russet.mdm.identity import Identity
from russet.mdm.messages import check_in_message, error_summary, report_message
from russet.storage import Storage
from russet.storage.db import utcnow
from russet.storage.enrollments import DeviceFacts, EnrollmentConflict, NotEnrolled
from russet.storage.queue import Report

log = logging.getLogger("russet.mdm")

# Check-in messages this server does not take (yet), with the answer Apple's protocol gives them.
_DECLINED: dict[str, tuple[int, str]] = {
    # 410 tells the Mac not to create a managed user channel for this login (§a.4.4).
    "UserAuthenticate": (410, "this server does not manage macOS network user channels"),
    "SetBootstrapToken": (
        400,
        "bootstrap token escrow is not offered (no com.apple.mdm.bootstraptoken capability)",
    ),
    "GetBootstrapToken": (
        400,
        "bootstrap token escrow is not offered (no com.apple.mdm.bootstraptoken capability)",
    ),
    "GetToken": (400, "no token service is offered (no com.apple.mdm.token capability)"),
    "DeclarativeManagement": (400, "declarative device management is not enabled on this server"),
}


class DeclinedMessage(BadRequest):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class LastSeen:
    """Collects last-seen times in memory; a background flusher writes them in batches."""

    def __init__(self) -> None:
        self._pending: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def mark(self, enrollment_id: str) -> None:
        now = utcnow()
        with self._lock:
            self._pending[enrollment_id] = now

    def drain(self) -> dict[str, datetime]:
        with self._lock:
            pending, self._pending = self._pending, {}
        return pending


class MdmService:
    def __init__(self, storage: Storage, push_topic: str | None, last_seen: LastSeen) -> None:
        self._storage = storage
        self._topic = push_topic
        self._last_seen = last_seen

    # -- check-in (CheckInURL) ------------------------------------------------------------------

    def check_in(self, identity: Identity, msg: dict[str, Any]) -> bytes | None:
        message_type = check_in_message(msg)
        if message_type in _DECLINED:
            raise DeclinedMessage(*_DECLINED[message_type])
        channel = resolve_channel(msg)
        try:
            if message_type == "Authenticate":
                if channel.is_user:
                    raise BadRequest("Authenticate is a device-channel message")
                self._check_topic(msg["Topic"])
                facts = DeviceFacts(
                    serial_number=msg.get("SerialNumber"),
                    model=msg.get("Model"),
                    model_name=msg.get("ModelName"),
                    product_name=msg.get("ProductName"),
                    device_name=msg.get("DeviceName"),
                    os_version=msg.get("OSVersion"),
                    build_version=msg.get("BuildVersion"),
                )
                again = self._storage.enrollments.authenticate(
                    channel, identity.fingerprint, msg["Topic"], facts
                )
                log.info(
                    "Authenticate from %s (%s)", channel.enrollment_id, "re-enrollment" if again else "new"
                )
                return None
            if message_type == "TokenUpdate":
                self._check_topic(msg["Topic"])
                self._storage.enrollments.token_update(
                    channel,
                    identity.fingerprint,
                    msg["Topic"],
                    msg["Token"],
                    msg["PushMagic"],
                    msg.get("UnlockToken"),
                    bool(msg.get("AwaitingConfiguration", False)),
                )
                log.info("TokenUpdate from %s", channel.enrollment_id)
                return None
            if message_type == "CheckOut":
                self._storage.enrollments.check_out(channel, identity.fingerprint)
                log.info("CheckOut from %s", channel.enrollment_id)
                return None
        except EnrollmentConflict as exc:
            raise Forbidden(str(exc)) from None
        except NotEnrolled as exc:
            raise UnknownEnrollment(str(exc)) from None
        if message_type == "ReturnToService":
            # Return to Service needs configured Wi-Fi/MDM profiles; say plainly it is off.
            return plistlib.dumps({"ReturnToService": {"Enabled": False}})
        raise BadRequest(f"unknown MessageType {message_type!r}")

    def _check_topic(self, topic: str) -> None:
        if self._topic is not None and topic != self._topic:
            raise Forbidden(f"Topic {topic!r} is not this server's push topic")

    # -- command reports (ServerURL) -----------------------------------------------------------

    def report(self, identity: Identity, msg: dict[str, Any], raw: bytes) -> bytes | None:
        status, command_uuid = report_message(msg)
        channel = resolve_channel(msg)
        report = Report(
            status, command_uuid, raw, msg, error_summary(msg) if status != "Acknowledged" else None
        )
        result = self._storage.queue.exchange(channel.enrollment_id, identity.fingerprint, report)
        if not result.known:
            raise UnknownEnrollment(f"unknown enrollment {channel.enrollment_id}")
        if result.identity_fp != identity.fingerprint:
            # Either someone else's certificate, or this device's renewed one (then rebind, once).
            if not self._storage.enrollments.adopt_renewal(channel.device_id, identity.fingerprint):
                raise Forbidden("the identity certificate is not the one bound to this enrollment")
            result = self._storage.queue.exchange(channel.enrollment_id, identity.fingerprint, report)
        self._last_seen.mark(channel.enrollment_id)
        if command_uuid and status != "Idle" and not result.stored:
            log.info(
                "report %s for command %s of %s changed nothing (duplicate or unknown)",
                status,
                command_uuid,
                channel.enrollment_id,
            )
        return result.body
