"""Issue #13 item 6 end to end (SQLite and PostgreSQL): Automated Device Enrollment done right.

An ADE profile defined through ABM (the DEP simulator on 127.0.0.1) names a blueprint; simulated
devices whose serial numbers ABM lists with that profile enroll and say AwaitingConfiguration in
their TokenUpdate. Without any periodic pass or admin, each gets its blueprint's profiles first,
then DeviceConfigured (once); a device whose profile names no blueprint gets DeviceConfigured
straight away; an item the device refuses is reported and does not hold the device back; a device
that never answers is released at the timeout with its incomplete items listed.
"""

from __future__ import annotations

import json
import plistlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.abm.tables import abm_profiles
from russet.app import create_app
from russet.blueprints.service import BlueprintSpec
from russet.blueprints.tables import blueprint_ade_setups
from russet.cli.main import cli
from russet.config import Settings
from russet.mdm.tables import command_queue, commands
from russet.runtime import Russet
from russet.storage.db import reading
from simulators.dep import DepSimulator
from simulators.device import Enrollment, SimDevice
from tests.abm_support import bodies, connect, run, simulated
from tests.conftest import PUBLIC_URL, new_profile
from tests.library_support import profile, wifi, xml

BROKEN = "com.example.broken"
ERROR_CHAIN = [
    {
        "ErrorCode": 4001,
        "ErrorDomain": "MCProfileErrorDomain",
        "LocalizedDescription": "The profile could not be installed.",
        "USEnglishDescription": "The profile could not be installed.",
    }
]


class SetupAgent:
    """A device in Setup Assistant: answers each command in order and keeps what it was sent.
    InstallProfile of the BROKEN identifier fails with Apple's ErrorChain; DeviceConfigured ends
    its wait (later TokenUpdates would say AwaitingConfiguration false)."""

    def __init__(self, device: SimDevice, client: TestClient) -> None:
        self.device, self.client = device, client
        self.received: list[str] = []  # RequestType, then PayloadIdentifier for InstallProfile
        self.profiles: dict[str, str] = {}
        self.configured = False

    def enroll_awaiting(self) -> None:
        for msg in (
            self.device.authenticate_message(),
            self.device.token_update_message(AwaitingConfiguration=True),
        ):
            response = self.device.check_in(self.client, msg)
            assert response.status_code == 200, response.text

    def answer(self, command: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        body = command["Command"]
        kind = body["RequestType"]
        if kind == "InstallProfile":
            from russet.pki import verify_attached

            installed = plistlib.loads(verify_attached(body["Payload"]).content)
            self.received.append(f"InstallProfile {installed['PayloadIdentifier']}")
            if installed["PayloadIdentifier"] == BROKEN:
                return "Error", {"ErrorChain": ERROR_CHAIN}
            self.profiles[installed["PayloadIdentifier"]] = installed["PayloadUUID"]
            return "Acknowledged", {}
        self.received.append(kind)
        if kind == "ProfileList":
            listed = [{"PayloadIdentifier": i, "PayloadUUID": u} for i, u in sorted(self.profiles.items())]
            return "Acknowledged", {"ProfileList": listed}
        if kind == "DeviceConfigured":
            self.configured = True
        return "Acknowledged", {}

    def drain(self) -> None:
        """Connect (as after a push) until an Idle gets nothing, answering everything in order."""
        for _ in range(20):
            reply = self.device.connect(self.client, self.device.report_message("Idle"))
            command = self.device.command_of(reply)
            if command is None:
                return
            while command is not None:
                status, extra = self.answer(command)
                reply = self.device.connect(
                    self.client, self.device.report_message(status, command["CommandUUID"], **extra)
                )
                command = self.device.command_of(reply)
        raise AssertionError("the server kept sending commands")


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet, TestClient]]:
    with simulated(tmp_path, settings) as (sim, russet):
        connect(russet, sim)
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            yield sim, russet, client


def sim_device(russet: Russet, sim: DepSimulator, serial: str) -> SimDevice:
    sim.add_device(serial)
    return SimDevice(Enrollment.from_profile(new_profile(russet)), path_only=True, serial=serial)


def upload(client: TestClient, headers: dict[str, str], name: str, identifier: str) -> None:
    content = xml(profile(wifi(), identifier=identifier))
    response = client.post(
        "/api/v1/profiles",
        files={"file": (f"{name}.mobileconfig", content)},
        data={"name": name},
        headers=headers,
    )
    assert response.status_code == 201, response.text


def define(client: TestClient, headers: dict[str, str], name: str, **extra: Any) -> Any:
    body = {
        "profile": {"profile_name": name, "is_supervised": True, "await_device_configured": True},
        **extra,
    }
    return client.post("/api/v1/abm/main/profiles", json=body, headers=headers)


def assign(client: TestClient, headers: dict[str, str], profile_uuid: str, *serials: str) -> None:
    response = client.post(
        f"/api/v1/abm/main/profiles/{profile_uuid}/devices", json={"devices": list(serials)}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert set(response.json()["results"].values()) == {"SUCCESS"}


def queued(russet: Russet, device_id: str, request_type: str) -> int:
    with reading(russet.storage.engine) as conn:
        return conn.execute(
            select(func.count())
            .select_from(command_queue.join(commands, commands.c.id == command_queue.c.command_id))
            .where(command_queue.c.enrollment_id == device_id, commands.c.request_type == request_type)
        ).scalar_one()


def test_ade_devices_get_their_items_then_device_configured(
    dep: tuple[DepSimulator, Russet, TestClient],
) -> None:
    sim, russet, client = dep
    headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
    staff = sim_device(russet, sim, "ADESTAFF0001")
    plain = sim_device(russet, sim, "ADEPLAIN0001")
    run(russet, russet.abm.sync_now("main"))

    upload(client, headers, "wifi", "com.example.wifi")
    upload(client, headers, "broken", BROKEN)
    made = client.post(
        "/api/v1/blueprints",
        json={"name": "Staff", "profiles": [{"ref": "wifi"}, {"ref": "broken"}]},
        headers=headers,
    )
    assert made.status_code == 201, made.text

    # An ADE profile naming a blueprint that does not exist: a 400 naming it, nothing defined.
    defined_before = len(bodies(sim, "POST /profile"))
    unknown = define(client, headers, "Staff iPads", blueprint="Nope")
    assert unknown.status_code == 400, unknown.text
    assert "'Nope'" in unknown.json()["detail"]
    assert len(bodies(sim, "POST /profile")) == defined_before
    with reading(russet.storage.engine) as conn:
        assert conn.execute(select(func.count()).select_from(abm_profiles)).scalar_one() == 0

    staff_profile = define(client, headers, "Staff iPads", blueprint="Staff")
    assert staff_profile.status_code == 201, staff_profile.text
    assert staff_profile.json()["blueprint"] == {"id": made.json()["id"], "name": "Staff"}
    plain_profile = define(client, headers, "Loaners")
    assert plain_profile.status_code == 201, plain_profile.text
    assign(client, headers, staff_profile.json()["profile_uuid"], staff.serial)
    assign(client, headers, plain_profile.json()["profile_uuid"], plain.serial)
    listed = client.get("/api/v1/abm/main/profiles", headers=headers).json()["profiles"]
    assert {p["profile_name"]: (p["blueprint"] or {}).get("name") for p in listed} == {
        "Staff iPads": "Staff",
        "Loaners": None,
    }

    # The staff device enrolls awaiting configuration: its items are queued on the TokenUpdate
    # itself (no periodic pass runs in this test), DeviceConfigured only once both are answered.
    a = SetupAgent(staff, client)
    a.enroll_awaiting()
    assert queued(russet, staff.udid, "InstallProfile") == 2
    assert queued(russet, staff.udid, "DeviceConfigured") == 0
    waiting = client.get(f"/api/v1/devices/{staff.udid}", headers=headers).json()["setup"]
    assert waiting["state"] == "waiting" and waiting["device_configured_queued_at"] is None
    a.drain()
    # Both profiles, the reconciler's ProfileList check of the one installed, then DeviceConfigured.
    assert a.received == [
        "InstallProfile com.example.wifi",
        f"InstallProfile {BROKEN}",
        "ProfileList",
        "DeviceConfigured",
    ]
    assert a.configured and a.profiles.keys() == {"com.example.wifi"}

    # Recorded on the device, with the failed item and Apple's words.
    shown = client.get(f"/api/v1/devices/{staff.udid}", headers=headers)
    assert shown.status_code == 200, shown.text
    setup = shown.json()["setup"]
    assert setup["state"] == "device_configured_acknowledged" and setup["reason"] == "items_done"
    assert setup["device_configured_queued_at"] and setup["answered_at"]
    [failed] = setup["incomplete"]
    assert (failed["item"], failed["state"]) == (BROKEN, "failed")
    assert "could not be installed" in str(failed["error"])
    state = client.get(f"/api/v1/blueprints/devices/{staff.udid}", headers=headers).json()
    assert state["setup"] == setup and [b["name"] for b in state["blueprints"]] == ["Staff"]

    # Another TokenUpdate saying AwaitingConfiguration for the same enrollment sends nothing again.
    response = staff.check_in(client, staff.token_update_message(AwaitingConfiguration=True))
    assert response.status_code == 200
    a.drain()
    assert a.received.count("DeviceConfigured") == 1 and queued(russet, staff.udid, "DeviceConfigured") == 1

    # A device whose ADE profile names no blueprint is released straight away.
    b = SetupAgent(plain, client)
    b.enroll_awaiting()
    b.drain()
    assert b.received == ["DeviceConfigured"]
    plain_setup = client.get(f"/api/v1/devices/{plain.udid}", headers=headers).json()["setup"]
    assert (plain_setup["reason"], plain_setup["incomplete"]) == ("no_blueprint", [])

    # A device enrolled without AwaitingConfiguration has no setup round.
    other = sim_device(russet, sim, "ADEOTHER0001")
    other.enroll(client)
    assert client.get(f"/api/v1/devices/{other.udid}", headers=headers).json()["setup"] is None


def test_a_device_that_never_answers_is_released_at_the_timeout(
    dep: tuple[DepSimulator, Russet, TestClient],
) -> None:
    sim, russet, client = dep
    headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
    silent = sim_device(russet, sim, "ADESILENT001")
    run(russet, russet.abm.sync_now("main"))
    upload(client, headers, "wifi", "com.example.wifi")
    made = client.post(
        "/api/v1/blueprints", json={"name": "Lab", "profiles": [{"ref": "wifi"}]}, headers=headers
    )
    assert made.status_code == 201, made.text
    ade = define(client, headers, "Lab Macs")
    assert ade.status_code == 201, ade.text
    # The blueprint can be named after the profile was defined (Russet's side only).
    named = client.put(
        f"/api/v1/abm/main/profiles/{ade.json()['profile_uuid']}/blueprint",
        json={"blueprint": str(made.json()["id"])},
        headers=headers,
    )
    assert named.status_code == 200 and named.json()["blueprint"]["name"] == "Lab", named.text
    missing = client.put(
        f"/api/v1/abm/main/profiles/{ade.json()['profile_uuid']}/blueprint",
        json={"blueprint": "Gone"},
        headers=headers,
    )
    assert missing.status_code == 400 and "'Gone'" in missing.json()["detail"]
    assign(client, headers, ade.json()["profile_uuid"], silent.serial)

    SetupAgent(silent, client).enroll_awaiting()
    assert queued(russet, silent.udid, "InstallProfile") == 1
    [release] = [t for t in russet.tasks() if t.name == "blueprints.ade_release"]
    assert release.run() == {"waiting": 1, "released": {}}  # the item is still pending
    assert queued(russet, silent.udid, "DeviceConfigured") == 0

    russet.blueprints.setups.release_after = timedelta(0)  # RUSSET_ADE_RELEASE_MINUTES, elapsed
    assert release.run() == {"waiting": 0, "released": {"timeout": 1}}
    assert release.run() == {"waiting": 0, "released": {}}  # once
    assert queued(russet, silent.udid, "DeviceConfigured") == 1
    setup = client.get(f"/api/v1/devices/{silent.udid}", headers=headers).json()["setup"]
    assert setup["state"] == "device_configured_queued" and setup["reason"] == "timeout"
    [pending] = setup["incomplete"]
    assert (pending["item"], pending["state"]) == ("com.example.wifi", "pending")
    with reading(russet.storage.engine) as conn:
        assert conn.execute(select(func.count()).select_from(blueprint_ade_setups)).scalar_one() == 1


def test_cli_names_the_blueprint_and_shows_the_setup(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings) as (sim, russet):
        connect(russet, sim)
        russet.blueprints.create(BlueprintSpec(name="Staff"), created_by="tests")
        device = sim_device(russet, sim, "ADECLI000001")
        run(russet, russet.abm.sync_now("main"))
        for name, value in {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_ABM_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "dep-tls" / "ca.pem"),
        }.items():
            monkeypatch.setenv(name, value)

        def invoke(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(cli, list(args))
            assert result.exit_code == code, result.output
            assert "Traceback" not in result.output
            return result.output

        spec = tmp_path / "profile.json"
        spec.write_text(json.dumps({"profile_name": "Staff iPads"}))
        refused = invoke("abm", "profile", "define", "main", str(spec), "--blueprint", "Nope", code=1)
        assert "blueprint 'Nope': no such blueprint" in refused
        out = invoke("abm", "profile", "define", "main", str(spec), "--blueprint", "Staff")
        assert "devices it enrolls get blueprint 'Staff'" in out
        profile_uuid = out.split()[2]
        assert "Staff" in invoke("abm", "profile", "list", "main")
        assert "none" in invoke("abm", "profile", "blueprint", "main", profile_uuid, "--clear")
        assert "Staff" in invoke("abm", "profile", "blueprint", "main", profile_uuid, "Staff")
        assert "no profile" in invoke("abm", "profile", "blueprint", "main", "NOPE-UUID", "Staff", code=1)

        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            assign(
                client,
                {"Authorization": f"Bearer {russet.storage.api_keys.create('t')}"},
                profile_uuid,
                device.serial,
            )
            SetupAgent(device, client).enroll_awaiting()  # Staff has no items: released at once
        shown = invoke("device", "show", device.udid)
        assert "setup assistant: DeviceConfigured queued at" in shown and "(items_done)" in shown
        assert "setup assistant: DeviceConfigured" in invoke("blueprint", "device", device.udid)
        assert json.loads(invoke("device", "show", device.udid, "--json"))["setup"]["reason"] == "items_done"
