"""The escrow surfaces: `/api/v1/devices/{device}/secrets/...`, `russet secret …` and
`russet device clear-passcode`, thin over the service (tests/test_escrow.py has the flows)."""

from __future__ import annotations

import plistlib

from click.testing import CliRunner
from fastapi.testclient import TestClient

from russet.cli.main import cli
from russet.runtime import Russet
from simulators.device import DeviceSecrets, Enrollment, SimDevice
from tests.conftest import new_profile
from tests.test_escrow import mac, settle


def test_api_sets_lists_shows_and_records_a_recovery_lock(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    device = mac(russet, client, apple_silicon=True)
    base = f"/api/v1/devices/{device.udid}/secrets"
    queued = client.post(f"{base}/recovery-lock/rotate", headers=api_headers)
    assert queued.status_code == 201 and queued.json()["request_type"] == "SetRecoveryLock"
    settle(device, client)
    password = device.secrets.recovery_lock
    assert password is not None
    listed = client.get(base, headers=api_headers)
    assert listed.status_code == 200 and password not in listed.text
    assert [s["kind"] for s in listed.json()["secrets"]] == ["bypass-code", "recovery-lock"]

    assert client.post(f"{base}/recovery-lock/view", headers=api_headers, json={}).status_code == 422
    shown = client.post(f"{base}/recovery-lock/view", headers=api_headers, json={"reason": "locked out"})
    assert shown.status_code == 200 and shown.json()["secret"] == password
    assert shown.json()["rotation"]["queued"] is True
    views = client.get(f"{base}/views", headers=api_headers).json()
    assert [(v["viewer"], v["reason"]) for v in views] == [("api:tests", "locked out")]

    assert client.post(f"{base}/pin/view", headers=api_headers, json={"reason": "x"}).status_code == 400
    assert client.post(f"{base}/bypass-code/rotate", headers=api_headers).status_code == 403
    assert client.get("/api/v1/devices/NOPE/secrets", headers=api_headers).status_code == 404
    assert client.get(base).status_code == 401


def test_api_clear_passcode_and_filevault_profile(
    russet: Russet, client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(client)
    response = client.post(f"/api/v1/devices/{device.udid}/secrets/clear-passcode", headers=api_headers)
    assert response.status_code == 201
    assert device.run_commands(client) == ["ClearPasscode"] and device.secrets.passcode_cleared == 1
    listed = client.get(f"/api/v1/devices/{device.udid}/commands", headers=api_headers)
    shown = client.get(f"/api/v1/commands/{response.json()['command_uuid']}", headers=api_headers)
    assert shown.json()["status"] == "acknowledged"
    for text in (listed.text, shown.text, response.text):
        assert device.unlock_token.hex() not in text and "UnlockToken" not in text

    profile = client.get("/api/v1/secrets/filevault-profile", headers=api_headers)
    assert profile.status_code == 200
    types = [p["PayloadType"] for p in plistlib.loads(profile.content)["PayloadContent"]]
    assert types == [
        "com.apple.security.pkcs1",
        "com.apple.security.FDERecoveryKeyEscrow",
        "com.apple.MCX.FileVault2",
    ]


def test_cli_clear_passcode_and_secret_commands(run, russet: Russet, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    device = SimDevice(
        Enrollment.from_profile(new_profile(russet)),
        path_only=True,
        product_name="Mac14,2",
        secrets=DeviceSecrets(apple_silicon=True),
    )
    device.enroll(client)
    code, out = run("device", "clear-passcode", device.udid)
    assert code == 0 and "ClearPasscode queued" in out
    assert device.run_commands(client) == ["ClearPasscode"]

    russet.devices.send_command([device.udid], {"RequestType": "DeviceInformation"}, created_by="tests")
    settle(device, client)
    code, out = run("secret", "rotate", device.udid, "recovery-lock")
    assert code == 0 and "SetRecoveryLock queued" in out
    settle(device, client)
    password = device.secrets.recovery_lock
    assert password is not None
    code, out = run("secret", "list", device.udid)
    assert code == 0 and "recovery-lock" in out and password not in out
    result = CliRunner().invoke(cli, ["secret", "show", device.udid, "recovery-lock"])
    assert result.exit_code == 2 and "--reason" in result.output  # the reason is required
    code, out = run("secret", "show", device.udid, "recovery-lock", "--reason", "ticket 7")
    assert code == 0 and out.splitlines()[0] == password
    code, out = run("secret", "views", device.udid)
    assert code == 0 and "ticket 7" in out and password not in out
    code, out = run("secret", "show", "NO-SUCH-DEVICE", "recovery-lock", "--reason", "x")
    assert code == 1 and out.strip().startswith("Error: no device") and len(out.strip().splitlines()) == 1
