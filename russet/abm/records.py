"""Checking what Apple sends before any of it is used (§e.5–e.7).

Each answer is validated whole and turned into database rows and ledger datums in one pass; a
malformed answer raises `ProtocolError` naming the field, and none of it is applied. Fields that
drive destructive steps (`cursor`, `more_to_follow`, `op_type`) are required, never defaulted: a
missing `more_to_follow` must not end a listing early and delete devices as stale.

Fields Apple adds that the catalogue does not declare are neither stored nor recorded; their
names are reported so the catalogue can be extended.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from russet.abm.errors import ProtocolError
from russet.apple import bounded_json
from russet.apple.gateway import Datum

DEVICE_TEXT_FIELDS = (
    "model",
    "description",
    "color",
    "asset_tag",
    "os",
    "device_family",
    "profile_status",
    "profile_uuid",
    "device_assigned_by",
)
DEVICE_TIME_FIELDS = (
    "profile_assign_time",
    "profile_push_time",
    "device_assigned_date",
    "mdm_migration_deadline",
)
DEVICE_COLUMNS = ("serial_number", *DEVICE_TEXT_FIELDS, *DEVICE_TIME_FIELDS, "op_type", "op_date")
SYNC_OPS = frozenset({"added", "modified", "deleted"})
ACCOUNT_FIELDS = (
    "server_name",
    "server_uuid",
    "admin_id",
    "facilitator_id",
    "org_name",
    "org_email",
    "org_phone",
    "org_address",
    "org_id",
    "org_id_hash",
    "org_type",
    "org_version",
)
MAX_SERIAL = 64  # the column's width; Apple's serials are 10-14 characters
_KNOWN_DEVICE_KEYS = frozenset(DEVICE_COLUMNS)


@dataclass
class DevicePage:
    """One page of `/server/devices` or `/devices/sync`, checked."""

    devices: list[dict[str, Any]]  # rows in DEVICE_COLUMNS order, one per serial (latest op wins)
    data: list[Datum]  # every field as received, for the ledger
    cursor: str
    more_to_follow: bool
    fetched_until: datetime | None
    ignored_fields: set[str] = field(default_factory=set)


def parse_time(value: str, where: str) -> datetime | None:
    if value == "":
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ProtocolError(f"{where}: {value!r} is not an ISO 8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _object(body: Any, endpoint: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ProtocolError(f"Apple's answer to {endpoint} is not a JSON object (got {type(body).__name__})")
    return body


def parse_device_page(body: Any, *, endpoint: str, sync: bool) -> DevicePage:
    """Validate a device page; in a sync page every device needs an `op_type`."""
    body = _object(body, endpoint)
    cursor = body.get("cursor")
    if not isinstance(cursor, str) or not cursor:
        raise ProtocolError(f"Apple's answer to {endpoint} has no cursor")
    more = body.get("more_to_follow")
    if not isinstance(more, bool):
        raise ProtocolError(f"Apple's answer to {endpoint}: more_to_follow is missing or not true/false")
    raw_until = body.get("fetched_until")
    if raw_until is not None and not isinstance(raw_until, str):
        raise ProtocolError(f"Apple's answer to {endpoint}: fetched_until is not text")
    until = parse_time(raw_until, f"{endpoint} fetched_until") if raw_until else None
    devices = body.get("devices")
    if devices is None:
        devices = []
    if not isinstance(devices, list):
        raise ProtocolError(f"Apple's answer to {endpoint}: devices is not a list")

    rows: dict[str, dict[str, Any]] = {}
    data: list[Datum] = [Datum("cursor", cursor), Datum("more_to_follow", str(more).lower())]
    if raw_until:
        data.append(Datum("fetched_until", raw_until))
    ignored: set[str] = set()
    for index, device in enumerate(devices):
        row, device_data = _device(device, index, endpoint, sync, ignored)
        data.extend(device_data)
        previous = rows.get(row["serial_number"])
        # The same serial may come several times: the operation with the latest op_date wins.
        if previous is None or _later_or_same(row["op_date"], previous["op_date"]):
            rows[row["serial_number"]] = row
    return DevicePage(list(rows.values()), data, cursor, more, until, ignored)


def _later_or_same(new: datetime | None, old: datetime | None) -> bool:
    return new is None or old is None or new >= old


def _device(
    device: Any, index: int, endpoint: str, sync: bool, ignored: set[str]
) -> tuple[dict[str, Any], list[Datum]]:
    where = f"Apple's answer to {endpoint}: device {index}"
    if not isinstance(device, dict):
        raise ProtocolError(f"{where} is not a JSON object")
    serial = device.get("serial_number")
    if not isinstance(serial, str) or not serial.strip():
        raise ProtocolError(f"{where} has no serial_number")
    serial = serial.strip()
    if len(serial) > MAX_SERIAL:
        raise ProtocolError(f"{where}: serial_number is longer than {MAX_SERIAL} characters")
    where = f"Apple's answer to {endpoint}: device {serial}"
    row: dict[str, Any] = dict.fromkeys(DEVICE_COLUMNS)
    row["serial_number"] = serial
    data = [Datum("serial_number", serial, serial)]
    for name in DEVICE_TEXT_FIELDS:
        value = device.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: {name} should be text, got {type(value).__name__}")
        row[name] = value
        data.append(Datum(name, value, serial))
    if row["profile_uuid"] is not None and len(row["profile_uuid"]) > 64:
        raise ProtocolError(f"{where}: profile_uuid is longer than 64 characters")
    for name in DEVICE_TIME_FIELDS:
        value = device.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise ProtocolError(f"{where}: {name} should be an ISO 8601 time, got {type(value).__name__}")
        row[name] = parse_time(value, f"{where}: {name}")
        data.append(Datum(name, value, serial))
    op_type, op_date = device.get("op_type"), device.get("op_date")
    if sync:
        if not isinstance(op_type, str) or op_type not in SYNC_OPS:  # a list is not even hashable
            got = "none" if op_type is None else repr(op_type)
            raise ProtocolError(f"{where}: op_type should be one of added, modified, deleted; got {got}")
        data.append(Datum("op_type", op_type, serial))
        row["op_type"] = op_type
        if op_date is not None:
            if not isinstance(op_date, str):
                raise ProtocolError(f"{where}: op_date should be an ISO 8601 time")
            row["op_date"] = parse_time(op_date, f"{where}: op_date")
            data.append(Datum("op_date", op_date, serial))
    if not _KNOWN_DEVICE_KEYS.issuperset(device):
        ignored.update(device.keys() - _KNOWN_DEVICE_KEYS)
    return row, data


# -- account, results, errors ----------------------------------------------------------------------


def parse_account(body: Any) -> tuple[dict[str, Any], list[Datum]]:
    body = _object(body, "GET /account")
    for required in ("server_name", "server_uuid"):
        if not isinstance(body.get(required), str) or not body[required]:
            raise ProtocolError(f"Apple's answer to GET /account has no {required}")
    subject = body["server_uuid"]
    account: dict[str, Any] = {}
    data = []
    for name in ACCOUNT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"Apple's answer to GET /account: {name} should be text")
        account[name] = value
        if value is not None:
            data.append(Datum(name, value, subject))
    urls = body.get("urls")
    if urls is not None:
        if not isinstance(urls, list) or not all(isinstance(u, dict) for u in urls):
            raise ProtocolError("Apple's answer to GET /account: urls should be a list of objects")
        account["urls"] = json.dumps(urls)
        data.append(Datum("urls", account["urls"], subject))
    else:
        account["urls"] = None
    return account, data


def page_limit(urls: list[dict[str, Any]] | None, path: str, wanted: int) -> int:
    """The page size for `path`: `wanted`, lowered to Apple's maximum from /account when it says."""
    for entry in urls or ():
        if entry.get("uri") == path and isinstance(entry.get("limit"), dict):
            maximum = entry["limit"].get("maximum")
            if isinstance(maximum, int) and maximum > 0:
                return min(wanted, maximum)
    return wanted


@dataclass
class DeviceResults:
    """Apple's per-device answer to a profile assignment or removal."""

    results: dict[str, str]
    data: list[Datum]
    profile_uuid: str | None = None
    retry_after_seconds: int | None = None


def parse_device_results(body: Any, endpoint: str, asked: list[str]) -> DeviceResults:
    body = _object(body, endpoint)
    devices = body.get("devices", {})
    if devices is None:
        devices = {}
    if not isinstance(devices, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in devices.items()
    ):
        raise ProtocolError(f"Apple's answer to {endpoint}: devices should map serial numbers to results")
    data = [Datum("response_status", status, serial) for serial, status in devices.items()]
    uuid = body.get("profile_uuid")
    if uuid is not None and (not isinstance(uuid, str) or len(uuid) > 64):
        raise ProtocolError(f"Apple's answer to {endpoint}: profile_uuid is not a short text")
    if uuid is not None:
        data.append(Datum("profile_uuid", uuid))
    retry = body.get("retry_after_seconds")
    if retry is not None:
        if not isinstance(retry, int) or isinstance(retry, bool) or retry < 0:
            raise ProtocolError(f"Apple's answer to {endpoint}: retry_after_seconds is not a whole number")
        data.append(Datum("retry_after_seconds", retry))
    results = {serial: devices.get(serial, "NO_ANSWER") for serial in asked}
    results.update({serial: status for serial, status in devices.items() if serial not in results})
    return DeviceResults(results, data, uuid, retry)


def error_code(text: str) -> str | None:
    """Apple's error code from an error body: a bare code, a JSON string, or a JSON object."""
    text = text.strip()
    if not text:
        return None
    try:
        parsed = bounded_json.loads(text)
    except ValueError:
        parsed = text
    if isinstance(parsed, dict):
        parsed = parsed.get("code") or parsed.get("error") or parsed.get("message")
    if isinstance(parsed, str) and parsed and len(parsed) <= 100:
        return parsed.strip()
    return None
