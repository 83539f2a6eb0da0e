"""Device strings that reach varchar/text columns: the same answer on SQLite and PostgreSQL.

PostgreSQL refuses a value longer than its varchar column and any NUL character; SQLite stores
both. Before these checks PostgreSQL answered 500 and the device sent the same message again
forever. Now keys and protocol values get a 400 naming the field, descriptions are cut to fit,
and a command result is always recorded (cut to RUSSET_MAX_RESULT_BYTES and flagged if needed).
Run with RUSSET_TEST_DATABASE_URL to see the PostgreSQL side.
"""

from __future__ import annotations

import dataclasses
import plistlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from russet.app import create_app
from russet.commands.inventory import TRUNCATED_KEY
from russet.config import Settings
from russet.enrollment.machineinfo import MachineInfoRejected, _parse
from russet.mdm.tables import command_queue
from russet.runtime import Russet
from simulators.device import SimDevice, SimUser
from tests.conftest import PUBLIC_URL


def binary(msg: dict[str, Any]) -> bytes:
    """XML cannot carry a NUL character at all; a binary plist can."""
    return plistlib.dumps(msg, fmt=plistlib.FMT_BINARY)


def check_in(client: TestClient, device: SimDevice, msg: dict[str, Any]) -> Any:
    return device.send_raw(client, "checkin", binary(msg))


def connect(client: TestClient, device: SimDevice, msg: dict[str, Any]) -> Any:
    return device.send_raw(client, "connect", binary(msg))


def queue(russet: Russet, device: SimDevice, request_type: str = "DeviceInformation") -> str:
    [sent] = russet.devices.send_command([device.udid], {"RequestType": request_type}, created_by="test")[
        "commands"
    ]
    return str(sent["command_uuid"])


def deliver(client: TestClient, device: SimDevice) -> str:
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None
    return str(command["CommandUUID"])


def test_long_and_nul_descriptions_in_authenticate_are_stored_cut(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    msg = {
        **device.authenticate_message(),
        "SerialNumber": "S" * 300,
        "DeviceName": "Robin's\x00 " + "n" * 400,
        "OSVersion": "1" * 80,
        "BuildVersion": "22B83\x00",
        "Model": "M" * 150,
    }
    assert check_in(client, device, msg).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None
    assert row["serial_number"] == "S" * 64
    assert row["device_name"] == ("Robin's " + "n" * 400)[:255]
    assert row["os_version"] == "1" * 50 and row["build_version"] == "22B83" and row["model"] == "M" * 100


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"UDID": "A\x00B"}, "UDID contains a NUL character"),
        ({"UDID": "U" * 256}, "UDID must be a non-empty string of at most 255"),
        ({"Topic": "com.apple.mgmt." + "t" * 300}, "Topic is longer than 255"),
        ({"Topic": "com.apple.mgmt.x\x00"}, "Topic contains a NUL character"),
    ],
)
def test_keys_too_long_or_with_nul_are_refused_by_name(
    client: TestClient, russet: Russet, device: SimDevice, change: dict[str, Any], reason: str
) -> None:
    response = check_in(client, device, {**device.authenticate_message(), **change})
    assert response.status_code == 400 and reason in response.text
    assert russet.storage.enrollments.count() == 0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"PushMagic": "m" * 256}, "PushMagic is longer than 255"),
        ({"PushMagic": "magic\x00"}, "PushMagic contains a NUL character"),
        ({"Token": b"t" * 257}, "Token is longer than 256 bytes"),
    ],
)
def test_token_update_values_too_long_or_with_nul_are_refused(
    client: TestClient, russet: Russet, device: SimDevice, change: dict[str, Any], reason: str
) -> None:
    assert device.check_in(client, device.authenticate_message()).status_code == 200
    response = check_in(client, device, device.token_update_message(**change))
    assert response.status_code == 400 and reason in response.text
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and not row["enabled"] and row["sealed_push"] is None


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        ({"UserID": "U" * 200, "UserShortName": "alex"}, "user channel id (device:user) is over 300"),
        ({"UserID": "ABC\x00", "UserShortName": "alex"}, "UserID contains a NUL character"),
        ({"UserID": "ABC", "UserShortName": "al\x00ex"}, "UserShortName contains a NUL character"),
        (
            {"UserID": "ABC", "UserLongName": "L" * 256},
            "UserLongName must be a non-empty string of at most 255",
        ),
    ],
)
def test_user_channel_names_too_long_or_with_nul_are_refused(
    client: TestClient, russet: Russet, device: SimDevice, keys: dict[str, str], reason: str
) -> None:
    device.udid = "D" * 120  # with a 200-character user id the channel id would be 321 characters
    device.enroll(client)
    response = check_in(client, device, device.user_token_update_message(SimUser(keys)))
    assert response.status_code == 400 and reason in response.text
    assert russet.storage.enrollments.user_channels(device.udid) == []


def test_report_with_nul_in_command_uuid_is_refused(client: TestClient, device: SimDevice) -> None:
    device.enroll(client)
    response = connect(client, device, device.report_message("Acknowledged", "ABC\x00"))
    assert response.status_code == 400 and "CommandUUID contains a NUL character" in response.text


def test_long_device_information_values_fill_the_columns_cut(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    uuid = queue(russet, device)
    assert deliver(client, device) == uuid
    answers = {"DeviceName": "N\x00" + "n" * 300, "OSVersion": "9" * 60, "SerialNumber": "S" * 70}
    report = device.report_message("Acknowledged", uuid, QueryResponses=answers)
    assert connect(client, device, report).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None
    assert row["device_name"] == ("N" + "n" * 300)[:255]
    assert row["os_version"] == "9" * 50 and row["serial_number"] == "S" * 64
    # The inventory keeps the answer as sent (JSON escapes the NUL), and so does the command.
    assert row["inventory"]["DeviceInformation"]["DeviceName"] == answers["DeviceName"]
    shown = russet.devices.show_command(uuid)
    assert shown["status"] == "acknowledged" and shown["result"]["QueryResponses"] == answers


def test_error_chain_with_nul_and_a_long_text_is_recorded(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    uuid = queue(russet, device, "ProfileList")
    deliver(client, device)
    chain = [{"ErrorDomain": "MCProfile\x00Error", "ErrorCode": 1, "USEnglishDescription": "x\x00" * 5000}]
    assert connect(client, device, device.report_message("Error", uuid, ErrorChain=chain)).status_code == 200
    shown = russet.devices.show_command(uuid)
    assert shown["status"] == "error"
    assert shown["status_reason"].startswith("MCProfileError 1: xxx") and "\x00" not in shown["status_reason"]
    assert len(shown["status_reason"]) == 1000


@pytest.fixture
def small_caps(settings: Settings) -> Iterator[tuple[Russet, TestClient]]:
    server = Russet.open(
        dataclasses.replace(settings, max_result_bytes=4096, max_inventory_section_bytes=2048)
    )
    with TestClient(create_app(server), base_url=PUBLIC_URL) as client:
        yield server, client
    server.close()


def test_a_result_over_the_cap_is_recorded_cut_and_flagged(
    small_caps: tuple[Russet, TestClient], make_device: Any
) -> None:
    russet, client = small_caps
    device = make_device()
    device.enroll(client)
    uuid = queue(russet, device, "ProfileList")
    deliver(client, device)
    report = device.report_message("Acknowledged", uuid, ProfileList=[{"PayloadUUID": "p" * 100}] * 100)
    assert len(plistlib.dumps(report)) > 4096
    assert device.connect(client, report).status_code == 200
    shown = russet.devices.show_command(uuid)
    assert shown["status"] == "acknowledged"  # recorded: the device does not send it again
    assert "result truncated: the first 4096 of" in shown["status_reason"]
    assert shown["result"] is None and "cannot be shown" in shown["result_error"]
    [stored] = [r for r in [russet.storage.queue.by_uuid(uuid)] if r is not None]
    assert stored["result"] == plistlib.dumps(report)[:4096]


def test_an_inventory_section_over_the_cap_keeps_what_fits_flagged(
    small_caps: tuple[Russet, TestClient], make_device: Any
) -> None:
    russet, client = small_caps
    device = make_device()
    device.enroll(client)
    uuid = queue(russet, device)
    deliver(client, device)
    answers = {"DeviceName": "Robin's iPhone", "Huge": "h" * 3000, "OSVersion": "18.1"}
    report = device.report_message("Acknowledged", uuid, QueryResponses=answers)
    assert device.connect(client, report).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None
    section = row["inventory"]["DeviceInformation"]
    assert section["DeviceName"] == "Robin's iPhone" and section["OSVersion"] == "18.1"
    assert "Huge" not in section and "RUSSET_MAX_INVENTORY_SECTION_BYTES" in section[TRUNCATED_KEY]
    assert row["device_name"] == "Robin's iPhone"
    # The command keeps the whole answer (it is under the result cap).
    assert russet.devices.show_command(uuid)["result"]["QueryResponses"] == answers


def test_a_list_section_over_the_cap_keeps_its_first_items_flagged(
    small_caps: tuple[Russet, TestClient], make_device: Any
) -> None:
    russet, client = small_caps
    device = make_device()
    device.enroll(client)
    uuid = queue(russet, device, "InstalledApplicationList")
    deliver(client, device)
    apps = [{"Identifier": f"com.example.app{i}", "Name": "App"} for i in range(40)]
    report = device.report_message("Acknowledged", uuid, InstalledApplicationList=apps)
    assert device.connect(client, report).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None
    section = row["inventory"]["InstalledApplicationList"]
    assert 0 < len(section) - 1 < 40 and section[:-1] == apps[: len(section) - 1]
    assert TRUNCATED_KEY in section[-1]


def nested(levels: int) -> Any:
    value: Any = "bottom"
    for _ in range(levels):
        value = [value]
    return value


def test_a_deeply_nested_result_is_refused_at_the_door(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    uuid = queue(russet, device, "ProfileList")
    deliver(client, device)
    response = device.connect(client, device.report_message("Acknowledged", uuid, ProfileList=nested(200)))
    assert response.status_code == 400 and "nested deeper than" in response.text
    assert russet.devices.show_command(uuid)["status"] == "sent"


def test_a_stored_result_too_deep_to_read_is_shown_as_unreadable(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    """Rows written before the limits (or by anything else) must not make `command show` a 500."""
    device.enroll(client)
    uuid = queue(russet, device, "ProfileList")
    levels = 5000  # past Python's recursion limit: the old read raised RecursionError, a 500
    deep = (
        b"<plist><dict><key>ProfileList</key>"
        + b"<array>" * levels
        + b"</array>" * levels
        + b"</dict></plist>"
    )
    with russet.storage.engine.begin() as conn:
        conn.execute(
            update(command_queue)
            .where(command_queue.c.command_uuid == uuid)
            .values(status="acknowledged", result=deep)
        )
    response = client.get(f"/api/v1/commands/{uuid}", headers=api_headers)
    assert response.status_code == 200
    assert response.json()["result"] is None and "nested deeper than" in response.json()["result_error"]


@pytest.mark.parametrize("key", ["UDID", "SERIAL", "PRODUCT"])
def test_machine_info_with_nul_is_refused(key: str) -> None:
    info = {"UDID": "u", "SERIAL": "s", "PRODUCT": "iPhone15,2", "VERSION": "22B83"}
    info[key] += "\x00"
    with pytest.raises(MachineInfoRejected) as caught:
        _parse(binary(info), None)  # type: ignore[arg-type]
    assert caught.value.status == 400 and f"MachineInfo {key} contains a NUL character" in caught.value.reason
