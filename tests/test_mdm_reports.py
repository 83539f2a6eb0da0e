"""The MDM core's read model of device reports (`russet.mdm.reports`): what simulated devices
answered (ProfileList, ManagedApplicationList, DeviceInformation) and what is in flight, in bulk."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from russet.mdm.reports import DeviceReports
from russet.runtime import Russet
from russet.storage.db import utcnow
from simulators.device import SimDevice


def _answer(client: TestClient, device: SimDevice, **answers: Any) -> dict[str, Any]:
    """Fetch the device's next command and acknowledge it with `answers`; the command."""
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None
    device.connect(client, device.report_message("Acknowledged", command["CommandUUID"], **answers))
    return command


def test_reports_are_what_devices_answered_read_in_a_few_queries(
    client: TestClient, russet: Russet, make_device: Any
) -> None:
    a, b, quiet = make_device(), make_device(), make_device()
    for d in (a, b, quiet):
        d.enroll(client)
    before = utcnow() - timedelta(seconds=1)

    russet.devices.send_command([a.udid], {"RequestType": "ProfileList"}, created_by="tests")
    listed = [
        {"PayloadIdentifier": "com.example.wifi", "PayloadUUID": "U-1", "IsManaged": True},
        {"PayloadIdentifier": "com.example.vpn", "PayloadUUID": "U-2", "SignerCertificates": [b"x"]},
        {"PayloadDisplayName": "no identifier"},
    ]
    _answer(client, a, ProfileList=listed)
    russet.devices.send_command(
        [a.udid], {"RequestType": "DeviceInformation", "Queries": ["DeviceName", "SerialNumber", "Model"]},
        created_by="tests",
    )
    _answer(
        client, a, QueryResponses={"DeviceName": "Ada's Mac", "SerialNumber": "C02X1", "Model": "Mac14,2"}
    )
    russet.devices.send_command([b.udid], {"RequestType": "ManagedApplicationList"}, created_by="tests")
    _answer(client, b, ManagedApplicationList={"com.example.app": {"Status": "Managed"}, "bad": "x"})
    # Two commands in flight to b: one queued, one handed out and not answered.
    russet.devices.send_command([b.udid], {"RequestType": "ProfileList"}, created_by="tests")
    russet.devices.send_command([b.udid], {"RequestType": "SecurityInfo"}, created_by="tests")
    assert b.command_of(b.connect(client, b.report_message("Idle"))) is not None

    queries: list[str] = []
    event.listen(russet.storage.engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    got = DeviceReports(russet.storage.engine).reports([a.udid, b.udid, quiet.udid, "unknown"])
    selects = [q for q in queries if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3  # one chunk: enrollments, inventory, in-flight counts

    assert set(got) == {a.udid, b.udid, quiet.udid}
    ra, rb, rq = got[a.udid], got[b.udid], got[quiet.udid]
    assert ra.profiles == {"com.example.wifi": "U-1", "com.example.vpn": "U-2"}
    assert ra.profiles_at is not None and ra.profiles_at >= before and ra.profiles_at.tzinfo is not None
    assert (ra.device_name, ra.serial_number, ra.model) == ("Ada's Mac", "C02X1", "Mac14,2")
    assert ra.facts_at is not None and ra.facts_at >= ra.profiles_at
    assert ra.in_flight == 0 and ra.apps == {}
    assert rb.apps == {"com.example.app": "Managed"} and rb.apps_at is not None
    assert rb.profiles == {} and rb.profiles_at is None and rb.in_flight == 2
    assert rq.profiles_at is None and rq.facts_at is None and rq.in_flight == 0

    # A later, shorter answer replaces the list: a profile removed on the device is gone from it.
    russet.devices.send_command([a.udid], {"RequestType": "ProfileList"}, created_by="tests")
    _answer(client, a, ProfileList=listed[:1])
    again = DeviceReports(russet.storage.engine).reports([a.udid])[a.udid]
    assert again.profiles == {"com.example.wifi": "U-1"}
    assert again.profiles_at is not None and again.profiles_at >= ra.profiles_at
