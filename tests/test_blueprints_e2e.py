"""Issue #13's must-show, end to end on the real runtime (SQLite and PostgreSQL): simulated devices
speak the MDM protocol; a smart group picks one up when its inventory changes, the blueprint puts
the library's profile on it (the device answers InstallProfile and ProfileList), a profile removed
on the device is put back (drift), leaving the group takes it off; two blueprints may not claim
one PayloadIdentifier (409, nothing stored).

Nothing here calls the reconciler's internals: devices answer through /mdm/connect, the MDM core
publishes what they answered, and the periodic task (`blueprints.reconcile`) does the rest.
"""

from __future__ import annotations

import plistlib
from collections import Counter
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.blueprints.tables import blueprint_device_items, blueprints
from russet.pki import verify_attached
from russet.runtime import Russet
from simulators.device import SimDevice
from tests.library_support import profile, wifi, xml


class Agent:
    """A simulated device's MDM agent: keeps the profiles it holds and answers each command as a
    device would (InstallProfile checks Russet's signature and installs, ProfileList lists)."""

    def __init__(self, device: SimDevice, client: TestClient, russet: Russet, model: str) -> None:
        self.device, self.client, self.russet, self.model = device, client, russet, model
        self.profiles: dict[str, str] = {}  # PayloadIdentifier -> PayloadUUID
        self.seen: Counter[str] = Counter()  # RequestType -> commands answered

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        body = command["Command"]
        kind = body["RequestType"]
        self.seen[kind] += 1
        if kind == "InstallProfile":
            verified = verify_attached(body["Payload"])
            assert verified.certificate == self.russet.authority.signer_certificate
            installed = plistlib.loads(verified.content)
            self.profiles[installed["PayloadIdentifier"]] = installed["PayloadUUID"]
            return {}
        if kind == "RemoveProfile":
            self.profiles.pop(body["Identifier"], None)
            return {}
        if kind == "ProfileList":
            return {
                "ProfileList": [
                    {"PayloadIdentifier": i, "PayloadUUID": u, "IsManaged": True}
                    for i, u in sorted(self.profiles.items())
                ]
            }
        if kind == "DeviceInformation":
            return {"QueryResponses": {"Model": self.model, "SerialNumber": self.device.serial}}
        return {}

    def drain(self) -> None:
        """Connect until the server has nothing more for this device, answering everything."""
        reply = self.device.connect(self.client, self.device.report_message("Idle"))
        for _ in range(50):
            command = self.device.command_of(reply)
            if command is None:
                return
            answers = self.answer(command)
            reply = self.device.connect(
                self.client, self.device.report_message("Acknowledged", command["CommandUUID"], **answers)
            )
        raise AssertionError("the server kept sending commands")


def periodic_pass(russet: Russet) -> dict[str, Any]:
    """What the server's `blueprints.reconcile` task runs."""
    [task] = [t for t in russet.tasks() if t.name == "blueprints.reconcile"]
    answer: dict[str, Any] = task.run()  # type: ignore[assignment]
    return answer


def settle(russet: Russet, agents: list[Agent]) -> list[dict[str, Any]]:
    """Periodic passes and device connections until a pass queues nothing; the passes' answers."""
    passes = []
    for _ in range(10):
        answer = periodic_pass(russet)
        passes.append(answer)
        for agent in agents:
            agent.drain()
        if answer.get("commands_total", 0) == 0:
            return passes
    raise AssertionError(f"the reconciler did not settle: {passes}")


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_smart_group_blueprint_install_drift_and_leaving_scope(
    client: TestClient, russet: Russet, api_headers: dict[str, str], make_device: Any
) -> None:
    mac: SimDevice = make_device()
    other: SimDevice = make_device()
    for d in (mac, other):
        d.enroll(client)
    a = Agent(mac, client, russet, model="iPhone15,2")
    b = Agent(other, client, russet, model="iPhone15,2")

    group = client.post(
        "/api/v1/groups", json={"name": "Mac14", "query": 'model = "Mac14,2"'}, headers=api_headers
    )
    assert group.status_code == 201, group.text
    uploaded = client.post(
        "/api/v1/profiles",
        files={"file": ("wifi.mobileconfig", xml(profile(wifi(), identifier="com.example.wifi")))},
        data={"name": "wifi"},
        headers=api_headers,
    )
    assert uploaded.status_code == 201, uploaded.text
    library_uuid = russet.library.show("wifi")["versions"][0]["payload_uuid"]
    body = {"name": "Office", "profiles": [{"ref": "wifi"}], "scope": {"include": [group.json()["id"]]}}
    made = client.post("/api/v1/blueprints", json=body, headers=api_headers)
    assert made.status_code == 201, made.text

    # A PayloadIdentifier belongs to one blueprint: a second naming the profile is a 409, nothing stored.
    copy = {"name": "Copy", "profiles": [{"ref": "com.example.wifi"}]}
    dup = client.post("/api/v1/blueprints", json=copy, headers=api_headers)
    assert dup.status_code == 409, dup.text
    assert "com.example.wifi" in dup.json()["detail"] and "'Office'" in dup.json()["detail"]
    assert count(russet, blueprints) == 1

    # Nobody is in the group yet: the first (full) pass does nothing.
    first = settle(russet, [a, b])
    assert first[0]["commands_total"] == 0 and a.profiles == {} and b.profiles == {}

    # The device's inventory changes (it answers DeviceInformation): the smart group picks it up
    # and the next periodic pass reconciles that device only, as a device with news.
    a.model = "Mac14,2"
    ask = {"RequestType": "DeviceInformation", "Queries": ["Model", "SerialNumber"]}
    russet.devices.send_command([mac.udid], ask, created_by="tests")
    a.drain()
    assert russet.groups.groups_of(mac.udid) == ["Mac14"]
    passes = settle(russet, [a, b])
    assert passes[0]["devices"] == 1 and passes[0]["commands"] == {"install_profile": 1}
    assert a.profiles == {"com.example.wifi": library_uuid} and b.profiles == {}
    assert a.seen["InstallProfile"] == 1 and a.seen["ProfileList"] >= 1  # the reconciler checked
    state = client.get(f"/api/v1/blueprints/devices/{mac.udid}", headers=api_headers)
    assert state.status_code == 200, state.text
    [item] = state.json()["items"]
    assert (item["item"], item["state"], item["actual"]) == ("com.example.wifi", "in_sync", library_uuid)
    assert state.json()["profiles_reported_at"] is not None

    # Drift: the profile is removed on the device; its next ProfileList answer shows it, and the
    # reconciler installs it again.
    del a.profiles["com.example.wifi"]
    russet.devices.send_command([mac.udid], {"RequestType": "ProfileList"}, created_by="tests")
    a.drain()
    passes = settle(russet, [a, b])
    assert passes[0]["commands"] == {"install_profile": 1}
    assert a.profiles == {"com.example.wifi": library_uuid} and a.seen["InstallProfile"] == 2

    # Leaving scope: the device's model changes, it leaves the group, the profile comes off.
    a.model = "Mac15,1"
    russet.devices.send_command(
        [mac.udid], {"RequestType": "DeviceInformation", "Queries": ["Model"]}, created_by="tests"
    )
    a.drain()
    assert russet.groups.groups_of(mac.udid) == []
    passes = settle(russet, [a, b])
    assert passes[0]["commands"] == {"remove_profile": 1}
    assert a.profiles == {} and a.seen["RemoveProfile"] == 1
    assert count(russet, blueprint_device_items) == 0
    assert b.seen["InstallProfile"] == 0 and b.seen["RemoveProfile"] == 0
