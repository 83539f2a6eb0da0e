"""The ABM admin surfaces: /api/v1/abm and `russet abm`, joined with enrolled devices by serial."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.runtime import Russet
from simulators.dep import DepSimulator
from simulators.device import SimDevice
from tests.abm_support import simulated
from tests.conftest import PUBLIC_URL


@pytest.fixture
def api(
    tmp_path: Path, settings: Settings
) -> Iterator[tuple[DepSimulator, Russet, TestClient, dict[str, str]]]:
    with simulated(tmp_path, settings, devices=30) as (sim, russet):
        headers = {"Authorization": f"Bearer {russet.storage.api_keys.create('tests')}"}
        with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
            yield sim, russet, client, headers


def test_api_connection_sync_devices_and_profiles(api, make_device) -> None:  # type: ignore[no-untyped-def]
    sim, russet, client, headers = api
    created = client.post("/api/v1/abm/school", headers=headers)
    assert created.status_code == 201
    cert = x509.load_pem_x509_certificate(created.json()["certificate_pem"].encode())
    stored = client.put(
        "/api/v1/abm/school/token", headers=headers, json={"token": sim.token_for(cert).decode()}
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["account"]["org_name"] == "Example School"

    synced = client.post("/api/v1/abm/school/sync", headers=headers, json={"full": True})
    assert synced.status_code == 200 and synced.json()["added"] == 30

    # A device with an ABM serial enrolls in Russet: the listing joins the two.
    device: SimDevice = make_device(serial="SIM00000007")
    device.enroll(client)
    listing = client.get("/api/v1/abm/school/devices", headers=headers, params={"limit": 10}).json()
    assert len(listing["devices"]) == 10 and listing["next"] == "SIM00000009"
    joined = {d["serial_number"]: d["enrollment"] for d in listing["devices"]}
    assert joined["SIM00000007"]["id"] == device.udid and joined["SIM00000007"]["enrolled"] is True
    assert joined["SIM00000006"] is None
    one = client.get("/api/v1/abm/school/devices/sim00000007", headers=headers).json()
    assert one["enrollment"]["id"] == device.udid and one["model"]

    defined = client.post(
        "/api/v1/abm/school/profiles",
        headers=headers,
        json={"profile": {"profile_name": "Lab", "is_supervised": True}, "default": True},
    )
    assert defined.status_code == 201, defined.text
    uuid = defined.json()["profile_uuid"]
    assigned = client.post(
        f"/api/v1/abm/school/profiles/{uuid}/devices",
        headers=headers,
        json={"devices": ["SIM00000001", "NOPE"]},
    ).json()
    assert assigned["results"] == {"SIM00000001": "SUCCESS", "NOPE": "NOT_ACCESSIBLE"}
    removed = client.request(
        "DELETE", "/api/v1/abm/school/profiles/devices", headers=headers, json={"devices": ["SIM00000001"]}
    ).json()
    assert removed["counts"] == {"SUCCESS": 1}
    profiles = client.get("/api/v1/abm/school/profiles", headers=headers).json()
    assert profiles["default_profile_uuid"] == uuid and profiles["profiles"][0]["profile"]["url"].endswith(
        "/mdm/enroll"
    )
    cleared = client.put("/api/v1/abm/school/default-profile", headers=headers, json={"profile_uuid": None})
    assert cleared.json()["default_profile_uuid"] is None

    shown = client.get("/api/v1/abm/school", headers=headers).json()
    assert shown["account"]["server_uuid"] == sim.account["server_uuid"] and shown["sync"]["phase"] == "sync"
    assert [c["name"] for c in client.get("/api/v1/abm", headers=headers).json()] == ["school"]
    assert "/api/v1/abm/{name}/devices" in client.get("/api/v1/openapi.json").json()["paths"]


def test_api_errors_are_clear(api) -> None:  # type: ignore[no-untyped-def]
    sim, russet, client, headers = api
    assert client.get("/api/v1/abm/nope/devices", headers=headers).status_code == 404
    assert client.get("/api/v1/abm", headers={}).status_code == 401
    client.post("/api/v1/abm/school", headers=headers)
    assert client.post("/api/v1/abm/school", headers=headers).status_code == 409
    not_connected = client.post("/api/v1/abm/school/sync", headers=headers)
    assert not_connected.status_code == 409 and "no server token" in not_connected.json()["detail"]
    corrupt = client.put("/api/v1/abm/school/token", headers=headers, json={"token": "garbage"})
    assert corrupt.status_code == 400 and "not a server token" in corrupt.json()["detail"]
    bad_profile = client.post(
        "/api/v1/abm/school/profiles",
        headers=headers,
        json={"profile": {"profile_name": "x", "is_supervised": 1}},
    )
    assert (
        bad_profile.status_code == 400
        and "is_supervised: should be true or false" in bad_profile.json()["detail"]
    )
    wrong_shape = client.post(
        "/api/v1/abm/school/profiles/ABC/devices", headers=headers, json={"devices": "S1"}
    )
    assert wrong_shape.status_code == 422


def test_cli_sync_devices_and_profile_commands(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulated(tmp_path, settings, devices=12) as (sim, russet):
        russet.close()
        for name, value in {
            "RUSSET_DATA_DIR": str(settings.data_dir),
            "RUSSET_DATABASE_URL": settings.database_url,
            "RUSSET_PUBLIC_URL": settings.public_url,
            "RUSSET_ABM_URL": sim.url,
            "RUSSET_APPLE_CA_FILE": str(tmp_path / "dep-tls" / "ca.pem"),
        }.items():
            monkeypatch.setenv(name, value)

        def invoke(*args: str) -> str:
            result = CliRunner().invoke(cli, ["abm", *args])
            assert result.exit_code == 0, result.output
            return result.output

        invoke("create", "main", "--out", str(tmp_path / "main.pem"))
        token = tmp_path / "main.p7m"
        token.write_bytes(sim.token_for(x509.load_pem_x509_certificate((tmp_path / "main.pem").read_bytes())))
        invoke("token", "main", str(token))
        assert "full sync of 'main': 1 pages, 12 devices (12 added" in invoke("sync", "main")
        listing = invoke("devices", "main", "--limit", "5")
        assert "SIM00000000" in listing and "never" in listing and "more: --after SIM00000004" in listing
        assert json.loads(invoke("devices", "main", "--json", "--search", "sim00000011"))["devices"][0][
            "asset_tag"
        ]

        profile = tmp_path / "profile.json"
        profile.write_text(json.dumps({"profile_name": "Lab", "skip_setup_items": ["Siri"]}))
        uuid = json.loads(invoke("profile", "define", "main", str(profile), "--default", "--json"))[
            "profile_uuid"
        ]
        assert uuid in invoke("profile", "list", "main")
        signing = invoke("profile", "define", "main", str(profile), "--sign-in")
        assert "people sign in at https://mdm.example.test/mdm/enroll/signin" in signing
        assert [p.get("configuration_web_url") for p in sim.profiles.values()] == [
            None,
            "https://mdm.example.test/mdm/enroll/signin",
        ]
        serials = tmp_path / "serials.txt"
        serials.write_text("SIM00000001\n# a comment\nSIM00000002\nNOPE0001\n")
        out = invoke("profile", "assign", "main", uuid, "--from", str(serials))
        assert "SUCCESS 2, NOT_ACCESSIBLE 1" in out
        assert "SUCCESS 1" in invoke("profile", "remove", "main", "SIM00000001")
        assert "none" in invoke("profile", "default", "main", "--clear")
        shown = invoke("show", "main")
        assert "Example School" in shown and "BEGIN CERTIFICATE" in shown
        assert "main" in invoke("list")

        profile.write_text(json.dumps({"profile_name": "Lab", "region": "somewhere"}))
        result = CliRunner().invoke(cli, ["abm", "profile", "define", "main", str(profile)])
        assert result.exit_code == 1 and "region: should be an ISO 3166-1 code" in result.output
        sim.inject("POST /devices/sync", 200, b"{not json")
        result = CliRunner().invoke(cli, ["abm", "sync", "main"])
        assert (
            result.exit_code == 1 and "not valid JSON" in result.output and "Traceback" not in result.output
        )
