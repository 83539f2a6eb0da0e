"""Parsing device bodies: plist decoding with limits, and per-message key and type checks.

Everything a device sends is outside input. A body that is not a plist dict, misses a key the
protocol requires, or has a key of the wrong type is refused with a 400 naming the problem,
before anything is stored.
"""

from __future__ import annotations

from typing import Any

from russet import plists
from russet.mdm.errors import BadRequest
from russet.mdm.queue import Report

_REQUIRED: dict[str, dict[str, type]] = {
    "Authenticate": {"Topic": str},
    "TokenUpdate": {"Topic": str, "Token": bytes, "PushMagic": str},
    "CheckOut": {},
    "UserAuthenticate": {"UserID": str},
    "GetToken": {"TokenServiceType": str},
    "DeclarativeManagement": {"Endpoint": str},
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "UnlockToken": bytes,
    "AwaitingConfiguration": bool,
    "SerialNumber": str,
    "Model": str,
    "ModelName": str,
    "ProductName": str,
    "DeviceName": str,
    "OSVersion": str,
    "BuildVersion": str,
    "IMEI": str,
    "MEID": str,
    "NotOnConsole": bool,
    "CommandUUID": str,
    "Status": str,
    "ErrorChain": list,
    "DigestResponse": str,
    "BootstrapToken": bytes,
    "TokenParameters": dict,
    "Data": bytes,
}
REPORT_STATUSES = frozenset({"Idle", "Acknowledged", "Error", "CommandFormatError", "NotNow"})
# Protocol values stored in varchar columns (enrollments.topic, push_magic, push_token as hex):
# longer ones, or ones holding NUL (which PostgreSQL text refuses and SQLite keeps), get a 400
# naming the field on every database, rather than a 500 on one of them.
_MAX_STORED_CHARS = {"Topic": 255, "PushMagic": 255}
MAX_PUSH_TOKEN_BYTES = 256  # stored as hex in a 512-character column; Apple's are 32 bytes
MAX_ERROR_SUMMARY_CHARS = 1000
DEFAULT_MAX_RESULT_BYTES = 2 * 1024 * 1024


def parse_plist(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("empty body: a property list was expected")
    try:
        value = plists.loads(body)  # bounded: object count, nesting, expanded size; no entities
    except plists.PlistRejected as exc:
        raise BadRequest(f"body is not a valid property list ({exc})") from None
    if not isinstance(value, dict):
        raise BadRequest("the property list must be a dictionary")
    return value


def _check_types(msg: dict[str, Any], context: str) -> None:
    for key, expected in _OPTIONAL.items():
        if key in msg and not isinstance(msg[key], expected):
            raise BadRequest(f"{context}: {key} has the wrong type")


def _check_stored(msg: dict[str, Any], context: str) -> None:
    for key, limit in _MAX_STORED_CHARS.items():
        value = msg.get(key)
        if isinstance(value, str):
            if len(value) > limit:
                raise BadRequest(f"{context}: {key} is longer than {limit} characters")
            if "\x00" in value:
                raise BadRequest(f"{context}: {key} contains a NUL character")
    token = msg.get("Token")
    if isinstance(token, bytes) and len(token) > MAX_PUSH_TOKEN_BYTES:
        raise BadRequest(f"{context}: Token is longer than {MAX_PUSH_TOKEN_BYTES} bytes")


def check_in_message(msg: dict[str, Any]) -> str:
    """Validate a check-in message; returns its MessageType."""
    message_type = msg.get("MessageType")
    if not isinstance(message_type, str) or not message_type:
        raise BadRequest("MessageType is missing or not a string")
    for key, expected in _REQUIRED.get(message_type, {}).items():
        if key not in msg:
            raise BadRequest(f"{message_type}: missing required key {key}")
        if not isinstance(msg[key], expected) or (expected is str and not msg[key]):
            raise BadRequest(f"{message_type}: {key} must be a non-empty {expected.__name__}")
    _check_types(msg, message_type)
    _check_stored(msg, message_type)
    return message_type


def report_message(msg: dict[str, Any]) -> tuple[str, str | None]:
    """Validate a command report; returns (Status, CommandUUID)."""
    status = msg.get("Status")
    if not isinstance(status, str):
        raise BadRequest("Status is missing or not a string")
    if status not in REPORT_STATUSES:
        raise BadRequest(f"unknown Status {status!r}")
    _check_types(msg, "report")
    command_uuid = msg.get("CommandUUID")
    if status != "Idle" and not command_uuid:
        raise BadRequest(f"a {status} report needs a CommandUUID")
    if command_uuid is not None and len(command_uuid) > 64:
        raise BadRequest("CommandUUID is too long")
    if command_uuid is not None and "\x00" in command_uuid:
        raise BadRequest("CommandUUID contains a NUL character")
    return status, command_uuid


def stored_report(
    status: str, command_uuid: str | None, raw: bytes, msg: dict[str, Any], max_result_bytes: int
) -> Report:
    """The report as the queue stores it: its result cut to `max_result_bytes`
    (RUSSET_MAX_RESULT_BYTES), and flagged in the status reason when it was cut.

    A result is never refused for its size: the device would send it again forever. The status
    and the start of the result are kept, and the reason says how much was not.
    """
    reason = error_summary(msg) if status != "Acknowledged" else None
    if len(raw) > max_result_bytes:
        note = (
            f"result truncated: the first {max_result_bytes} of {len(raw)} bytes are stored "
            "(RUSSET_MAX_RESULT_BYTES)"
        )
        reason = f"{reason}; {note}" if reason else note
        raw = raw[:max_result_bytes]
    return Report(status, command_uuid, raw, msg, reason)


def error_summary(msg: dict[str, Any]) -> str | None:
    """A one-line reason from ErrorChain, for people reading command status."""
    chain = msg.get("ErrorChain")
    if not chain or not isinstance(chain, list) or not isinstance(chain[0], dict):
        return None
    first = chain[0]
    text = first.get("USEnglishDescription") or first.get("LocalizedDescription") or ""
    summary = f"{first.get('ErrorDomain', '?')} {first.get('ErrorCode', '?')}: {text}".strip()
    # Stored as status_reason (text): no NUL (PostgreSQL refuses it), and a line, not a novel.
    return summary.replace("\x00", "")[:MAX_ERROR_SUMMARY_CHARS]
