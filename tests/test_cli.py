"""The `russet` CLI: what people and scripts see, and one-line errors instead of tracebacks."""

from __future__ import annotations

import json
import plistlib
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from russet.pki import verify_attached
from russet.runtime import Russet
from simulators.device import SimDevice


def test_apikey_create_prints_a_working_key(run, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    code, out = run("apikey", "create", "ops")
    assert code == 0
    key = out.splitlines()[0]
    assert client.get("/api/v1/devices", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    code, out = run("apikey", "create", "ops")
    assert code != 0 and "already exists" in out
    code, out = run("apikey", "list", "--json")
    assert [k["name"] for k in json.loads(out)] == ["ops"]


def test_devices_and_commands_round_trip(run, client: TestClient, device: SimDevice) -> None:  # type: ignore[no-untyped-def]
    device.enroll(client)
    code, out = run("devices", "--json")
    assert code == 0 and json.loads(out)["devices"][0]["id"] == device.udid
    code, out = run("devices")
    assert device.udid in out and "SERIAL" in out

    code, out = run(
        "command", "send", device.udid, "--type", "DeviceLock", "--param", "Message=Call IT", "--json"
    )
    assert code == 0, out
    uuid = json.loads(out)["commands"][0]["command_uuid"]
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd is not None and cmd["CommandUUID"] == uuid and cmd["Command"]["Message"] == "Call IT"
    device.connect(client, device.report_message("Acknowledged", uuid, MessageResult="Success"))

    code, out = run("command", "show", uuid, "--json")
    shown = json.loads(out)
    assert shown["status"] == "acknowledged" and shown["result"]["MessageResult"] == "Success"
    code, out = run("command", "show", uuid)
    assert "acknowledged" in out and "MessageResult" in out
    code, out = run("device", "commands", device.udid)
    assert uuid in out


def test_raw_command_file(run, client: TestClient, device: SimDevice, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    device.enroll(client)
    raw = tmp_path / "cmd.plist"
    raw.write_bytes(plistlib.dumps({"Identifier": "com.example.app"}))
    code, out = run(
        "command", "send", device.udid, "--type", "RemoveApplication", "--raw", str(raw), "--json"
    )
    assert code == 0, out
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd is not None and cmd["Command"] == {
        "RequestType": "RemoveApplication",
        "Identifier": "com.example.app",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["command", "send", "NO-SUCH", "--type", "ProfileList"], "no enrollment with id NO-SUCH"),
        (["command", "send", "X", "--type", "DeviceLock", "--param", "PIN"], "expected KEY=VALUE"),
        (["command", "send", "X", "--type", "DeviceLock", "--param", "PIN=12"], "PIN"),
        (["command", "send", "X", "--type", "Mystery", "--param", "a=b"], "use --raw"),
        (["command", "send", "X", "--type", "Bogus"], "unknown RequestType 'Bogus'"),
        (["command", "show", "NOPE"], "no command with uuid"),
        (["device", "show", "NOPE"], "no device with id"),
        (["apikey", "revoke", "ghost"], "no live API key"),
    ],
)
def test_errors_are_one_line_messages(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out = run(*args)
    assert code != 0
    assert message in out
    assert "Traceback" not in out


def test_enrollment_profile_is_written_signed(run, russet: Russet, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out_file = tmp_path / "enroll.mobileconfig"
    code, out = run("enrollment", "profile", "--out", str(out_file))
    assert code == 0, out
    signed = verify_attached(out_file.read_bytes())
    assert signed.certificate == russet.authority.signer_certificate
    assert plistlib.loads(signed.content)["PayloadType"] == "Configuration"


def test_profile_without_topic_says_what_to_do(run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RUSSET_PUSH_TOPIC")
    code, out = run("enrollment", "profile", "--out", str(tmp_path / "p.mobileconfig"))
    assert code != 0 and "RUSSET_PUSH_TOPIC" in out


def test_bad_configuration_is_named(run, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("RUSSET_PUBLIC_URL", "mdm.example.com")
    code, out = run("devices")
    assert code != 0 and "RUSSET_PUBLIC_URL" in out
