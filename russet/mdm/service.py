"""The MDM protocol service: check-in messages and command reports, independent of HTTP.

Each method takes the verified identity and the parsed message and returns the response body
(None for an empty 200) or raises a DeviceRequestError carrying the status Apple expects.
"""

from __future__ import annotations

import logging
import plistlib
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from russet.kernel.errors import Invalid, TooLarge
from russet.kernel.errors import NotFound as NoSuchThing
from russet.kernel.events import (
    CommandAnswered,
    CommandReported,
    DeviceAwaitingConfiguration,
    DeviceCheckedIn,
    DeviceFactsChanged,
    EventBus,
    InventoryChanged,
)
from russet.kernel.tasks import PeriodicTask
from russet.mdm.bootstrap import BootstrapTokenStore
from russet.mdm.channels import Channel, resolve_channel
from russet.mdm.declarative import declarative_reply, json_body
from russet.mdm.enrollments import (
    DeviceFacts,
    EnrollmentConflict,
    EnrollmentStore,
    Forgotten,
    NotEnrolled,
    TakeoverRefused,
)
from russet.mdm.errors import (
    BadRequest,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnknownEnrollment,
    UnrecognizedDevice,
)
from russet.mdm.facts import FACT_REQUEST_TYPES
from russet.mdm.identity import Identity
from russet.mdm.messages import DEFAULT_MAX_RESULT_BYTES, check_in_message, report_message, stored_report
from russet.mdm.ports import DeclarativeAnswers
from russet.mdm.queue import CommandQueue
from russet.mdm.user_auth import user_authenticate_reply
from russet.storage.db import utcnow

log = logging.getLogger("russet.mdm")

# A bootstrap token is a few hundred bytes; refuse what cannot be one rather than seal it.
MAX_BOOTSTRAP_TOKEN_BYTES = 64 * 1024
LAST_SEEN_FLUSH_SECONDS = 1.0


# Report statuses that answer a command (NotNow only postpones it; Idle answers nothing).
ANSWERS = frozenset({"Acknowledged", "Error", "CommandFormatError"})


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
    def __init__(
        self,
        enrollments: EnrollmentStore,
        queue: CommandQueue,
        bootstrap: BootstrapTokenStore,
        push_topic: Callable[[], str | None],
        last_seen: LastSeen,
        user_authenticate: str = "decline",
        max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES,
        reenroll_policy: str = "strict",
        events: EventBus | None = None,
        declarative: DeclarativeAnswers | None = None,
    ) -> None:
        self._enrollments = enrollments
        self._queue = queue
        self._bootstrap = bootstrap
        # Declarations (DDM) on the device channel; without it, the answers of an empty set.
        self._declarative = declarative
        self._topic = push_topic  # looked up per message (cached): a new push certificate needs no restart
        self._last_seen = last_seen
        self._user_authenticate = user_authenticate
        self._max_result_bytes = max_result_bytes
        self._reenroll_policy = reenroll_policy
        # DeviceFactsChanged after enrollment and fact (DeviceInformation) changes, InventoryChanged
        # after every inventory answer, CommandAnswered for answers.
        self._events = events or EventBus()
        self._handlers: dict[str, Callable[[Identity, Channel, dict[str, Any]], bytes | None]] = {
            "Authenticate": self._authenticate,
            "TokenUpdate": self._token_update,
            "CheckOut": self._check_out,
            "UserAuthenticate": self._user_authenticate_message,
            "SetBootstrapToken": self._set_bootstrap_token,
            "GetBootstrapToken": self._get_bootstrap_token,
            "GetToken": self._get_token,
            "DeclarativeManagement": self._declarative_management,
            "ReturnToService": self._return_to_service,
        }

    # -- the last-seen buffer -------------------------------------------------------------------

    def flush_last_seen(self) -> None:
        """Write the last-seen times this process collected since the previous flush."""
        self._enrollments.touch(self._last_seen.drain())

    def tasks(self) -> list[PeriodicTask]:
        """The flush of this process's last-seen buffer (`last_seen.flush`), in every process."""
        return [
            PeriodicTask(
                "last_seen.flush",
                LAST_SEEN_FLUSH_SECONDS,
                self.flush_last_seen,
                once_across_nodes=False,  # each process holds its own buffer
                first_delay=LAST_SEEN_FLUSH_SECONDS,
                description="record the last-seen times of devices this process served",
            )
        ]

    # -- check-in (CheckInURL) ------------------------------------------------------------------

    def check_in(self, identity: Identity, msg: dict[str, Any], raw: bytes = b"") -> bytes | None:
        """Handle a check-in message; `raw` is its body as sent (for DeviceCheckedIn's listeners)."""
        message_type = check_in_message(msg)
        handler = self._handlers.get(message_type)
        if handler is None:
            raise BadRequest(f"unknown MessageType {message_type[:100]!r}")
        channel = resolve_channel(msg)
        try:
            reply = handler(identity, channel, msg)
        except TakeoverRefused as exc:
            log.warning(
                "%s from %s refused: identity %s is not the bound %s: %s",
                message_type,
                channel.enrollment_id,
                identity.fingerprint[:16],
                (exc.bound_fp or "?")[:16],
                exc,
            )
            raise Forbidden(str(exc)) from None
        except EnrollmentConflict as exc:
            raise Forbidden(str(exc)) from None
        except NotEnrolled as exc:
            raise UnknownEnrollment(str(exc)) from None
        except Forgotten as exc:
            raise UnrecognizedDevice(str(exc)) from None
        if message_type in ("Authenticate", "TokenUpdate", "CheckOut"):
            self._events.publish(DeviceFactsChanged((channel.device_id,)))
            self._events.publish(
                DeviceCheckedIn(message_type, channel.device_id, channel.enrollment_id, msg, raw)
            )
        if message_type == "TokenUpdate" and not channel.is_user and msg.get("AwaitingConfiguration") is True:
            self._awaiting_configuration(channel.device_id)
        return reply

    def _awaiting_configuration(self, device_id: str) -> None:
        """Tell whoever releases ADE devices from Setup Assistant (the blueprints) that this one
        waits, with its enrollment's time so a new enrollment is told from a repeated TokenUpdate."""
        row = self._enrollments.get(device_id)
        enrolled_at = row["authenticated_at"] if row is not None else None
        self._events.publish(DeviceAwaitingConfiguration(device_id, enrolled_at))

    def _authenticate(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> None:
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
        again = self._enrollments.authenticate(
            channel, identity.fingerprint, msg["Topic"], facts, self._reenroll_policy
        )
        log.info(
            "Authenticate from %s (%s)", channel.enrollment_id, f"re-enrollment: {again}" if again else "new"
        )

    def _token_update(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> None:
        self._check_topic(msg["Topic"])
        self._enrollments.token_update(
            channel,
            identity.fingerprint,
            msg["Topic"],
            msg["Token"],
            msg["PushMagic"],
            None if channel.is_user else msg.get("UnlockToken"),  # a device-channel secret only
            bool(msg.get("AwaitingConfiguration", False)),
        )
        log.info("TokenUpdate from %s", channel.enrollment_id)

    def _check_out(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> None:
        self._enrollments.check_out(channel, identity.fingerprint)
        log.info("CheckOut from %s", channel.enrollment_id)

    def _user_authenticate_message(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> bytes:
        if not channel.is_user:
            raise BadRequest("UserAuthenticate is a user-channel message (UDID with UserID)")
        self._enrollments.require_bound(channel.device_id, identity.fingerprint)
        reply = user_authenticate_reply(self._user_authenticate, msg)  # 410 when declining
        log.info("UserAuthenticate from %s: user allowed without a password", channel.enrollment_id)
        return reply

    def _set_bootstrap_token(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> None:
        device_id = self._device_channel(channel, "SetBootstrapToken")
        token = msg.get("BootstrapToken")
        if token is not None and len(token) > MAX_BOOTSTRAP_TOKEN_BYTES:
            raise BadRequest(f"BootstrapToken is over {MAX_BOOTSTRAP_TOKEN_BYTES} bytes")
        self._enrollments.require_bound(device_id, identity.fingerprint)
        if token:
            self._bootstrap.escrow(device_id, token)
        else:  # missing or zero length: Apple's way of saying "remove it"
            self._bootstrap.forget(device_id)
        log.info("SetBootstrapToken from %s: %s", device_id, "escrowed" if token else "removed")

    def _get_bootstrap_token(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> bytes:
        device_id = self._device_channel(channel, "GetBootstrapToken")
        self._enrollments.require_bound(device_id, identity.fingerprint)
        token = self._bootstrap.token(device_id)
        log.info("GetBootstrapToken from %s: %s", device_id, "returned" if token else "none held")
        return plistlib.dumps({} if token is None else {"BootstrapToken": token})

    def _get_token(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> None:
        # Apple answers 400 for a service type the server does not serve; Russet serves none.
        raise BadRequest(
            f"TokenServiceType {msg['TokenServiceType'][:100]!r} is not served: this server offers "
            "no token service (no com.apple.mdm.token capability)"
        )

    def _declarative_management(
        self, identity: Identity, channel: Channel, msg: dict[str, Any]
    ) -> bytes | None:
        self._enrollments.require_bound(channel.device_id, identity.fingerprint)
        if self._declarative is None or channel.is_user:
            return declarative_reply(msg)
        try:
            answer = self._declarative.answer(channel.device_id, msg["Endpoint"], msg.get("Data"))
        except TooLarge as exc:
            raise PayloadTooLarge(str(exc)) from None
        except Invalid as exc:
            raise BadRequest(str(exc)) from None
        except NoSuchThing as exc:
            raise NotFound(str(exc)) from None
        return None if answer is None else json_body(answer)

    def _return_to_service(self, identity: Identity, channel: Channel, msg: dict[str, Any]) -> bytes:
        # Return to Service needs configured Wi-Fi/MDM profiles; say plainly it is off.
        return plistlib.dumps({"ReturnToService": {"Enabled": False}})

    @staticmethod
    def _device_channel(channel: Channel, message_type: str) -> str:
        if channel.is_user:
            raise BadRequest(f"{message_type} is a device-channel message")
        return channel.device_id

    def _check_topic(self, topic: str) -> None:
        expected = self._topic()
        if expected is not None and topic != expected:
            raise Forbidden(f"Topic {topic!r} is not this server's push topic")

    # -- command reports (ServerURL) -----------------------------------------------------------

    def quiet_idle(self, identity: Identity, msg: dict[str, Any]) -> bool:
        """Answer an Idle report that changes nothing but the device's last-seen time (known,
        bound to this identity, nothing queued): True when it was one, and is done. One read, no
        write: the device route may run it on the event loop where `report` would need a worker
        thread (mdm.http). False: `report` handles the message, as for any other."""
        status, _ = report_message(msg)
        if status != "Idle":
            return False
        channel = resolve_channel(msg)
        if not self._queue.quiet(channel.enrollment_id, identity.fingerprint):
            return False
        self._last_seen.mark(channel.enrollment_id)
        return True

    def report(self, identity: Identity, msg: dict[str, Any], raw: bytes) -> bytes | None:
        status, command_uuid = report_message(msg)
        channel = resolve_channel(msg)
        report = stored_report(status, command_uuid, raw, msg, self._max_result_bytes)
        result = self._queue.exchange(channel.enrollment_id, identity.fingerprint, report)
        if not result.known:
            raise UnknownEnrollment(f"unknown enrollment {channel.enrollment_id}")
        if result.identity_fp != identity.fingerprint:
            # Either someone else's certificate, or this device's renewed one (then rebind, once).
            try:
                adopted = self._enrollments.adopt_renewal(channel.device_id, identity.fingerprint)
            except Forgotten as exc:
                raise UnrecognizedDevice(str(exc)) from None
            if not adopted:
                raise Forbidden("the identity certificate is not the one bound to this enrollment")
            result = self._queue.exchange(channel.enrollment_id, identity.fingerprint, report)
        if result.forgotten:
            raise UnrecognizedDevice("an admin forgot this device")
        self._last_seen.mark(channel.enrollment_id)
        if result.stored and status in ANSWERS and command_uuid:
            self._events.publish(
                CommandAnswered(channel.enrollment_id, command_uuid, result.reported_type or "", status, msg)
            )
        if result.stored and status != "Idle" and command_uuid:
            self._events.publish(
                CommandReported(
                    channel.device_id,
                    channel.enrollment_id,
                    command_uuid,
                    result.reported_type or "",
                    status,
                    msg,
                    raw,
                )
            )
        if result.inventory:  # the answer brought inventory (an answer without any changes no fact)
            request_type = result.reported_type or ""
            facts = request_type in FACT_REQUEST_TYPES
            if facts:  # a ProfileList or an app list moves no smart group: no re-evaluation
                self._events.publish(DeviceFactsChanged((channel.device_id,)))
            self._events.publish(
                InventoryChanged(channel.device_id, channel.enrollment_id, request_type, facts=facts)
            )
        if command_uuid and status != "Idle" and not result.stored:
            log.info(
                "report %s for command %s of %s changed nothing (duplicate or unknown)",
                status,
                command_uuid,
                channel.enrollment_id,
            )
        return result.body
