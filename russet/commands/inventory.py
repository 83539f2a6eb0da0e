"""Turning command reports into the device inventory Russet stores (as JSON) and lists."""

from __future__ import annotations

import base64
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
}

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


def inventory_update(request_type: str, report: Mapping[str, Any]) -> dict[str, Any] | None:
    """The inventory section an Acknowledged report brings, as `{section: value}`, else None.

    A DeviceInformation answer holds only the queries that were asked (and the device knew), so the
    caller should merge that section key by key rather than replace it; likewise an
    InstalledApplicationList limited by `Identifiers` lists only those apps.
    """
    section = _SECTIONS.get(request_type)
    if section is None or report.get("Status") != "Acknowledged":
        return None
    key, expected = section
    value = report.get(key)
    if not isinstance(value, expected):
        return None
    return {request_type: jsonable(value)}


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
