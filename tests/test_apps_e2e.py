"""Issue #13's app must-show, end to end on the real runtime (SQLite and PostgreSQL) with the Apps
and Books simulator: a blueprint's Apps and Books app and enterprise app are installed on a
simulated device (licence first, then InstallApplication; the device answers
ManagedApplicationList), an app removed on the device is reinstalled (drift), leaving scope
removes both and gives the licence back (the simulator sees the disassociation). Bad input: an
unknown app and too few licences for the scope are clear 4xx naming the app, nothing stored.

Nothing here calls the reconciler's internals: devices answer through /mdm/connect, and the
periodic tasks (`blueprints.reconcile`, `apps.licences`) do the rest.
"""

from __future__ import annotations

import io
import plistlib
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.blueprints.tables import blueprints
from russet.config import Settings
from russet.runtime import Russet
from simulators.device import Enrollment, SimDevice
from simulators.vpp import VppSimulator
from tests.conftest import PUBLIC_URL, new_profile
from tests.groups_support import add_user_channel
from tests.test_blueprints_e2e import count, periodic_pass
from tests.vpp_support import KEYNOTE, PAGES, add, deliver, licences, run, simulated

PAGES_BUNDLE = "com.apple.Pages"
DEMO_BUNDLE = "com.example.demo"


def ipa(bundle_id: str = DEMO_BUNDLE, version: str = "1.2") -> bytes:
    """A minimal .ipa: a zip with Payload/NAME.app/Info.plist. The entries carry a fixed time, so
    the same arguments give the same bytes (zip entries otherwise take the current time)."""
    info = {"CFBundleIdentifier": bundle_id, "CFBundleShortVersionString": version, "CFBundleName": "Demo"}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in (
            ("Payload/Demo.app/Info.plist", plistlib.dumps(info, fmt=plistlib.FMT_BINARY)),
            ("Payload/Demo.app/Demo", b"\x00" * 100),
        ):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


class AppAgent:
    """A simulated device's MDM agent for apps: InstallApplication installs (an enterprise app's
    manifest and package are fetched from Russet's download URL first), RemoveApplication
    removes, ManagedApplicationList lists."""

    def __init__(self, device: SimDevice, client: TestClient) -> None:
        self.device, self.client = device, client
        self.apps: dict[str, str] = {}  # bundle id -> Status
        self.seen: Counter[str] = Counter()
        self.installs: list[dict[str, Any]] = []
        self.downloaded: list[bytes] = []

    def answer(self, command: dict[str, Any]) -> dict[str, Any]:
        body = command["Command"]
        kind = body["RequestType"]
        self.seen[kind] += 1
        if kind == "InstallApplication":
            self.installs.append(body)
            if "ManifestURL" in body:
                manifest = self.client.get(urlsplit(body["ManifestURL"]).path)
                assert manifest.status_code == 200, manifest.text
                item = plistlib.loads(manifest.content)["items"][0]
                package = self.client.get(urlsplit(item["assets"][0]["url"]).path)
                assert package.status_code == 200
                self.downloaded.append(package.content)
                bundle = item["metadata"]["bundle-identifier"]
            else:
                assert body["iTunesStoreID"] == int(PAGES) and body["Options"] == {"PurchaseMethod": 1}
                bundle = PAGES_BUNDLE
            self.apps[bundle] = "Managed"
            return {"Identifier": bundle, "State": "Managed"}
        if kind == "RemoveApplication":
            self.apps.pop(body["Identifier"], None)
            return {}
        if kind == "ManagedApplicationList":
            return {"ManagedApplicationList": {b: {"Status": s} for b, s in sorted(self.apps.items())}}
        return {}

    def drain(self) -> None:
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


def settle(russet: Russet, sim: VppSimulator, agents: list[AppAgent]) -> list[dict[str, Any]]:
    """Periodic passes, licence work with Apple and device connections until nothing moves."""
    passes = []
    for _ in range(12):
        answer = periodic_pass(russet)
        passes.append(answer)
        for agent in agents:
            agent.drain()
        licence_work = run(russet, russet.work_app_licences())
        sim.process()
        deliver(russet, sim)
        if answer.get("commands_total", 0) == 0 and not licence_work["devices"]:
            open_work = run(russet, russet.work_app_licences())
            if not open_work["devices"] and not russet.apps.store.open_wishes():
                return passes
    raise AssertionError(f"the reconciler did not settle: {passes}")


Setup = tuple[VppSimulator, Russet, TestClient, dict[str, str]]


@pytest.fixture
def setup(tmp_path: Path, settings: Settings) -> Iterator[Setup]:
    with (
        simulated(tmp_path, settings) as (sim, russet, token),
        TestClient(create_app(russet), base_url=PUBLIC_URL) as client,
    ):
        add(russet, token)
        deliver(russet, sim)
        headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
        yield sim, russet, client, headers


def _device(russet: Russet, client: TestClient) -> SimDevice:
    device = SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True)
    device.enroll(client)
    return device


def test_blueprint_apps_installed_reinstalled_and_removed_with_the_licence_returned(setup: Setup) -> None:
    sim, russet, client, headers = setup
    device, other = _device(russet, client), _device(russet, client)
    agent, bystander = AppAgent(device, client), AppAgent(other, client)

    made = client.post("/api/v1/groups", json={"name": "Sales", "kind": "static"}, headers=headers)
    assert made.status_code == 201, made.text
    members = client.post("/api/v1/groups/Sales/members", json={"devices": [device.udid]}, headers=headers)
    assert members.status_code == 200, members.text
    group_id = made.json()["id"]

    pages = client.post(
        "/api/v1/apps", json={"name": "Pages", "adam_id": PAGES, "bundle_id": PAGES_BUNDLE}, headers=headers
    )
    assert pages.status_code == 201, pages.text
    assert (pages.json()["kind"], pages.json()["adam_id"]) == ("vpp", PAGES)
    package = ipa()
    demo = client.post(
        "/api/v1/apps/upload",
        params={"name": "Demo", "filename": "demo.ipa"},
        content=package,
        headers=headers,
    )
    assert demo.status_code == 201, demo.text
    assert (demo.json()["bundle_id"], demo.json()["version"], demo.json()["hosted"]) == (
        DEMO_BUNDLE,
        "1.2",
        True,
    )
    assert [a["name"] for a in client.get("/api/v1/apps", headers=headers).json()] == ["Pages", "Demo"]

    config = {"ServerURL": "https://demo.example.test", "Retries": 3}
    body = {
        "name": "Sales apps",
        "apps": ["Pages", {"ref": "Demo", "configuration": config}],
        "scope": {"include": [group_id]},
    }
    created = client.post("/api/v1/blueprints", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["apps"] == ["Pages", "Demo"]
    assert created.json()["app_configurations"] == {"Demo": config}

    # Installed: the enterprise app at once, the Apps and Books app once its licence is assigned.
    settle(russet, sim, [agent, bystander])
    assert agent.apps == {PAGES_BUNDLE: "Managed", DEMO_BUNDLE: "Managed"}
    assert bystander.seen == Counter()
    assert agent.downloaded == [package]
    [enterprise] = [c for c in agent.installs if "ManifestURL" in c]
    assert enterprise["Configuration"] == config and enterprise["ManagementFlags"] == 1
    held = [lic for lic in licences(russet) if lic["subject"] == device.serial.upper()]
    assert [(lic["adam_id"], lic["status"]) for lic in held] == [(PAGES, "assigned")]
    assert sim.calls["POST assets/associate"] == 1
    assert agent.seen["ManagedApplicationList"] >= 1  # the reconciler checked
    state = client.get(f"/api/v1/blueprints/devices/{device.udid}", headers=headers).json()
    items = {i["item"]: (i["kind"], i["state"], i["actual"]) for i in state["items"]}
    assert items == {PAGES_BUNDLE: ("app", "in_sync", "Managed"), DEMO_BUNDLE: ("app", "in_sync", "Managed")}

    # The manifest link is the device's own: another token, or none, is refused (403, never 401).
    url = urlsplit(enterprise["ManifestURL"]).path
    forged = url.replace("/download/", "/download/x")
    assert client.get(forged).status_code == 403
    assert client.get("/apps/download/nothing/manifest.plist").status_code == 403

    # Drift: the user deletes Pages; the next ManagedApplicationList shows it, and it is put back.
    del agent.apps[PAGES_BUNDLE]
    russet.devices.send_command([device.udid], {"RequestType": "ManagedApplicationList"}, created_by="tests")
    agent.drain()
    passes = settle(russet, sim, [agent, bystander])
    assert passes[0]["commands"] == {"install_application": 1}
    assert agent.apps[PAGES_BUNDLE] == "Managed" and agent.seen["InstallApplication"] == 3
    assert sim.calls["POST assets/associate"] == 1  # the licence was still held

    # Leaving scope: both apps come off, and the licence goes back to the location.
    removed = client.post(
        "/api/v1/groups/Sales/members/remove", json={"devices": [device.udid]}, headers=headers
    )
    assert removed.status_code == 200, removed.text
    russet.blueprints.mark_changed()  # static membership publishes no event (docs/architecture.md)
    passes = settle(russet, sim, [agent, bystander])
    assert passes[0]["commands"] == {"remove_application": 2}
    assert agent.apps == {} and agent.seen["RemoveApplication"] == 2
    assert sim.calls["POST assets/disassociate"] == 1
    assert [lic for lic in licences(russet) if lic["subject"] == device.serial.upper()] == []
    assert bystander.seen == Counter()


def test_unknown_app_and_too_few_licences_are_refused_naming_the_app(setup: Setup) -> None:
    sim, russet, client, headers = setup
    devices = [_device(russet, client) for _ in range(3)]
    made = client.post("/api/v1/groups", json={"name": "Three", "kind": "static"}, headers=headers)
    group_id = made.json()["id"]
    client.post("/api/v1/groups/Three/members", json={"devices": [d.udid for d in devices]}, headers=headers)

    unknown = client.post("/api/v1/blueprints", json={"name": "X", "apps": ["Nope"]}, headers=headers)
    assert unknown.status_code == 400 and "'Nope'" in unknown.json()["detail"]

    keynote = {"name": "Keynote", "adam_id": KEYNOTE, "bundle_id": "com.apple.Keynote"}
    assert client.post("/api/v1/apps", json=keynote, headers=headers).status_code == 201
    body = {"name": "Decks", "apps": ["Keynote"], "scope": {"include": [group_id]}}
    short = client.post("/api/v1/blueprints", json=body, headers=headers)
    assert short.status_code == 409, short.text
    assert "'Keynote'" in short.json()["detail"] and "3 devices" in short.json()["detail"]
    assert count(russet, blueprints) == 0 and sim.calls["POST assets/associate"] == 0

    # An app Apple does not license to this location, and a bad package: 4xx, nothing kept.
    stranger = {"name": "Stranger", "adam_id": "999999", "bundle_id": "com.example.stranger"}
    assert client.post("/api/v1/apps", json=stranger, headers=headers).status_code == 404
    bad = client.post(
        "/api/v1/apps/upload",
        params={"name": "Bad", "filename": "bad.ipa"},
        content=b"not a zip",
        headers=headers,
    )
    assert bad.status_code == 400 and "zip" in bad.json()["detail"]
    pkg = client.post(
        "/api/v1/apps/upload",
        params={"name": "Tool", "filename": "tool.pkg"},
        content=b"xar!...",
        headers=headers,
    )
    assert pkg.status_code == 400 and "bundle_id and version" in pkg.json()["detail"]
    assert [a["name"] for a in russet.apps.list_apps()] == ["Keynote"]
    assert not any((russet.settings.data_dir / "apps").glob("*.*"))


def test_a_user_channel_gets_its_app_with_the_device_s_licence(setup: Setup) -> None:
    sim, russet, client, headers = setup
    device = _device(russet, client)
    add_user_channel(russet, device.udid, "alice")
    channel = f"{device.udid}:alice"
    pages = {"name": "Pages", "adam_id": PAGES, "bundle_id": PAGES_BUNDLE}
    assert client.post("/api/v1/apps", json=pages, headers=headers).status_code == 201
    assert russet.apps.licence_for(channel, "Pages") == ("waiting", "a licence is asked of Apple")
    assert run(russet, russet.work_app_licences())["devices"] == []  # sent to Apple, not answered yet
    sim.process()
    deliver(russet, sim)
    assert run(russet, russet.work_app_licences()) == {
        "assigned": 1,
        "returned": 0,
        "failed": 0,
        "devices": [channel],
    }
    assert [(lic["subject"], lic["status"]) for lic in licences(russet)] == [
        (device.serial.upper(), "assigned")
    ]
    assert russet.apps.licence_for(channel, "Pages") == ("ready", None)
    command = russet.apps.install_command("Pages", channel, {"Team": "Blue"})
    assert command["iTunesStoreID"] == int(PAGES) and command["Configuration"] == {"Team": "Blue"}
    russet.apps.return_licence(channel, "Pages")
    run(russet, russet.work_app_licences())
    sim.process()
    deliver(russet, sim)
    assert run(russet, russet.work_app_licences())["returned"] == 1
    assert licences(russet) == [] and sim.calls["POST assets/disassociate"] == 1
