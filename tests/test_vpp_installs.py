"""`russet app install`: licence if needed, InstallApplication (VPP), ManagedApplicationList until done."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from russet.vpp.errors import VppError
from simulators.device import Enrollment, SimDevice
from simulators.vpp import VppSimulator
from tests.conftest import PUBLIC_URL, new_profile
from tests.vpp_support import BOOK, KEYNOTE, PAGES, add, deliver, licences, run, simulated

Setup = tuple[VppSimulator, Russet, str, TestClient]


@pytest.fixture
def setup(tmp_path: Path, settings: Settings) -> Iterator[Setup]:
    with (
        simulated(tmp_path, settings) as (sim, russet, token),
        TestClient(create_app(russet), base_url=PUBLIC_URL) as client,
    ):
        add(russet, token)
        deliver(russet, sim)
        yield sim, russet, token, client


def _device(russet: Russet, client: TestClient, serial: str) -> SimDevice:
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True, serial=serial)
    device.enroll(client)
    return device


def _next(
    device: SimDevice, client: TestClient, report: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    return SimDevice.command_of(device.connect(client, report or device.report_message("Idle")))


def _install(russet: Russet, device: str, adam: str, **options: Any) -> dict[str, Any]:
    return run(russet, russet.vpp.installs.install(device, adam, created_by="tests", **options))


def _state(russet: Russet, install_id: int) -> dict[str, Any]:
    return russet.vpp.installs.show(install_id)


def test_install_licenses_then_installs_and_follows_the_app(setup: Setup) -> None:
    sim, russet, token, client = setup
    device = _device(russet, client, "C02INST001")
    started = _install(russet, device.serial, PAGES)  # named by serial number
    assert started["status"] == "licensing" and started["enrollment_id"] == device.udid
    assert licences(russet)[0]["status"] == "associating" and _next(device, client) is None

    sim.process()
    deliver(russet, sim)  # the licence notification lets the install go on at once
    assert _state(russet, started["id"])["status"] == "queued"
    command = _next(device, client)
    assert command is not None
    assert command["Command"] == {
        "RequestType": "InstallApplication",
        "iTunesStoreID": int(PAGES),
        "Options": {"PurchaseMethod": 1},
        "ManagementFlags": 1,
    }
    ack = device.report_message(
        "Acknowledged", command["CommandUUID"], State="Installing", Identifier="com.apple.Pages"
    )
    assert _next(device, client, ack) is None

    listing = russet.vpp.list_installs(device=device.udid)["installs"]
    assert listing[0]["status"] == "installing" and listing[0]["bundle_id"] == "com.apple.Pages"
    assert _next(device, client) is None  # the app is asked about one poll interval later
    assert russet.vpp.installs.advance(force=True) == {"asked": 1}
    ask = _next(device, client)
    assert ask is not None and ask["Command"]["RequestType"] == "ManagedApplicationList"
    busy = {"com.apple.Pages": {"Status": "Installing"}, "com.example.Other": {"Status": "Managed"}}
    _next(
        device, client, device.report_message("Acknowledged", ask["CommandUUID"], ManagedApplicationList=busy)
    )
    assert russet.vpp.installs.advance() == {}  # asked less than the poll interval ago: waits
    assert _state(russet, started["id"])["state"] == "Installing"
    assert russet.vpp.installs.advance(force=True) == {"asked": 1}
    ask = _next(device, client)
    assert ask is not None
    done = {"com.apple.Pages": {"Status": "Managed"}}
    _next(
        device, client, device.report_message("Acknowledged", ask["CommandUUID"], ManagedApplicationList=done)
    )
    assert russet.vpp.installs.advance() == {"installed": 1}
    final = _state(russet, started["id"])
    assert (final["status"], final["state"]) == ("installed", "Managed")
    # The managed app list is part of the device's inventory.
    shown = russet.devices.show_device(device.udid)
    assert shown["inventory"]["ManagedApplicationList"]["com.apple.Pages"]["Status"] == "Managed"


def test_install_with_a_licence_already_held_goes_straight_to_the_device(setup: Setup) -> None:
    sim, russet, token, client = setup
    device = _device(russet, client, "C02INST002")
    sim.auto_process = True
    run(russet, russet.vpp.assign("main", KEYNOTE, serials=[device.serial]))
    deliver(russet, sim)
    associated = sim.calls["POST assets/associate"]
    started = _install(russet, device.udid, KEYNOTE, management_flags=None)
    assert started["status"] == "queued" and sim.calls["POST assets/associate"] == associated
    command = _next(device, client)
    assert command is not None and "ManagementFlags" not in command["Command"]
    again = _install(russet, device.udid, KEYNOTE)
    assert again["id"] == started["id"] and "already under way" in again["note"]
    # The device refuses it: the install fails with the device's reason.
    refused = device.report_message(
        "Error",
        command["CommandUUID"],
        RejectionReason="CouldNotVerifyAppID",
        ErrorChain=[{"ErrorCode": 1, "ErrorDomain": "MCMDMErrorDomain", "LocalizedDescription": "no"}],
    )
    _next(device, client, refused)
    russet.vpp.installs.advance()
    failed = _state(russet, started["id"])
    assert failed["status"] == "failed" and "CouldNotVerifyAppID" in failed["reason"]


def test_install_fails_with_the_licence_and_reports_the_reason(setup: Setup) -> None:
    sim, russet, token, client = setup
    device = _device(russet, client, "C02INST003")
    sim.bad_serials = {device.serial: 9628}
    started = _install(russet, device.udid, PAGES)
    sim.process()
    deliver(russet, sim)
    failed = _state(russet, started["id"])
    assert failed["status"] == "failed" and "Apple refused the licence: 9628" in failed["reason"]
    assert _next(device, client) is None  # no InstallApplication was queued


def test_install_refuses_what_cannot_work(setup: Setup) -> None:
    sim, russet, token, client = setup
    device = _device(russet, client, "C02INST004")
    with pytest.raises(
        VppError, match="no connected Apps and Books location has licences for adamId 42"
    ):
        _install(russet, device.udid, "42")
    with pytest.raises(VppError, match="is a book"):
        _install(russet, device.udid, BOOK)
    with pytest.raises(VppError, match="no device with id or serial number 'NOPE'"):
        _install(russet, "NOPE", PAGES)
    with pytest.raises(VppError, match="not an App Store id"):
        _install(russet, device.udid, "abc", location="main")
    device.check_in(
        client, {"MessageType": "CheckOut", "Topic": device.enrollment.topic, "UDID": device.udid}
    )
    with pytest.raises(VppError, match="is not enrolled"):
        _install(russet, device.udid, PAGES)
    # Not enough licences: nothing is stored, nothing queued.
    other = [_device(russet, client, f"C02FULL00{i}") for i in range(3)]
    sim.auto_process = True
    _install(russet, other[0].udid, KEYNOTE)
    _install(russet, other[1].udid, KEYNOTE)
    with pytest.raises(VppError, match="not enough licences"):
        _install(russet, other[2].udid, KEYNOTE)
    assert [i["enrollment_id"] for i in russet.vpp.installs.listing() if i["adam_id"] == KEYNOTE] == [
        other[1].udid,
        other[0].udid,
    ]


def test_install_api(setup: Setup) -> None:
    sim, russet, token, client = setup
    headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
    device = _device(russet, client, "C02INST005")
    sim.auto_process = True
    made = client.post(
        "/api/v1/apps/install", headers=headers, json={"device": device.udid, "adam_id": PAGES}
    )
    assert made.status_code == 201, made.text
    deliver(russet, sim)
    listed = client.get("/api/v1/apps/installs", headers=headers, params={"device": device.serial}).json()
    assert listed["installs"][0]["status"] == "queued" and listed["installs"][0]["created_by"] == "tests"
    bad = client.post("/api/v1/apps/install", headers=headers, json={"device": device.udid, "adam_id": "7"})
    assert bad.status_code == 404 and "adamId 7" in bad.json()["detail"]
    assert client.post("/api/v1/apps/install", json={"device": "x", "adam_id": "1"}).status_code == 401


@pytest.mark.parametrize("status", ["DONE", None, ["COMPLETE"], {"a": 1}])
def test_an_event_status_apple_could_not_have_sent_is_a_protocol_error(status: object) -> None:
    """eventStatus is a string of three values; anything else (a list is not even hashable) is
    Apple's answer refused with the reason, never a TypeError."""
    from russet.vpp import records
    from russet.vpp.errors import ProtocolError

    with pytest.raises(ProtocolError, match="expected PENDING, COMPLETE or FAILED"):
        records.status_outcome({"eventStatus": status})
