"""Parsing device bodies: plist decoding with limits, and per-message key and type checks.

Everything a device sends is outside input. A body that is not a plist dict, misses a key the
protocol requires, or has a key of the wrong type is refused with a 400 naming the problem,
before anything is stored.
"""

from __future__ import annotations

import plistlib
from typing import Any

from russet.mdm.errors import BadRequest

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


def parse_plist(body: bytes) -> dict[str, Any]:
    if not body:
        raise BadRequest("empty body: a property list was expected")
    try:
        value = plistlib.loads(body)
    except Exception as exc:  # plistlib raises many types for garbage; all mean the same here
        raise BadRequest(f"body is not a valid property list ({type(exc).__name__})") from None
    if not isinstance(value, dict):
        raise BadRequest("the property list must be a dictionary")
    return value


def _check_types(msg: dict[str, Any], context: str) -> None:
    for key, expected in _OPTIONAL.items():
        if key in msg and not isinstance(msg[key], expected):
            raise BadRequest(f"{context}: {key} has the wrong type")


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
    return status, command_uuid


def error_summary(msg: dict[str, Any]) -> str | None:
    """A one-line reason from ErrorChain, for people reading command status."""
    chain = msg.get("ErrorChain")
    if not chain or not isinstance(chain, list) or not isinstance(chain[0], dict):
        return None
    first = chain[0]
    text = first.get("USEnglishDescription") or first.get("LocalizedDescription") or ""
    return f"{first.get('ErrorDomain', '?')} {first.get('ErrorCode', '?')}: {text}".strip()
