"""Declarative device management end to end (issue #14): a simulated device's DDM engine syncs
(tokens -> items -> each declaration -> status) against the real server; tokens follow content;
status reports reach the API and smart groups; bad input is refused and stores nothing."""

from __future__ import annotations

import base64
import json
import plistlib
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.declarative import status as status_module
from russet.runtime import Russet
from simulators.device import SimDevice

PASSCODE = "com.apple.configuration.passcode.settings"
ACTIVATION = "com.apple.activation.simple"
SUBSCRIPTIONS = "com.apple.configuration.management.status-subscriptions"
ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific"


def create(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/declarations", json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def assign(
    client: TestClient, headers: dict[str, str], identifier: str, **targets: list[str]
) -> dict[str, Any]:
    response = client.post(f"/api/v1/declarations/{identifier}/assignments", json=targets, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def pending(client: TestClient, device: SimDevice) -> list[str]:
    """Every command the device is handed now (acknowledging each), by RequestType."""
    seen = []
    response = device.connect(client, device.report_message("Idle"))
    while (command := SimDevice.command_of(response)) is not None:
        seen.append(command["Command"]["RequestType"])
        response = device.connect(client, device.report_message("Acknowledged", command["CommandUUID"]))
    return seen


def passcode_with_activation(client: TestClient, headers: dict[str, str], length: int = 6) -> None:
    create(
        client, headers, {"type": PASSCODE, "identifier": "passcode", "payload": {"MinimumLength": length}}
    )
    create(
        client,
        headers,
        {"type": ACTIVATION, "identifier": "activation", "payload": {"StandardConfigurations": ["passcode"]}},
    )


def test_a_device_converges_and_only_a_changed_declaration_is_fetched_again(
    client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    passcode_with_activation(client, api_headers)
    assert assign(client, api_headers, "activation", devices=[device.udid])["commanded"] == 1
    assert pending(client, device) == ["DeclarativeManagement"]

    # The activation brings the configuration it names.
    assert sorted(device.ddm_sync(client)) == ["activation", "passcode"]
    assert device.ddm.held[("configuration", "passcode")]["Payload"] == {"MinimumLength": 6}
    state = client.get(f"/api/v1/declarations/devices/{device.udid}", headers=api_headers).json()
    assert {d["identifier"]: d["state"] for d in state["declarations"]} == {
        "activation": "active",
        "passcode": "active",
    }
    assert device.ddm_sync(client) == []  # converged: the token did not move
    assert pending(client, device) == []

    before = {
        d["identifier"]: d["server_token"]
        for d in client.get("/api/v1/declarations", headers=api_headers).json()["declarations"]
    }
    changed = client.put(
        "/api/v1/declarations/passcode", json={"payload": {"MinimumLength": 8}}, headers=api_headers
    )
    assert changed.status_code == 200 and changed.json()["changed"] and changed.json()["version"] == 2
    after = {
        d["identifier"]: d["server_token"]
        for d in client.get("/api/v1/declarations", headers=api_headers).json()["declarations"]
    }
    assert after["activation"] == before["activation"] and after["passcode"] != before["passcode"]
    assert pending(client, device) == ["DeclarativeManagement"]  # once for the change
    assert device.ddm_sync(client) == ["passcode"]  # only the changed one is fetched again
    assert device.ddm.held[("configuration", "passcode")]["Payload"] == {"MinimumLength": 8}

    # The same content again is no change: no new version, no command.
    same = client.put(
        "/api/v1/declarations/passcode", json={"payload": {"MinimumLength": 8}}, headers=api_headers
    )
    assert same.json()["changed"] is False and same.json()["version"] == 2
    assert pending(client, device) == []
    assert client.post("/api/v1/declarations/refresh", headers=api_headers).json() == {
        "changed": 0,
        "commanded": 0,
    }

    # A declaration not in the device's set is not there for it.
    create(client, api_headers, {"type": PASSCODE, "identifier": "other", "payload": {"MinimumLength": 4}})
    assert device.declarative(client, "declaration/configuration/other").status_code == 404
    assert device.declarative(client, "declaration/activation/passcode").status_code == 404

    # Unassigned: the set empties, the device is told once and drops them.
    gone = client.request(
        "DELETE",
        "/api/v1/declarations/activation/assignments",
        json={"devices": [device.udid]},
        headers=api_headers,
    )
    assert gone.json()["removed"] == 1 and gone.json()["commanded"] == 1
    assert pending(client, device) == ["DeclarativeManagement"]
    device.ddm_sync(client)
    assert device.ddm.held == {}


def test_a_status_report_with_errors_appears_in_the_api(
    client: TestClient, device: SimDevice, api_headers: dict[str, str], russet: Russet
) -> None:
    device.enroll(client)
    passcode_with_activation(client, api_headers)
    assign(client, api_headers, "activation", devices=[device.udid])
    device.ddm.failures["passcode"] = [
        {"code": "Error.ConfigurationCannotBeApplied", "description": "the passcode policy cannot be applied"}
    ]
    device.ddm_sync(client, {"device.operating-system.version": "18.1"})

    shown = client.get("/api/v1/declarations/passcode/status", headers=api_headers).json()
    assert shown["states"] == {"failed": 1}
    assert (
        "1 failed: Error.ConfigurationCannotBeApplied: the passcode policy cannot be applied"
        in shown["summary"]
    )
    mine = client.get(f"/api/v1/declarations/devices/{device.udid}", headers=api_headers).json()
    passcode = next(d for d in mine["declarations"] if d["identifier"] == "passcode")
    assert passcode["state"] == "failed" and passcode["valid"] == "invalid"
    assert passcode["reasons"][0]["code"] == "Error.ConfigurationCannotBeApplied"
    summary = client.get("/api/v1/declarations/summary", headers=api_headers).json()
    assert "1 devices on 18.1" in summary["summary"]
    assert any("failed: Error.ConfigurationCannotBeApplied" in line for line in summary["summary"])
    # The whole report is kept.
    row = russet.declarations._store.device(device.udid)  # noqa: SLF001
    assert row is not None and json.loads(row["last_full_report"])["FullReport"] is True


def test_a_status_subscription_value_changes_a_smart_groups_members(
    client: TestClient, device: SimDevice, api_headers: dict[str, str], russet: Russet
) -> None:
    device.enroll(client)
    russet.groups.create("Non-compliant", query="passcode_compliant = false")
    russet.groups.create("Battery", query='battery_health = "service-recommended"')
    create(
        client,
        api_headers,
        {
            "type": SUBSCRIPTIONS,
            "identifier": "subscriptions",
            "payload": {
                "StatusItems": [{"Name": "passcode.is-compliant"}, {"Name": "device.power.battery-health"}]
            },
        },
    )
    assign(client, api_headers, "subscriptions", devices=[device.udid])
    # Whoever is in the non-compliant group is given a stricter passcode.
    create(client, api_headers, {"type": PASSCODE, "identifier": "strict", "payload": {"MinimumLength": 10}})
    assign(client, api_headers, "strict", groups=["Non-compliant"])
    pending(client, device)

    device.ddm_sync(
        client, {"passcode.is-compliant": False, "device.power.battery-health": "service-recommended"}
    )
    assert device.udid in russet.groups.show("Non-compliant")["members"]
    assert device.udid in russet.groups.show("Battery")["members"]
    assert pending(client, device) == ["DeclarativeManagement"]  # its set grew with the group
    assert device.ddm_sync(client, {"passcode.is-compliant": False}, full=False) == ["strict"]

    device.ddm_sync(client, {"passcode.is-compliant": True}, full=False)
    assert device.udid not in russet.groups.show("Non-compliant")["members"]
    assert device.udid in russet.groups.show("Battery")["members"]  # an incremental value is kept
    assert pending(client, device) == ["DeclarativeManagement"]
    device.ddm_sync(client)
    assert ("configuration", "strict") not in device.ddm.held


def test_a_device_enrolled_again_with_the_same_udid_gets_its_declarations_again(
    client: TestClient, device: SimDevice, make_device: Any, api_headers: dict[str, str], russet: Russet
) -> None:
    device.enroll(client)
    passcode_with_activation(client, api_headers)
    assign(client, api_headers, "activation", devices=[device.udid])
    assert pending(client, device) == ["DeclarativeManagement"]
    device.ddm_sync(client)

    # Erased: a new identity from a new profile, the same UDID (admitted by an admin's opening).
    russet.devices.allow_reenroll(device.udid)
    erased = make_device(udid=device.udid, serial=device.serial)
    erased.enroll(client)
    assert pending(client, erased) == ["DeclarativeManagement"]  # though no declaration changed
    assert sorted(erased.ddm_sync(client)) == ["activation", "passcode"]
    assert pending(client, erased) == []


def test_an_invalid_declaration_is_refused_with_the_schemas_words(
    client: TestClient, api_headers: dict[str, str]
) -> None:
    wrong = client.post(
        "/api/v1/declarations",
        json={"type": PASSCODE, "payload": {"MinimumLength": "six"}},
        headers=api_headers,
    )
    assert wrong.status_code == 400
    assert "MinimumLength: must be an integer, not a string" in wrong.text
    assert "Minimum Passcode Length" in wrong.text  # Apple's title for the key
    missing = client.post(
        "/api/v1/declarations",
        json={"type": ENFORCEMENT, "payload": {"TargetOSVersion": "18.2"}},
        headers=api_headers,
    )
    assert missing.status_code == 400 and "TargetLocalDateTime: required by Apple's schema" in missing.text
    typo = client.post(
        "/api/v1/declarations",
        json={"type": "com.apple.configuration.passcod.settings", "payload": {}},
        headers=api_headers,
    )
    assert typo.status_code == 400 and "did you mean 'com.apple.configuration.passcode.settings'" in typo.text
    bad_id = client.post(
        "/api/v1/declarations",
        json={"type": PASSCODE, "identifier": "a/b", "payload": {}},
        headers=api_headers,
    )
    assert bad_id.status_code == 400
    assert client.get("/api/v1/declarations", headers=api_headers).json() == {"declarations": []}
    create(client, api_headers, {"type": PASSCODE, "identifier": "p", "payload": {}})
    again = client.post(
        "/api/v1/declarations", json={"type": PASSCODE, "identifier": "p", "payload": {}}, headers=api_headers
    )
    assert again.status_code == 409


def _nothing_stored(russet: Russet, udid: str) -> None:
    row = russet.declarations._store.device(udid)  # noqa: SLF001
    assert row is None or (row["last_report"] is None and row["status_values"] is None)
    assert russet.declarations._store.reported(udid) == []  # noqa: SLF001


def test_malformed_or_oversized_status_is_a_4xx_and_stores_nothing(
    client: TestClient, device: SimDevice, russet: Russet, monkeypatch: pytest.MonkeyPatch
) -> None:
    device.enroll(client)
    good = json.dumps(device.ddm.status_report({"passcode.is-compliant": True})).encode()
    for data in (
        b"{not json",
        b"[" * 100 + b"]" * 100,
        json.dumps({"Errors": []}).encode(),  # no StatusItems
        json.dumps(
            {"StatusItems": {"management": {"declarations": {"configurations": [{"active": True}]}}}}
        ).encode(),
        b"\xff\xfe" + good,
    ):
        response = device.declarative(client, "status", data)
        assert response.status_code == 400, (data[:40], response.text)
    assert device.declarative(client, "status").status_code == 400  # no Data at all
    monkeypatch.setattr(status_module, "MAX_STATUS_BYTES", len(good) - 1)
    assert device.declarative(client, "status", good).status_code == 413
    _nothing_stored(russet, device.udid)
    assert device.declarative(client, "bogus").status_code == 400
    for endpoint, code in (
        ("declaration/configuration/" + "x" * 500, 404),
        ("declaration/configuration/a b/c", 404),
        ("declaration/configuration/", 400),
        ("declaration/profile/x", 400),
    ):
        assert device.declarative(client, endpoint).status_code == code, endpoint
    monkeypatch.undo()
    assert device.declarative(client, "status", good).status_code == 200


def test_software_update_enforcement_across_the_fleet(
    client: TestClient, make_device: Any, api_headers: dict[str, str]
) -> None:
    devices = [make_device(), make_device()]
    for d in devices:
        d.enroll(client)
    create(
        client,
        api_headers,
        {
            "type": ENFORCEMENT,
            "identifier": "update-18.2",
            "payload": {"TargetOSVersion": "18.2", "TargetLocalDateTime": "2026-12-31T18:00:00"},
        },
    )
    assign(client, api_headers, "update-18.2", devices=[d.udid for d in devices])
    devices[0].ddm_sync(
        client,
        {
            "device.operating-system.version": "18.1",
            "softwareupdate.install-state": "downloading",
            "softwareupdate.pending-version": {"os-version": "18.2", "build-version": "22C152"},
        },
    )
    devices[1].ddm_sync(
        client,
        {
            "device.operating-system.version": "18.1",
            "softwareupdate.install-state": "failed",
            "softwareupdate.failure-reason": {
                "count": 2,
                "reason": "not enough space",
                "timestamp": "2026-12-06T10:00:00Z",
            },
        },
    )
    fleet = client.get("/api/v1/declarations/software-updates", headers=api_headers).json()
    rows = {r["device"]: r for r in fleet["devices"]}
    first = rows[devices[0].udid]
    assert (first["os_version"], first["target_os_version"], first["by"]) == (
        "18.1",
        "18.2",
        "2026-12-31T18:00:00",
    )
    assert (first["install_state"], first["pending_version"], first["updated"]) == (
        "downloading",
        "18.2",
        False,
    )
    assert fleet["summary"] == ["2 devices told to update, 0 updated", "1 failed: not enough space"]

    devices[0].ddm_sync(
        client, {"device.operating-system.version": "18.2", "softwareupdate.install-state": "none"}
    )
    fleet = client.get("/api/v1/declarations/software-updates", headers=api_headers).json()
    assert {r["device"]: r["updated"] for r in fleet["devices"]} == {
        devices[0].udid: True,
        devices[1].udid: False,
    }
    summary = client.get("/api/v1/declarations/summary", headers=api_headers).json()["summary"]
    assert "1 devices on 18.2" in summary and "1 devices on 18.1" in summary


def test_asset_data_is_served_at_a_per_device_url(
    client: TestClient, make_device: Any, api_headers: dict[str, str]
) -> None:
    mine, other = make_device(), make_device()
    for d in (mine, other):
        d.enroll(client)
    blob = b"\x00\x01 some asset bytes"
    create(
        client,
        api_headers,
        {
            "type": "com.apple.asset.data",
            "identifier": "blob",
            "payload": {"Reference": {"ContentType": "application/octet-stream"}},
            "data_base64": base64.b64encode(blob).decode(),
            "content_type": "application/octet-stream",
        },
    )
    profile = plistlib.dumps({"PayloadType": "Configuration", "PayloadContent": []})
    create(
        client,
        api_headers,
        {
            "type": "com.apple.configuration.legacy",
            "identifier": "legacy",
            "payload": {},
            "data_base64": base64.b64encode(profile).decode(),
            "content_type": "application/x-apple-aspen-config",
        },
    )
    assign(client, api_headers, "blob", devices=[mine.udid])
    assign(client, api_headers, "legacy", devices=[mine.udid])
    mine.ddm_sync(client)
    assert mine.ddm.data == {"blob": blob, "legacy": profile}
    url = mine.ddm.held[("asset", "blob")]["Payload"]["Reference"]["DataURL"]
    assert url.startswith("https://mdm.example.test/mdm/ddm/data/")
    assert mine.ddm.held[("asset", "blob")]["Payload"]["Reference"]["Hash-SHA-256"]
    path = "/" + url.split("/", 3)[3]
    assert client.get(path).content == blob
    # Another device's path, a wrong token, a declaration not the device's: all 404, never 401.
    assert client.get(path.replace(mine.udid, other.udid)).status_code == 404
    assert client.get(path[:-4] + "0000").status_code == 404
    assert client.get(path.replace("/blob/", "/legacy2/")).status_code == 404
    refused = client.post(
        "/api/v1/declarations",
        json={"type": PASSCODE, "payload": {}, "data_base64": base64.b64encode(b"x").decode()},
        headers=api_headers,
    )
    assert refused.status_code == 400


def test_the_cli_shows_declarations_and_the_fleet(
    client: TestClient, device: SimDevice, settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from russet.cli.main import cli

    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RUSSET_PUBLIC_URL", settings.public_url)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["declaration", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    device.enroll(client)
    payload = tmp_path / "passcode.json"
    payload.write_text(json.dumps({"MinimumLength": 6}))
    assert run("create", PASSCODE, str(payload), "--identifier", "pc")[0] == 0
    code, out = run("assign", "pc", "--device", device.udid)
    assert code == 0 and "1 devices told" in out, out
    device.ddm_sync(client, {"device.operating-system.version": "18.1"})
    code, out = run("summary")
    assert code == 0 and "1 devices on 18.1" in out and "pc: 1 active" in out, out
    code, out = run("device", device.udid)
    assert code == 0 and "active" in out and "FROM" in out and "device" in out.split("FROM")[1]
    payload.write_text(json.dumps({"MinimumLength": "six"}))
    code, out = run("update", "pc", str(payload))
    assert code != 0 and "Error:" in out and "Minimum Passcode Length" in out, out
    assert run("show", "nope")[0] != 0


def test_a_legacy_declaration_wraps_a_library_profile(
    client: TestClient, device: SimDevice, api_headers: dict[str, str], russet: Russet
) -> None:
    from russet.kernel.errors import Conflict
    from russet.pki import verify_attached
    from tests.library_support import profile, wifi, xml

    device.enroll(client)
    russet.library.add(xml(profile(wifi(), identifier="com.example.wifi")), name="wifi")
    create(
        client,
        api_headers,
        {"type": "com.apple.configuration.legacy", "identifier": "wifi", "payload": {}, "profile": "wifi"},
    )
    assign(client, api_headers, "wifi", devices=[device.udid])
    assert device.ddm_sync(client) == ["wifi"]
    served = plistlib.loads(verify_attached(device.ddm.data["wifi"]).content)  # signed by Russet
    assert served["PayloadIdentifier"] == "com.example.wifi"
    assert served["PayloadContent"][0]["SSID_STR"] == "Office"
    with pytest.raises(Conflict):  # a profile a declaration wraps is not deleted
        russet.library.delete("wifi")

    # A new library version reaches devices when the declaration is pointed at it again.
    russet.library.add(xml(profile(wifi(SSID_STR="Lab"), identifier="com.example.wifi")), name="wifi")
    assert device.ddm_sync(client) == []  # still pinned to version 1
    moved = client.put(
        "/api/v1/declarations/wifi", json={"payload": {}, "profile": "wifi"}, headers=api_headers
    )
    assert moved.json()["changed"] and moved.json()["profile"] == {"ref": "wifi", "version": 2}
    pending(client, device)
    assert device.ddm_sync(client) == ["wifi"]
    assert (
        plistlib.loads(verify_attached(device.ddm.data["wifi"]).content)["PayloadContent"][0]["SSID_STR"]
        == "Lab"
    )
    # A profile on anything but a legacy declaration is refused.
    wrong = client.post(
        "/api/v1/declarations", json={"type": PASSCODE, "payload": {}, "profile": "wifi"}, headers=api_headers
    )
    assert wrong.status_code == 400


def blueprint(
    client: TestClient, headers: dict[str, str], body: dict[str, Any], *, status: int = 201
) -> dict[str, Any]:
    response = client.post("/api/v1/blueprints", json=body, headers=headers)
    assert response.status_code == status, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_blueprints_declarations_reach_its_scope_and_leave_with_it(
    client: TestClient, make_device: Any, api_headers: dict[str, str], russet: Russet
) -> None:
    staff, visitor = make_device(), make_device()
    for d in (staff, visitor):
        d.enroll(client)
    blob = b"echo asset bytes"
    create(
        client,
        api_headers,
        {
            "type": "com.apple.asset.data",
            "identifier": "echo-data",
            "payload": {"Reference": {"ContentType": "application/octet-stream"}},
            "data_base64": base64.b64encode(blob).decode(),
            "content_type": "application/octet-stream",
        },
    )
    # A configuration naming an asset brings the asset (as the activation brings the configurations).
    create(
        client,
        api_headers,
        {
            "type": "com.apple.configuration.management.test",
            "identifier": "echo",
            "payload": {"Echo": "hello", "EchoDataAssetReference": "echo-data"},
        },
    )
    create(client, api_headers, {"type": PASSCODE, "identifier": "passcode", "payload": {"MinimumLength": 6}})
    create(
        client,
        api_headers,
        {
            "type": ACTIVATION,
            "identifier": "activation",
            "payload": {"StandardConfigurations": ["passcode", "echo"]},
        },
    )
    group = russet.groups.create("Staff")
    russet.groups.add_members("Staff", [staff.udid])

    made = blueprint(
        client,
        api_headers,
        {"name": "Office", "declarations": ["activation"], "scope": {"include": [group["id"]]}},
    )
    assert made["declarations"] == ["activation"]
    listed = client.get("/api/v1/blueprints", headers=api_headers).json()
    assert [(b["name"], b["declarations"]) for b in listed] == [("Office", 1)]

    # The device in scope is told once and gets the activation, what it names and what that names.
    assert pending(client, staff) == ["DeclarativeManagement"]
    assert pending(client, visitor) == []
    assert sorted(staff.ddm_sync(client)) == ["activation", "echo", "echo-data", "passcode"]
    assert staff.ddm.data == {"echo-data": blob}
    assert visitor.ddm_sync(client) == [] and visitor.ddm.held == {}
    state = client.get(f"/api/v1/declarations/devices/{staff.udid}", headers=api_headers).json()
    sources = {d["identifier"]: d["from"] for d in state["declarations"]}
    assert sources == {
        "activation": ["blueprint 'Office'"],
        "passcode": ["activation 'activation'"],
        "echo": ["activation 'activation'"],
        "echo-data": ["configuration 'echo'"],
    }
    assert {d["identifier"]: d["state"] for d in state["declarations"]}["echo-data"] == "active"
    shown = client.get(f"/api/v1/blueprints/devices/{staff.udid}", headers=api_headers).json()
    assert shown["declarations"] == [{"blueprint": "Office", "identifier": "activation"}]
    assert client.get("/api/v1/declarations/activation", headers=api_headers).json()["blueprints"] == [
        "Office"
    ]
    assert client.post("/api/v1/declarations/refresh", headers=api_headers).json() == {
        "changed": 0,
        "commanded": 0,
    }

    # A declaration belongs to one blueprint: a second one listing it is refused, nothing stored.
    refused = blueprint(
        client,
        api_headers,
        {"name": "Lab", "declarations": ["activation"], "scope": {"include": [group["id"]]}},
        status=409,
    )
    assert "'Office'" in refused["detail"] and "'activation'" in refused["detail"]
    unknown = blueprint(client, api_headers, {"name": "Lab", "declarations": ["nope"]}, status=400)
    assert "'nope'" in unknown["detail"]
    assert [b["name"] for b in client.get("/api/v1/blueprints", headers=api_headers).json()] == ["Office"]
    # ... and is not deleted while a blueprint lists it.
    kept = client.delete("/api/v1/declarations/activation", headers=api_headers)
    assert kept.status_code == 409 and "'Office'" in kept.json()["detail"]

    # Leaving the blueprint's scope (a static group edit) removes them: one command, then gone.
    russet.groups.remove_members("Staff", [staff.udid])
    assert pending(client, staff) == ["DeclarativeManagement"]
    staff.ddm_sync(client)
    assert staff.ddm.held == {}

    # Back in scope, then the blueprint no longer lists it: removed again.
    russet.groups.add_members("Staff", [staff.udid])
    assert pending(client, staff) == ["DeclarativeManagement"]
    assert sorted(staff.ddm_sync(client)) == ["activation", "echo", "echo-data", "passcode"]
    put = client.put(
        "/api/v1/blueprints/Office",
        json={"name": "Office", "declarations": [], "scope": {"include": [group["id"]]}},
        headers=api_headers,
    )
    assert put.status_code == 200 and put.json()["declarations"] == []
    assert pending(client, staff) == ["DeclarativeManagement"]
    staff.ddm_sync(client)
    assert staff.ddm.held == {}
    assert client.delete("/api/v1/declarations/activation", headers=api_headers).status_code == 200


def test_a_smart_group_blueprint_moves_declarations_with_the_devices_facts(
    client: TestClient, device: SimDevice, api_headers: dict[str, str], russet: Russet
) -> None:
    device.enroll(client)
    device.ddm_sync(client, {"device.operating-system.version": "18.2"})
    russet.groups.create("Old", query='os_version < "18.2"')
    create(client, api_headers, {"type": PASSCODE, "identifier": "strict", "payload": {"MinimumLength": 10}})
    create(
        client,
        api_headers,
        {"type": ACTIVATION, "identifier": "act", "payload": {"StandardConfigurations": ["strict"]}},
    )
    gid = russet.groups.show("Old")["id"]
    blueprint(client, api_headers, {"name": "Old OS", "declarations": ["act"], "scope": {"include": [gid]}})
    assert pending(client, device) == []  # not in scope
    device.ddm_sync(client, {"device.operating-system.version": "18.1"}, full=False)
    assert device.udid in russet.groups.show("Old")["members"]
    assert pending(client, device) == ["DeclarativeManagement"]
    assert sorted(device.ddm_sync(client)) == ["act", "strict"]
    device.ddm_sync(client, {"device.operating-system.version": "18.2"}, full=False)
    assert device.udid not in russet.groups.show("Old")["members"]
    assert pending(client, device) == ["DeclarativeManagement"]
    device.ddm_sync(client)
    assert device.ddm.held == {}


def test_the_cli_adds_declarations_to_a_blueprint(
    client: TestClient, russet: Russet, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from russet.cli.main import cli

    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RUSSET_PUBLIC_URL", settings.public_url)

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["blueprint", *args])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.output

    russet.declarations.create(PASSCODE, {"MinimumLength": 6}, identifier="pc", created_by="t")
    code, out = run("create", "Office", "--declaration", "pc")
    assert code == 0 and "declarations" in out and "pc" in out, out
    code, out = run("create", "Lab", "--declaration", "pc")
    assert code != 0 and "Error:" in out and "'Office'" in out, out
    code, out = run("create", "Lab", "--declaration", "nope")
    assert code != 0 and "'nope'" in out, out
    assert [b["name"] for b in russet.blueprints.list_blueprints()] == ["Office"]
    code, out = run("update", "Office", "--description", "kept")  # other parts stay
    assert code == 0 and russet.blueprints.get("Office")["declarations"] == ["pc"]
    code, out = run("update", "Office", "--clear", "declarations")
    assert code == 0 and russet.blueprints.get("Office")["declarations"] == []


def test_sets_are_written_and_claimed_a_batch_at_a_time_and_once(russet: Russet) -> None:
    store = russet.declarations._store  # noqa: SLF001
    store.set_sets({f"D{i}": ([i], f"t{i}") for i in range(2500)})  # more than one batch
    store.set_sets({"D1": ([1, 2], "t1b")})  # an existing row rewritten
    sets = store.device_sets(None)
    assert len(sets) == 2500 and sets["D1"]["declaration_ids"] == [1, 2]
    assert sets["D1"]["declarations_token"] == "t1b" and sets["D2"]["declarations_token"] == "t2"
    claims = [(d, s["declarations_token"], s["commanded_token"], s["commanded_at"]) for d, s in sets.items()]
    assert store.claim_commands(claims) == set(sets)
    assert store.claim_commands(claims) == set()  # a second process that read the same state
    fresh = store.device_sets(["D1"])["D1"]
    assert fresh["commanded_token"] == "t1b" and fresh["commanded_at"] is not None
    # Claimed again from what is stored now (a device that enrolled again): the time compares equal.
    assert store.claim_commands([("D1", "t1b", "t1b", fresh["commanded_at"])]) == {"D1"}
    assert store.claim_commands([("D1", "t1b", "t1b", fresh["commanded_at"])]) == set()
    assert store.claim_commands([("D2", "not-its-set", "t2", None)]) == set()
