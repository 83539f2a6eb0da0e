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
from russet.kernel.errors import Invalid, NotFound
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
