"""End to end over HTTP: a simulated device enrolls with a Russet profile and runs commands."""

from __future__ import annotations

import plistlib
from typing import Any

from fastapi.testclient import TestClient

from russet.runtime import Russet
from simulators.device import SimDevice
from tests.apple_schema import CAPTURES


def queue(
    client: TestClient, headers: dict[str, str], devices: list[str], command: dict[str, Any]
) -> list[str]:
    response = client.post("/api/v1/commands", json={"devices": devices, "command": command}, headers=headers)
    assert response.status_code == 201, response.text
    return [c["command_uuid"] for c in response.json()["commands"]]


def handed_out_long_ago(russet: Russet) -> None:
    """Move every command handed out back past RESEND_AFTER, as if the device came back later."""
    from sqlalchemy import update

    from russet.mdm.queue import RESEND_AFTER
    from russet.mdm.tables import command_queue
    from russet.storage.db import utcnow

    with russet.storage.engine.begin() as conn:
        conn.execute(
            update(command_queue)
            .where(command_queue.c.status == "sent")
            .values(sent_at=utcnow() - RESEND_AFTER - RESEND_AFTER)
        )


def captured_device_information(device: SimDevice, command_uuid: str) -> dict[str, Any]:
    """The real DeviceInformation report from the captures, as this device would send it."""
    report = plistlib.loads((CAPTURES / "DeviceInformation.1.plist").read_bytes())
    report["UDID"] = device.udid
    report["CommandUUID"] = command_uuid
    report["QueryResponses"].update(
        {"SerialNumber": device.serial, "DeviceName": "Front desk iPad", "OSVersion": "18.1"}
    )
    return report


def test_enroll_command_and_inventory(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None

    [uuid] = queue(client, api_headers, [device.udid], {"RequestType": "DeviceInformation"})
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None
    assert command["CommandUUID"] == uuid
    assert command["Command"]["RequestType"] == "DeviceInformation"
    assert "SerialNumber" in command["Command"]["Queries"]

    reply = device.connect(client, captured_device_information(device, uuid))
    assert device.command_of(reply) is None

    shown = client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()
    assert shown["status"] == "acknowledged"
    assert shown["result"]["QueryResponses"]["HostName"] == "fruit.example.com"

    detail = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers).json()
    assert detail["enrolled"] is True
    assert detail["serial_number"] == device.serial
    assert detail["device_name"] == "Front desk iPad"
    assert detail["inventory"]["DeviceInformation"]["HostName"] == "fruit.example.com"
    assert detail["last_seen_at"] is not None
    listed = client.get("/api/v1/devices", headers=api_headers).json()["devices"]
    assert [d["id"] for d in listed] == [device.udid]


def test_notnow_is_retried_next_session_and_does_not_block(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [first] = queue(client, api_headers, [device.udid], {"RequestType": "InstallProfile", "Payload": "AAAA"})
    [second] = queue(client, api_headers, [device.udid], {"RequestType": "ProfileList"})

    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd and cmd["CommandUUID"] == first
    # NotNow: the next command is handed out in the same session...
    cmd = device.command_of(device.connect(client, device.report_message("NotNow", first)))
    assert cmd and cmd["CommandUUID"] == second
    # ...and the NotNow one is not offered again within it.
    assert (
        device.command_of(
            device.connect(client, device.report_message("Acknowledged", second, ProfileList=[]))
        )
        is None
    )
    # A new session (Idle) offers it again.
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd and cmd["CommandUUID"] == first
    assert device.command_of(device.connect(client, device.report_message("Acknowledged", first))) is None
    statuses = {
        c["command_uuid"]: c
        for c in client.get(f"/api/v1/devices/{device.udid}/commands", headers=api_headers).json()["commands"]
    }
    assert statuses[first]["status"] == "acknowledged" and statuses[first]["notnow_count"] == 1
    assert statuses[second]["status"] == "acknowledged"


def test_unanswered_command_is_reported_undeliverable_not_blocking(
    client: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [stuck] = queue(client, api_headers, [device.udid], {"RequestType": "SecurityInfo"})
    [after] = queue(client, api_headers, [device.udid], {"RequestType": "CertificateList"})
    attempts = russet.settings.max_delivery_attempts
    for _ in range(attempts):  # the device never answers it (e.g. the agent crashes on it)
        cmd = device.command_of(device.connect(client, device.report_message("Idle")))
        assert cmd and cmd["CommandUUID"] == stuck
        handed_out_long_ago(russet)  # the device comes back later, not concurrently
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd and cmd["CommandUUID"] == after
    shown = client.get(f"/api/v1/commands/{stuck}", headers=api_headers).json()
    assert shown["status"] == "undeliverable"
    assert str(attempts) in shown["status_reason"]


def test_error_report_is_stored_and_queue_moves_on(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [failing, nxt] = [
        queue(client, api_headers, [device.udid], {"RequestType": "RestartDevice"})[0],
        queue(client, api_headers, [device.udid], {"RequestType": "ProfileList"})[0],
    ]
    device.command_of(device.connect(client, device.report_message("Idle")))
    chain = [
        {
            "ErrorCode": 12021,
            "ErrorDomain": "MCMDMErrorDomain",
            "LocalizedDescription": "x",
            "USEnglishDescription": "Device is not supervised",
        }
    ]
    cmd = device.command_of(device.connect(client, device.report_message("Error", failing, ErrorChain=chain)))
    assert cmd and cmd["CommandUUID"] == nxt
    shown = client.get(f"/api/v1/commands/{failing}", headers=api_headers).json()
    assert shown["status"] == "error"
    assert "Device is not supervised" in shown["status_reason"]
    assert shown["result"]["ErrorChain"][0]["ErrorCode"] == 12021


def test_duplicate_and_unknown_reports_change_nothing(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [uuid] = queue(client, api_headers, [device.udid], {"RequestType": "ProfileList"})
    device.command_of(device.connect(client, device.report_message("Idle")))
    device.connect(
        client, device.report_message("Acknowledged", uuid, ProfileList=[{"PayloadIdentifier": "a"}])
    )
    # A re-sent report (the device did not see our 200) and one for a command we never sent.
    assert device.connect(client, device.report_message("Error", uuid)).status_code == 200
    assert device.connect(client, device.report_message("Acknowledged", "NOT-A-COMMAND")).status_code == 200
    shown = client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()
    assert shown["status"] == "acknowledged"
    assert shown["result"]["ProfileList"] == [{"PayloadIdentifier": "a"}]


def test_reenrollment_cancels_pending_commands_with_a_reason(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [uuid] = queue(client, api_headers, [device.udid], {"RequestType": "ProfileList"})
    # The device is updated, wiped and enrolls again: a new Authenticate and new push credentials.
    device.os_version, device.push_magic = "18.2", "A-NEW-PUSH-MAGIC"
    device.enroll(client)
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None
    shown = client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()
    assert shown["status"] == "cancelled"
    assert "Authenticate" in shown["status_reason"]


def test_checkout_disables_and_reports_queue(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    [uuid] = queue(client, api_headers, [device.udid], {"RequestType": "ProfileList"})
    response = device.check_in(
        client, {"MessageType": "CheckOut", "Topic": device.enrollment.topic, "UDID": device.udid}
    )
    assert response.status_code == 200
    detail = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers).json()
    assert detail["enrolled"] is False and detail["checked_out_at"] is not None
    assert client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()["status"] == "cancelled"


def test_queued_commands_survive_a_restart(russet: Russet, settings, make_device, api_headers) -> None:  # type: ignore[no-untyped-def]
    from russet.app import create_app

    device = make_device()
    with TestClient(create_app(russet), base_url="https://mdm.example.test") as first:
        device.enroll(first)
        [uuid] = queue(first, api_headers, [device.udid], {"RequestType": "ProfileList"})
    reopened = Russet.open(settings)  # a new process would do exactly this
    try:
        with TestClient(create_app(reopened), base_url="https://mdm.example.test") as second:
            cmd = device.command_of(device.connect(second, device.report_message("Idle")))
            assert cmd and cmd["CommandUUID"] == uuid
    finally:
        reopened.close()


def test_user_channel_gets_only_its_own_commands(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    user = {
        "UserID": "2F3C1E0A-1111-4222-8333-444455556666",
        "UserShortName": "alex",
        "UserLongName": "Alex Doe",
    }
    response = device.check_in(client, device.token_update_message(**user))
    assert response.status_code == 200, response.text
    user_channel = f"{device.udid}:{user['UserID']}"
    [uuid] = queue(client, api_headers, [user_channel], {"RequestType": "ProfileList"})
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None
    cmd = device.command_of(device.connect(client, device.report_message("Idle", **user)))
    assert cmd and cmd["CommandUUID"] == uuid


def test_command_to_many_devices(client: TestClient, make_device, api_headers: dict[str, str]) -> None:  # type: ignore[no-untyped-def]
    devices = [make_device() for _ in range(3)]
    for d in devices:
        d.enroll(client)
    uuids = queue(
        client, api_headers, [d.udid for d in devices], {"RequestType": "DeviceLock", "Message": "Lost"}
    )
    assert len(set(uuids)) == 3
    for d, uuid in zip(devices, uuids, strict=True):
        cmd = d.command_of(d.connect(client, d.report_message("Idle")))
        assert cmd and cmd["CommandUUID"] == uuid and cmd["Command"]["Message"] == "Lost"
    shown = client.get(f"/api/v1/commands/{uuids[0]}", headers=api_headers).json()
    assert {x["device"] for x in shown["deliveries"]} == {d.udid for d in devices}
    assert {x["status"] for x in shown["deliveries"]} == {"sent"}
