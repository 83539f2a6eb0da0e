"""Groups over HTTP and the CLI, and a simulated device joining a smart group as it reports."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi.testclient import TestClient

from russet.config import Settings
from russet.runtime import Russet
from simulators.device import SimDevice
from tests.groups_support import add_device
from tests.test_e2e import captured_device_information, queue


def test_a_device_joins_a_smart_group_when_its_inventory_changes(
    client: TestClient, russet: Russet, make_device, api_headers: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    created = client.post(
        "/api/v1/groups",
        json={"name": "Supervised 18.2", "query": 'os_version >= "18.2" and supervised = true'},
        headers=api_headers,
    )
    assert created.status_code == 201, created.text
    enrolled = client.post(
        "/api/v1/groups", json={"name": "Enrolled", "query": "enrolled = true"}, headers=api_headers
    )
    assert enrolled.status_code == 201
    device: SimDevice = make_device()
    other: SimDevice = make_device()
    device.enroll(client)
    other.enroll(client)

    def members(name: str) -> list[str]:
        return client.get(f"/api/v1/groups/{name}", headers=api_headers).json()["members"]

    assert members("Enrolled") == sorted([device.udid, other.udid])  # TokenUpdate completed enrollment
    assert members("Supervised 18.2") == []  # 18.1 from Authenticate, supervision unknown

    [uuid] = queue(client, api_headers, [device.udid], {"RequestType": "DeviceInformation"})
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is not None
    report = captured_device_information(device, uuid)
    report["QueryResponses"].update({"OSVersion": "18.2", "IsSupervised": True})
    device.connect(client, report)
    assert members("Supervised 18.2") == [device.udid]
    assert client.get("/api/v1/groups/Supervised 18.2", headers=api_headers).json()["member_count"] == 1

    device.check_in(
        client, {"MessageType": "CheckOut", "Topic": device.enrollment.topic, "UDID": device.udid}
    )
    assert members("Enrolled") == [other.udid]


def test_groups_api(client: TestClient, russet: Russet, api_headers: dict[str, str]) -> None:
    a = add_device(russet, "AAAA-1", serial="C02AAA", supervised=True)
    b = add_device(russet, "BBBB-2", serial="C02BBB", supervised=False)

    def call(method: str, path: str, body: object = None) -> tuple[int, object]:
        response = client.request(method, f"/api/v1/groups{path}", json=body, headers=api_headers)
        return response.status_code, response.json()

    assert call("POST", "", {"name": "Lab"})[0] == 201
    code, smart = call(
        "POST", "", {"name": "Supervised", "query": "supervised = true", "description": "managed"}
    )
    assert code == 201 and smart["kind"] == "smart" and smart["member_count"] == 1  # type: ignore[index]
    assert call("POST", "/Lab/members", {"devices": ["c02bbb"]}) == (
        200,
        {"group": "Lab", "added": 1, "members": 1},
    )
    assert call("POST", "/Lab/import", {"csv": "serial\nC02AAA\n"})[1]["members"] == 2  # type: ignore[index]
    assert call("POST", "/Lab/members/remove", {"devices": ["AAAA-1"]})[1]["members"] == 1  # type: ignore[index]
    assert call("GET", "/Lab")[1]["members"] == [b]  # type: ignore[index]
    listed = call("GET", "?limit=1")[1]
    assert [g["name"] for g in listed["groups"]] == ["Lab"] and listed["next"] == "Lab"  # type: ignore[index]
    assert call("POST", "/preview", {"query": "supervised = false"})[1] == {
        "query": "supervised = false",
        "count": 1,
        "devices": [b],
    }
    assert call("POST", "/scope", {"include": ["Supervised", "Lab"], "exclude": ["Lab"]})[1] == {
        "devices": [a],
        "next": None,
    }
    code, renamed = call("PATCH", "/Lab", {"name": "Lab 1", "description": "room 1"})
    assert code == 200 and renamed["name"] == "Lab 1" and renamed["description"] == "room 1"  # type: ignore[index]

    # Bad input: a clear 4xx, nothing stored.
    code, body = call("POST", "", {"name": "Loop", "query": 'in_group("Loop")'})
    assert code == 400 and "cyclic group definition: Loop -> Loop" in body["detail"]  # type: ignore[index]
    code, body = call("PATCH", "/Supervised", {"query": 'in_group("Supervised") or supervised = true'})
    assert code == 400 and "cyclic" in body["detail"]  # type: ignore[index]
    assert call("GET", "/Supervised")[1]["query"] == "supervised = true"  # type: ignore[index]
    code, body = call("POST", "/preview", {"query": 'modle = "iPad"'})
    assert code == 400 and "unknown field 'modle'" in body["detail"] and "valid fields:" in body["detail"]  # type: ignore[index]
    code, body = call("POST", "/Lab 1/import", {"csv": "C02AAA\nNOPE\n"})
    assert code == 400 and "line 2: no device with UDID or serial 'NOPE'" in body["detail"]  # type: ignore[index]
    assert call("GET", "/Lab 1")[1]["member_count"] == 1  # type: ignore[index]
    assert call("GET", "/Loop")[0] == 404
    assert call("POST", "/Supervised/members", {"devices": ["AAAA-1"]})[0] == 409
    assert call("POST", "", {"name": "Lab 1"})[0] == 409
    assert call("POST", "", {"name": "X", "query": "supervised = true", "extra": 1})[0] == 422
    assert call("POST", "/scope", {"include": ["Nope"]})[0] == 404
    assert call("DELETE", "/Lab 1") == (200, {"deleted": "Lab 1", "members": 1})
    assert call("GET", "/Lab 1")[0] == 404


def test_groups_cli(run, settings: Settings, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = Russet.open(settings, migrate_db=False)
    try:
        a = add_device(server, "AAAA-1", serial="C02AAA", os_version="17.5")
        b = add_device(server, "BBBB-2", serial="C02BBB", os_version="16.1")
    finally:
        server.close()
    assert run("group", "create", "Lab")[0] == 0
    code, out = run("group", "create", "Modern", "--query", "os_version >= 17", "--json")
    assert code == 0 and json.loads(out)["member_count"] == 1
    assert run("group", "add", "Lab", "C02BBB") == (0, "Lab: 1 added, 1 members\n")
    csv_file = tmp_path / "lab.csv"
    csv_file.write_text("udid\nAAAA-1\n")
    assert run("group", "import", "Lab", str(csv_file)) == (0, "Lab: 1 rows, 1 added, 0 removed, 2 members\n")
    code, out = run("group", "show", "Lab", "--json")
    assert json.loads(out)["members"] == [a, b]
    code, out = run("group", "scope", "--include", "Lab", "--exclude", "Modern", "--json")
    assert json.loads(out) == {"devices": [b], "next": None}
    code, out = run("group", "preview", "os_version < 17")
    assert out == f"1 devices\n{b}\n"
    code, out = run("group", "list")
    assert "Modern" in out and "os_version >= 17" in out
    assert run("group", "remove", "Lab", "AAAA-1") == (0, "Lab: 1 removed, 1 members\n")

    code, out = run("group", "update", "Modern", "--query", 'in_group("Modern")')
    assert code == 1 and out.startswith("Error: query: cyclic group definition: Modern -> Modern")
    code, out = run("group", "create", "Bad", "--query", "color = 1")
    assert code == 1 and "unknown field 'color'" in out and len(out.strip().splitlines()) == 1
    csv_file.write_text("AAAA-1\nnope\n")
    code, out = run("group", "import", "Lab", str(csv_file))
    assert code == 1 and "line 2: no device with UDID or serial 'nope'" in out
    code, out = run("group", "show", "Nope")
    assert code == 1 and out == "Error: no group named 'Nope'\n"
    assert run("group", "delete", "Lab") == (0, "deleted group Lab (1 members)\n")
