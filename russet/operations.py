"""Admin operations shared by the REST API and the CLI, so both behave the same.

They take already-typed input, raise `OperationError` (with a message for people) on bad
input, and return plain JSON-ready dicts.
"""

from __future__ import annotations

import plistlib
from datetime import datetime
from typing import Any

from russet.commands import CommandError, build_command, render_command_plist
from russet.commands.inventory import jsonable
from russet.runtime import Russet
from russet.storage.queue import UUID_PLACEHOLDER, UnknownDevices

MAX_DEVICES_PER_COMMAND = 100_000


class OperationError(ValueError):
    """Bad admin input; `status` is the HTTP status the API answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def device_summary(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "serial_number": row["serial_number"],
        "device_name": row["device_name"],
        "model": row["model"] or row["product_name"],
        "os_version": row["os_version"],
        "enrollment_type": row["enrollment_type"],
        "enrolled": bool(row["enabled"]),
        "last_seen_at": _iso(row["last_seen_at"]),
    }


def list_devices(
    russet: Russet, *, limit: int = 100, after: str | None = None, search: str | None = None
) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise OperationError("limit must be between 1 and 1000")
    rows = russet.storage.enrollments.page(limit=limit, after=after, search=search)
    return {
        "devices": [device_summary(r) for r in rows],
        "next": rows[-1]["id"] if len(rows) == limit else None,
    }


def show_device(russet: Russet, device_id: str) -> dict[str, Any]:
    row = russet.storage.enrollments.get(device_id)
    if row is None:
        raise OperationError(f"no device with id {device_id!r}", 404)
    summary = device_summary(row)
    summary.update(
        {
            "channel": row["channel"],
            "model_name": row["model_name"],
            "product_name": row["product_name"],
            "build_version": row["build_version"],
            "topic": row["topic"],
            "push_token_present": row["push_token"] is not None,
            "awaiting_configuration": bool(row["awaiting_configuration"]),
            "authenticated_at": _iso(row["authenticated_at"]),
            "token_updated_at": _iso(row["token_updated_at"]),
            "checked_out_at": _iso(row["checked_out_at"]),
            "created_at": _iso(row["created_at"]),
            "inventory": row["inventory"],
        }
    )
    return summary


def send_command(
    russet: Russet, device_ids: list[str], command: dict[str, Any], created_by: str | None
) -> dict[str, Any]:
    """Validate a command and queue it once per device; returns the CommandUUID per device."""
    if not device_ids:
        raise OperationError("name at least one device")
    if len(device_ids) > MAX_DEVICES_PER_COMMAND:
        raise OperationError(f"at most {MAX_DEVICES_PER_COMMAND} devices per command")
    if not all(isinstance(d, str) and d for d in device_ids):
        raise OperationError("device ids must be non-empty strings")
    try:
        built = build_command(command)
    except CommandError as exc:
        raise OperationError(str(exc)) from None
    template = render_command_plist(UUID_PLACEHOLDER, built)
    try:
        uuids = russet.storage.queue.enqueue(built["RequestType"], template, device_ids, created_by)
    except UnknownDevices as exc:
        raise OperationError(str(exc), 404) from None
    return {
        "request_type": built["RequestType"],
        "commands": [{"device": d, "command_uuid": u} for d, u in uuids.items()],
    }


def _delivery(row: dict[str, Any], with_result: bool) -> dict[str, Any]:
    out = {
        "command_uuid": row["command_uuid"],
        "device": row["enrollment_id"],
        "request_type": row["request_type"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "attempts": row["attempts"],
        "notnow_count": row["notnow_count"],
        "created_by": row["created_by"],
        "created_at": _iso(row["created_at"]),
        "sent_at": _iso(row["sent_at"]),
        "reported_at": _iso(row["reported_at"]),
    }
    if with_result:
        out["result"] = None if row["result"] is None else jsonable(plistlib.loads(row["result"]))
    return out


def show_command(russet: Russet, command_uuid: str) -> dict[str, Any]:
    row = russet.storage.queue.by_uuid(command_uuid)
    if row is None:
        raise OperationError(f"no command with uuid {command_uuid!r}", 404)
    out = _delivery(row, with_result=True)
    out["deliveries"] = [_delivery(r, with_result=False) for r in russet.storage.queue.siblings(command_uuid)]
    return out


def device_commands(russet: Russet, device_id: str, limit: int = 100) -> dict[str, Any]:
    if not russet.storage.enrollments.existing([device_id]):
        raise OperationError(f"no device with id {device_id!r}", 404)
    rows = russet.storage.queue.for_enrollment(device_id, limit)
    return {"device": device_id, "commands": [_delivery(r, with_result=False) for r in rows]}
