"""The MDM core publishes CommandAnswered when a device answers a command (Acknowledged, Error,
CommandFormatError), once per command; NotNow, Idle and duplicate reports publish nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from russet.kernel.events import CommandAnswered, DeviceFactsChanged, InventoryChanged
from russet.runtime import Russet
from simulators.device import SimDevice


def _next(client: TestClient, device: SimDevice) -> str:
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None
    return str(command["CommandUUID"])


def test_answers_are_published_once_and_not_now_is_not_an_answer(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    heard: list[CommandAnswered] = []
    russet.events.subscribe(CommandAnswered, heard.append)
    device.enroll(client)
    send = russet.devices.send_command
    first = send([device.udid], {"RequestType": "ProfileList"}, created_by="tests")["commands"][0]
    assert _next(client, device) == first["command_uuid"]
    device.connect(client, device.report_message("NotNow", first["command_uuid"]))
    assert heard == []
    assert _next(client, device) == first["command_uuid"]
    listed: list[dict[str, Any]] = [{"PayloadIdentifier": "com.example.a", "PayloadUUID": "U"}]
    device.connect(client, device.report_message("Acknowledged", first["command_uuid"], ProfileList=listed))
    device.connect(client, device.report_message("Acknowledged", first["command_uuid"], ProfileList=listed))
    assert len(heard) == 1  # the duplicate changed nothing
    answered = heard[0]
    assert (answered.device_id, answered.command_uuid, answered.request_type, answered.status) == (
        device.udid,
        first["command_uuid"],
        "ProfileList",
        "Acknowledged",
    )
    assert answered.result["ProfileList"] == listed

    chain = [{"ErrorCode": 4001, "ErrorDomain": "MCProfileErrorDomain", "USEnglishDescription": "no"}]
    second = send([device.udid], {"RequestType": "RemoveProfile", "Identifier": "x"}, created_by="tests")
    uuid = second["commands"][0]["command_uuid"]
    assert _next(client, device) == uuid
    device.connect(client, device.report_message("Error", uuid, ErrorChain=chain))
    assert [(e.request_type, e.status, e.result["ErrorChain"]) for e in heard[1:]] == [
        ("RemoveProfile", "Error", chain)
    ]
    # An answer to no command of this device is not published.
    device.connect(client, device.report_message("Acknowledged", "NOT-A-COMMAND"))
    assert len(heard) == 2


def test_only_answers_facts_are_read_from_publish_facts_changed(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    """A ProfileList answer is inventory, not facts: smart groups and declarations are not
    re-evaluated on the device's request for it (the blueprints still hear of it, for drift)."""
    facts: list[DeviceFactsChanged] = []
    inventory: list[InventoryChanged] = []
    device.enroll(client)
    russet.events.subscribe(DeviceFactsChanged, facts.append)
    russet.events.subscribe(InventoryChanged, inventory.append)
    send = russet.devices.send_command
    listed = send([device.udid], {"RequestType": "ProfileList"}, created_by="tests")["commands"][0]
    assert _next(client, device) == listed["command_uuid"]
    device.connect(client, device.report_message("Acknowledged", listed["command_uuid"], ProfileList=[]))
    assert facts == []
    assert [(e.request_type, e.facts) for e in inventory] == [("ProfileList", False)]

    info = send([device.udid], {"RequestType": "DeviceInformation"}, created_by="tests")["commands"][0]
    assert _next(client, device) == info["command_uuid"]
    answer = {"QueryResponses": {"DeviceName": "Alex's iPhone", "OSVersion": "17.4"}}
    device.connect(client, device.report_message("Acknowledged", info["command_uuid"], **answer))
    assert [e.device_ids for e in facts] == [(device.udid,)]
    assert [(e.request_type, e.facts) for e in inventory[1:]] == [("DeviceInformation", True)]
