"""`DeviceService` asks APNs for pushes only through its `DevicePushes` port (russet.mdm.ports):
queueing writes the push requests in the enqueue's transaction and wakes the pusher, forgetting a
device requests a push, and a device's push state comes from the port. A recording port stands in
for `russet.push` here, so these tests fail if the service reaches APNs any other way."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, func, select

from russet.apns.tables import apns_push
from russet.kernel.errors import Invalid, NotFound, Refused
from russet.mdm.devices import DeviceService
from russet.mdm.reenroll import ReenrollmentStore
from russet.mdm.signatures import SeenSignatures
from russet.mdm.tables import command_queue
from russet.runtime import Russet
from simulators.device import SimDevice


class RecordingPushes:
    """A DevicePushes port that records what the service asks of it."""

    def __init__(self) -> None:
        self.in_transaction: list[tuple[list[str], int]] = []  # ids, queued rows seen in that transaction
        self.requested: list[list[str]] = []
        self.wakes = 0

    def request_in(self, conn: Connection, enrollment_ids: list[str]) -> None:
        queued = conn.execute(select(func.count()).select_from(command_queue)).scalar_one()
        self.in_transaction.append((list(enrollment_ids), queued))

    def request(self, enrollment_ids: Sequence[str]) -> None:
        self.requested.append(list(enrollment_ids))

    def wake(self) -> None:
        self.wakes += 1

    def device_state(self, enrollment_id: str) -> dict[str, Any] | None:
        return {"recorded_for": enrollment_id}


@pytest.fixture
def pushes() -> RecordingPushes:
    return RecordingPushes()


@pytest.fixture
def devices(russet: Russet, pushes: RecordingPushes) -> DeviceService:
    engine = russet.storage.engine
    return DeviceService(
        russet.storage.enrollments,
        russet.storage.queue,
        russet.storage.bootstrap,
        ReenrollmentStore(engine),
        SeenSignatures(engine),
        pushes=pushes,
    )


def _push_rows(russet: Russet) -> int:
    with russet.storage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(apns_push)).scalar_one())


def test_queueing_requests_pushes_inside_the_enqueue_and_wakes_once(
    russet: Russet, client: TestClient, device: SimDevice, devices: DeviceService, pushes: RecordingPushes
) -> None:
    device.enroll(client)
    before = _push_rows(russet)
    sent = devices.send_command([device.udid], {"RequestType": "ProfileList"}, created_by="tests")
    assert sent["request_type"] == "ProfileList" and [c["device"] for c in sent["commands"]] == [device.udid]
    # Called once, in the transaction that already holds the queued row.
    assert pushes.in_transaction == [([device.udid], 1)]
    assert pushes.wakes == 1 and pushes.requested == []
    assert _push_rows(russet) == before  # nothing reached APNs's tables but through the port


def test_a_refused_command_asks_for_no_push(
    client: TestClient, device: SimDevice, devices: DeviceService, pushes: RecordingPushes
) -> None:
    device.enroll(client)
    with pytest.raises(Invalid):
        devices.send_command([device.udid], {"RequestType": ""}, created_by="tests")
    with pytest.raises(NotFound):
        devices.send_command(["NO-SUCH-DEVICE"], {"RequestType": "ProfileList"}, created_by="tests")
    assert pushes.in_transaction == [] and pushes.wakes == 0


def test_forget_requests_a_push_and_show_reads_push_state_from_the_port(
    client: TestClient, device: SimDevice, devices: DeviceService, pushes: RecordingPushes
) -> None:
    device.enroll(client)
    assert devices.show_device(device.udid)["push"] == {"recorded_for": device.udid}
    assert devices.forget(device.udid) == {"device": device.udid, "forgotten": True}
    assert pushes.requested == [[device.udid]]
    with pytest.raises(NotFound):
        devices.forget("NO-SUCH-DEVICE")
    assert pushes.requested == [[device.udid]]


def _answer_device_information(
    russet: Russet, client: TestClient, device: SimDevice, **responses: Any
) -> None:
    """Queue DeviceInformation, let the device fetch it and answer with `responses`."""
    sent = russet.devices.send_command(
        [device.udid], {"RequestType": "DeviceInformation"}, created_by="tests"
    )
    uuid = sent["commands"][0]["command_uuid"]
    command = SimDevice.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["CommandUUID"] == uuid
    device.connect(client, device.report_message("Acknowledged", uuid, QueryResponses=responses))


def _queued(russet: Russet) -> int:
    with russet.storage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(command_queue)).scalar_one())


def test_a_command_the_device_cannot_run_is_refused_naming_it_and_nothing_is_queued(
    russet: Russet,
    client: TestClient,
    make_device,
    api_headers: dict[str, str],  # type: ignore[no-untyped-def]
) -> None:
    phone, unknown = make_device(), make_device()
    phone.enroll(client)
    unknown.enroll(client)
    _answer_device_information(
        russet, client, phone, ProductName="iPhone15,2", OSVersion="17.4", IsSupervised=False
    )
    before = _queued(russet)
    lost_mode = {"RequestType": "EnableLostMode", "Message": "Call us"}

    answer = client.post(
        "/api/v1/commands",
        json={"devices": [phone.udid, unknown.udid], "command": lost_mode},
        headers=api_headers,
    )
    assert answer.status_code == 403
    assert f"{phone.udid}: EnableLostMode needs a supervised device on iOS" in answer.json()["detail"]
    assert unknown.udid not in answer.json()["detail"]  # nothing known of it yet: never a reason
    assert _queued(russet) == before  # all or nothing: not even the unknown device got it

    # Facts not known yet never refuse; a command the phone can run is queued.
    assert russet.devices.send_command([unknown.udid], lost_mode, created_by="tests")["commands"]
    assert russet.devices.send_command([phone.udid], {"RequestType": "ProfileList"}, created_by="tests")
    assert _queued(russet) == before + 2


def test_a_refusal_names_at_most_twenty_targets_and_counts_the_rest(
    russet: Russet,
    client: TestClient,
    make_device,  # type: ignore[no-untyped-def]
) -> None:
    phones = [make_device() for _ in range(22)]
    for phone in phones:
        phone.enroll(client)
        _answer_device_information(
            russet, client, phone, ProductName="iPhone15,2", OSVersion="17.4", IsSupervised=False
        )
    with pytest.raises(Refused) as refused:
        russet.devices.send_command(
            [p.udid for p in phones], {"RequestType": "EnableLostMode", "Message": "x"}, created_by="t"
        )
    assert str(refused.value).count("needs a supervised device") == 20 and str(refused.value).endswith(
        "and 2 more"
    )
