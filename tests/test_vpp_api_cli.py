"""The Apps and Books admin surfaces: /api/v1/vpp, `russet vpp`, `russet app`, and purge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import reading
from russet.vpp.tables import (
    vpp_assets,
    vpp_events,
    vpp_licences,
    vpp_locations,
    vpp_notifications,
    vpp_users,
)
from simulators.device import Enrollment, SimDevice
from simulators.vpp import VppSimulator
from tests.conftest import PUBLIC_URL, new_profile
from tests.vpp_support import KEYNOTE, PAGES, simulated

Api = tuple[VppSimulator, Russet, str, TestClient, dict[str, str]]


@pytest.fixture
def api(tmp_path: Path, settings: Settings) -> Iterator[Api]:
    with simulated(tmp_path, settings) as (sim, russet, token):
        headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            yield sim, russet, token, client, headers


def _deliver(sim: VppSimulator, client: TestClient) -> list[int]:
    """Apple's notifications, over HTTP to Russet's notify route."""
    posted, sim.outbox[:] = list(sim.outbox), []
    return [
        client.post(
            urlsplit(n.url).path, content=n.body, headers={"Authorization": f"Bearer {n.auth_token}"}
        ).status_code
        for n in posted
    ]


def test_api_location_people_licences_events(api: Api) -> None:
    sim, russet, token, client, headers = api
    assert client.post("/api/v1/vpp/main", headers=headers, json={"token": "garbage"}).status_code == 400
    added = client.post("/api/v1/vpp/main", headers=headers, json={"token": token})
    assert added.status_code == 200, added.text
    assert added.json()["sync"]["assets"] == 3
    assert _deliver(sim, client) == [200]  # TEST_NOTIFICATION

    listed = client.get("/api/v1/vpp", headers=headers).json()
    assert listed[0]["name"] == "main" and listed[0]["assets"] == 3 and listed[0]["notifications"] is True
    assert client.get("/api/v1/vpp/main", headers=headers).json()["limits"]["maxUsers"] == 100
    assets = client.get("/api/v1/vpp/main/assets", headers=headers).json()["assets"]
    assert {a["adam_id"] for a in assets} >= {PAGES, KEYNOTE}
    assert client.post("/api/v1/vpp/main/sync", headers=headers).json()["assets"] == 3

    made = client.post("/api/v1/vpp/main/users", headers=headers, json={"email": "ada@example.org"})
    assert made.status_code == 201 and made.json()["status"] == "creating"
    cuid = made.json()["client_user_id"]
    sim.process()
    assert _deliver(sim, client) == [200]
    people = client.get("/api/v1/vpp/main/users", headers=headers).json()["users"]
    assert people[0]["status"] == "Registered"

    assigned = client.post(
        "/api/v1/vpp/main/licences",
        headers=headers,
        json={"adam_id": PAGES, "serial_numbers": ["C02API0001"], "client_user_ids": [cuid]},
    )
    assert assigned.status_code == 200 and assigned.json()["requested"] == 2
    too_many = client.post(
        "/api/v1/vpp/main/licences",
        headers=headers,
        json={"adam_id": KEYNOTE, "serial_numbers": ["A1", "A2", "A3"]},
    )
    assert too_many.status_code == 409 and "not enough licences" in too_many.json()["detail"]
    pending = client.get("/api/v1/vpp/main/events", headers=headers, params={"pending": True}).json()[
        "events"
    ]
    # Devices and people go in separate requests (Apple takes one kind per request): two events.
    assert [e["event_type"] for e in pending] == ["ASSOCIATE", "ASSOCIATE"]
    sim.process()
    sim.outbox.clear()  # lost notifications: the poll finds out
    polled = client.post("/api/v1/vpp/main/events/poll", headers=headers).json()
    assert [e["status"] for e in polled["events"]] == ["COMPLETE", "COMPLETE"]
    held = client.get("/api/v1/vpp/main/licences", headers=headers, params={"adam_id": PAGES}).json()[
        "licences"
    ]
    assert {(lic["subject_type"], lic["status"]) for lic in held} == {
        ("device", "assigned"),
        ("user", "assigned"),
    }

    taken = client.request(
        "DELETE",
        "/api/v1/vpp/main/licences",
        headers=headers,
        json={"adam_id": PAGES, "serial_numbers": ["C02API0001"]},
    )
    assert taken.status_code == 200 and taken.json()["requested"] == 1
    updated = client.patch(
        f"/api/v1/vpp/main/users/{cuid}", headers=headers, json={"email": "ada.l@example.org"}
    )
    assert updated.status_code == 200 and updated.json()["pending"]["email"] == "ada.l@example.org"

    assert client.get("/api/v1/vpp/nope/assets", headers=headers).status_code == 404
    assert client.get("/api/v1/vpp", headers={}).status_code == 401
    bad_pricing = client.post(
        "/api/v1/vpp/main/licences", headers=headers, json={"adam_id": PAGES, "pricing": "GOLD"}
    )
    assert bad_pricing.status_code == 422
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    assert "/api/v1/vpp/{name}/licences" in paths and "/api/v1/apps/install" in paths


def test_cli_end_to_end_and_purge(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings) as (sim, russet, token):
        sim.auto_process = True
        for variable, value in {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_VPP_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "vpp-tls" / "ca.pem"),
        }.items():
            monkeypatch.setenv(variable, value)

        def invoke(*args: str, code: int = 0) -> str:
            result = CliRunner().invoke(cli, list(args))
            assert result.exit_code == code, result.output
            assert "Traceback" not in result.output
            return result.output

        path = tmp_path / "main.vpptoken"
        path.write_text(token)
        out = invoke("vpp", "add", "main", str(path))
        assert "is managed by Russet" in out and "/vpp/notify/main" in out and "3 assets read" in out
        assert "main" in invoke("vpp", "list") and "Main Campus" in invoke("vpp", "show", "main")
        assert "3 in 1 pages" in invoke("vpp", "sync", "main")
        assert PAGES in invoke("vpp", "assets", "main")
        cuid = json.loads(invoke("vpp", "user", "add", "main", "--email", "ada@example.org", "--json"))[
            "client_user_id"
        ]
        serials = tmp_path / "serials.txt"
        serials.write_text("C02CLI0001\n# comment\nC02CLI0002\n")
        out = invoke("vpp", "assign", "main", PAGES, "--from", str(serials), "--serial", "C02CLI0003")
        assert "3 devices; Apple answers asynchronously" in out
        refused = invoke(
            "vpp", "assign", "main", KEYNOTE, "--serial", "A", "--serial", "B", "--serial", "C", code=1
        )
        assert "not enough licences" in refused
        assert "no licences for adamId 999" in invoke("vpp", "assign", "main", "999", "--serial", "A", code=1)
        events = invoke("vpp", "events", "main", "--poll")
        assert "COMPLETE" in events and "ASSOCIATE" in events
        assert "C02CLI0002" in invoke("vpp", "licences", "main") and "assigned" in invoke(
            "vpp", "licences", "main"
        )
        assert "1 devices" in invoke("vpp", "unassign", "main", PAGES, "--serial", "C02CLI0003")
        assert cuid in invoke("vpp", "users", "main")

        # An app install from the CLI.
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            device = SimDevice(
                Enrollment.from_profile(new_profile(russet)), path_only=True, serial="C02CLI0009"
            )
            device.enroll(client)
        out = invoke("app", "install", device.udid, KEYNOTE)
        assert f"on {device.udid}: licensing" in out
        invoke("vpp", "events", "main", "--poll")
        assert "queued" in invoke("app", "installs", device.serial)
        assert "no app installs" in invoke("app", "installs", "--status", "failed")

        out = invoke("disconnect", "vpp", "main", "--purge", "--yes")
        assert "vpp_content_token: 1" in out and "vpp_notification_secret: 1" in out
        for table in ("vpp_assets: 3", "vpp_users: 1", "vpp_licences:", "vpp_events:", "vpp_installs: 1"):
            assert table in out
        assert "stay assigned at Apple" in out
        with reading(russet.storage.engine) as conn:
            for table in (vpp_locations, vpp_assets, vpp_users, vpp_licences, vpp_events, vpp_notifications):
                assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0, table.name
        assert "no Apps and Books locations" in invoke("vpp", "list")
        # Traffic stops: nothing can be sent for the location any more.
        assert "no Apps and Books location named 'main'" in invoke("vpp", "sync", "main", code=1)
