"""What DeviceInformation may not ask a User Enrollment device: Apple's schema marks each query
(UDID, SerialNumber, IMEI, the MAC addresses...) forbidden with User Enrollment per platform. A
personal device is not identified by its hardware; Russet refuses the query rather than send it.

The generated builders keep a query list as plain strings, so the rule is read here from Apple's
YAML (`russet.schemas`, cached) instead.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, cast

from russet.commands.support import DeviceFacts, Platform
from russet.schemas import load

# Where Apple has User Enrollment at all (tvOS and watchOS have none, so their schemas say nothing).
USER_ENROLLMENT_PLATFORMS: tuple[Platform, ...] = ("iOS", "macOS", "visionOS")
DEVICE_INFORMATION_SCHEMA = "mdm/commands/information.device.yaml"


@functools.cache
def forbidden_queries() -> Mapping[str, frozenset[Platform]]:
    """Query name -> the platforms where Apple forbids it with User Enrollment."""
    schema = load(DEVICE_INFORMATION_SCHEMA)
    [queries] = [k for k in schema["payloadkeys"] if k["key"] == "Queries"]
    found: dict[str, frozenset[Platform]] = {}
    for item in queries["subkeys"][0].get("subkeys") or []:
        platforms = [
            cast(Platform, name)
            for name, entry in (item.get("supportedOS") or {}).items()
            if isinstance(entry, dict) and (entry.get("userenrollment") or {}).get("mode") == "forbidden"
        ]
        if platforms:
            found[item["key"]] = frozenset(platforms)
    return found


def query_refusals(queries: Any, facts: DeviceFacts) -> list[str]:
    """Why DeviceInformation with these `queries` cannot go to a User Enrollment device, as
    sentences; on an unknown platform only what every User Enrollment platform forbids."""
    if not facts.user_enrollment or not isinstance(queries, Sequence) or isinstance(queries, str):
        return []
    rules = forbidden_queries()
    if facts.platform is None:
        refused = [q for q in queries if rules.get(q, frozenset()) >= set(USER_ENROLLMENT_PLATFORMS)]
        where = "User Enrollment"
    else:
        refused = [q for q in queries if facts.platform in rules.get(q, frozenset())]
        where = f"User Enrollment on {facts.platform}"
    if not refused:
        return []
    names = ", ".join(dict.fromkeys(str(q) for q in refused))
    return [
        f"DeviceInformation: Queries {names} cannot be asked with {where} "
        "(a personal device is not identified by its hardware)"
    ]
