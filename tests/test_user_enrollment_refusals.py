"""What a User Enrollment device may not be sent (issue #17 item 2), from Apple's schemas: device-wide
commands, and DeviceInformation queries that identify the hardware; on an unknown platform (no
DeviceInformation answer yet) only what no User Enrollment platform allows is refused."""

from __future__ import annotations

import pytest

from russet.commands.support import DeviceFacts
from russet.commands.targets import CommandRefused, check_target
from russet.commands.user_enrollment import forbidden_queries

BYOD_IOS = DeviceFacts(platform="iOS", user_enrollment=True)
BYOD_UNKNOWN = DeviceFacts(user_enrollment=True)


@pytest.mark.parametrize("request_type", ["EraseDevice", "DeviceConfigured", "ClearPasscode"])
@pytest.mark.parametrize("facts", [BYOD_IOS, BYOD_UNKNOWN])
def test_device_wide_commands_are_refused(request_type: str, facts: DeviceFacts) -> None:
    with pytest.raises(CommandRefused, match=f"{request_type} is not available with User Enrollment"):
        check_target(request_type, facts)


@pytest.mark.parametrize("request_type", ["ProfileList", "InstallProfile", "InstalledApplicationList"])
def test_what_user_enrollment_allows_passes_on_an_unknown_platform(request_type: str) -> None:
    check_target(request_type, BYOD_UNKNOWN)


def test_hardware_queries_are_refused_with_their_names() -> None:
    command = {"Queries": ["UDID", "SerialNumber", "IMEI", "OSVersion"]}
    with pytest.raises(CommandRefused) as refused:
        check_target("DeviceInformation", BYOD_IOS, command)
    assert "Queries UDID, SerialNumber, IMEI cannot be asked with User Enrollment on iOS" in str(
        refused.value
    )
    with pytest.raises(
        CommandRefused, match="Queries UDID, SerialNumber cannot be asked with User Enrollment "
    ):
        check_target("DeviceInformation", BYOD_UNKNOWN, command)  # IMEI: iOS only, the platform is unknown
    check_target("DeviceInformation", BYOD_IOS, {"Queries": ["OSVersion", "ProductName"]})
    check_target("DeviceInformation", DeviceFacts(platform="iOS"), command)  # a device enrollment may ask


def test_the_rules_come_from_apples_schema() -> None:
    rules = forbidden_queries()
    assert rules["UDID"] == {"iOS", "macOS", "visionOS"}
    assert rules["IMEI"] == {"iOS"}
    assert "OSVersion" not in rules
