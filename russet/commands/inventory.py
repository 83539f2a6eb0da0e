"""Turning command reports into the device inventory Russet stores (as JSON) and lists."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# RequestType -> (key of the report holding the answer, type that answer must have).
_SECTIONS: dict[str, tuple[str, type]] = {
    "DeviceInformation": ("QueryResponses", dict),
    "SecurityInfo": ("SecurityInfo", dict),
    "InstalledApplicationList": ("InstalledApplicationList", list),
    # Bundle id -> {Status, ...}; Russet asks it without Identifiers, so it is the whole list.
    "ManagedApplicationList": ("ManagedApplicationList", dict),
    # The configuration profiles installed, as what identifies each (see `_profile_entry`): the
    # blueprints' reconciler compares them with what it installed (drift), and the section's
    # updated_at says when the device answered.
    "ProfileList": ("ProfileList", list),
    # The device actions' answers (russet.mdm.actions), the latest of each shown on the device:
    # Shared iPad (and Mac) users, OS updates available and their statuses, and where a device in
    # Lost Mode is (its answer's keys are the report's own: `_LOCATION` below).
    "UserList": ("Users", list),
    "AvailableOSUpdates": ("AvailableOSUpdates", list),
    "OSUpdateStatus": ("OSUpdateStatus", list),
    "DeviceLocation": ("", dict),
}

# The keys of a report that are not DeviceLocation's answer.
NOT_LOCATION = frozenset(
    {
        "Status",
        "CommandUUID",
        "UDID",
        "EnrollmentID",
        "UserID",
        "UserShortName",
        "UserLongName",
        "EnrollmentUserID",
        "ErrorChain",
        "RequestType",
    }
)

# What is kept of each ProfileList entry: its identity and flags, not its payloads or signer
# certificates (large, and the stored command result keeps the whole answer).
_PROFILE_KEYS: dict[str, type | tuple[type, ...]] = {
    "PayloadIdentifier": str,
    "PayloadUUID": str,
    "PayloadDisplayName": str,
    "PayloadOrganization": str,
    "PayloadVersion": int,
    "IsManaged": bool,
    "IsEncrypted": bool,
    "PayloadRemovalDisallowed": bool,
    "HasRemovalPasscode": bool,
}
_MAX_PROFILE_TEXT = 255

# Largest inventory section stored, as JSON (RUSSET_MAX_INVENTORY_SECTION_BYTES).
DEFAULT_MAX_SECTION_BYTES = 1024 * 1024
TRUNCATED_KEY = "RussetTruncated"

# Device-list column -> DeviceInformation query that fills it.
_SUMMARY_QUERIES: dict[str, str] = {
    "serial_number": "SerialNumber",
    "model": "Model",
    "model_name": "ModelName",
    "product_name": "ProductName",
    "os_version": "OSVersion",
    "build_version": "BuildVersion",
    "device_name": "DeviceName",
}


def jsonable(value: Any) -> Any:
    """Plist values as JSON can hold them (data as base64, dates as ISO 8601 in UTC), recursively."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        # plistlib reads dates as naive UTC.
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def inventory_update(
    request_type: str, report: Mapping[str, Any], max_section_bytes: int = DEFAULT_MAX_SECTION_BYTES
) -> dict[str, Any] | None:
    """The inventory section an Acknowledged report brings, as `{section: value}`, else None.

    A DeviceInformation answer holds only the queries that were asked (and the device knew), so the
    caller should merge that section key by key rather than replace it; likewise an
    InstalledApplicationList limited by `Identifiers` lists only those apps.
    """
    section = _SECTIONS.get(request_type)
    if section is None or report.get("Status") != "Acknowledged":
        return None
    key, expected = section
    value = report.get(key) if key else {k: v for k, v in report.items() if k not in NOT_LOCATION}
    if not isinstance(value, expected):
        return None
    if isinstance(value, list) and request_type == "ProfileList":
        value = [_profile_entry(entry) for entry in value if isinstance(entry, Mapping)]
    return {request_type: fit_section(jsonable(value), max_section_bytes)}


def _profile_entry(entry: Mapping[str, Any]) -> dict[str, Any]:
    """One installed profile as the ProfileList section keeps it: the keys of `_PROFILE_KEYS`
    that have their type (a bool is not taken for an int), texts cut to 255 characters."""
    kept: dict[str, Any] = {}
    for key, kind in _PROFILE_KEYS.items():
        value = entry.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            continue
        kept[key] = value[:_MAX_PROFILE_TEXT] if isinstance(value, str) else value
    return kept


def fit_section(value: dict[str, Any] | list[Any], limit: int) -> dict[str, Any] | list[Any]:
    """`value` if its JSON fits in `limit` bytes, else the entries that fit, flagged.

    One device must not fill the database through its inventory, and its answer must not be
    lost either (refusing it would make the device send it again forever): entries are kept in
    order while they fit, larger ones skipped, and a `RussetTruncated` entry says what happened
    (a key of a dictionary section, the last item of a list section). The command's stored
    result keeps the answer as the device sent it.
    """
    size = len(json.dumps(value))
    if size <= limit:
        return value
    note = {
        TRUNCATED_KEY: f"the answer is {size} bytes as JSON, over the {limit}-byte limit "
        "(RUSSET_MAX_INVENTORY_SECTION_BYTES): only the entries that fit are kept"
    }
    budget = limit - len(json.dumps(note)) - 2
    used = 0
    if isinstance(value, dict):
        kept: dict[str, Any] = {}
        for key, item in value.items():
            cost = len(json.dumps({key: item}))
            if used + cost <= budget:
                kept[key] = item
                used += cost
        return {**kept, **note}
    items: list[Any] = []
    for item in value:
        cost = len(json.dumps(item)) + 2
        if used + cost > budget:
            break
        items.append(item)
        used += cost
    return [*items, note]


def summary_fields(inventory_update: Mapping[str, Any]) -> dict[str, str]:
    """The device-list columns an inventory update fills; columns it does not mention are left out.

    Leaving them out (rather than None) lets a narrow DeviceInformation query update a device
    without blanking the columns it did not ask about.
    """
    answers = inventory_update.get("DeviceInformation")
    if not isinstance(answers, Mapping):
        return {}
    return {
        column: answers[query]
        for column, query in _SUMMARY_QUERIES.items()
        if isinstance(answers.get(query), str)
    }
