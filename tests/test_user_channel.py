"""User channels end to end: one simulated device speaking on its device channel and a user
channel (macOS user, Shared iPad user, User Enrollment user). Each channel keeps its own push
credentials and gets only its own commands; UserAuthenticate is answered as configured."""

from __future__ import annotations

import dataclasses
import json
import plistlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.apns.tables import apns_push
from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.runtime import Russet
from simulators.device import SimDevice, SimUser
from tests.cli_support import cli_invoker
from tests.conftest import PUBLIC_URL

USERS: dict[str, Callable[[], SimUser]] = {
    "macos-user": SimUser.mac_user,
    "shared-ipad-user": SimUser.shared_ipad_user,
    "user-enrollment-user": SimUser.user_enrollment_user,
}


def queue(client: TestClient, headers: dict[str, str], target: str, request_type: str) -> str:
    response = client.post(
        "/api/v1/commands",
        json={"devices": [target], "command": {"RequestType": request_type}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    [queued] = response.json()["commands"]
    return str(queued["command_uuid"])


def status(client: TestClient, headers: dict[str, str], uuid: str) -> str:
    return str(client.get(f"/api/v1/commands/{uuid}", headers=headers).json()["status"])


@pytest.mark.parametrize("kind", list(USERS))
def test_each_channel_gets_only_its_own_commands(
    client: TestClient, russet: Russet, make_device, api_headers: dict[str, str], kind: str
) -> None:  # type: ignore[no-untyped-def]
    device: SimDevice = make_device(id_key="EnrollmentID" if kind == "user-enrollment-user" else "UDID")
    user = USERS[kind]()
    device.enroll(client)
    reply = device.check_in(client, device.user_token_update_message(user, UnlockToken=b"\x01" * 32))
    assert reply.status_code == 200, reply.text
    channel = device.user_channel(user)

    # The user channel's own push credentials; the device channel's are untouched.
    row = russet.storage.enrollments.get(channel)
    assert row is not None and row["channel"] == "user" and row["device_id"] == device.udid
    assert russet.storage.enrollments.push_credentials(channel) == (user.push_token.hex(), user.push_magic)
    assert row["sealed_unlock_token"] is None  # UnlockToken belongs to the device channel only
    device_row = russet.storage.enrollments.get(device.udid)
    assert device_row is not None
    assert russet.storage.enrollments.push_credentials(device.udid) == (
        device.push_token.hex(),
        device.push_magic,
    )

    for_device = queue(client, api_headers, device.udid, "DeviceInformation")
    for_user = queue(client, api_headers, channel, "ProfileList")
    # Each push request is for the channel the command is for.
    with russet.storage.engine.connect() as conn:
        requested = set(conn.execute(select(apns_push.c.enrollment_id)).scalars())
    assert requested == {device.udid, channel}

    # The device channel sees only its command...
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd is not None and cmd["CommandUUID"] == for_device
    ack = device.report_message("Acknowledged", for_device, QueryResponses={})
    assert device.command_of(device.connect(client, ack)) is None
    # ...and cannot answer the user's command: nothing changes, nothing more for it.
    wrong = device.connect(client, device.report_message("Acknowledged", for_user, ProfileList=[]))
    assert device.command_of(wrong) is None
    assert status(client, api_headers, for_user) == "queued"

    # The user channel sees only its command, and cannot answer one of the device's.
    later = queue(client, api_headers, device.udid, "CertificateList")
    cmd = device.command_of(device.connect(client, device.report_message("Idle", **user.keys)))
    assert cmd is not None and cmd["CommandUUID"] == for_user
    reply = device.connect(
        client, device.report_message("Acknowledged", for_user, ProfileList=[], **user.keys)
    )
    assert device.command_of(reply) is None
    reply = device.connect(client, device.report_message("Error", later, **user.keys))
    assert device.command_of(reply) is None
    assert status(client, api_headers, later) == "queued"
    assert status(client, api_headers, for_device) == "acknowledged"
    assert status(client, api_headers, for_user) == "acknowledged"
    cmd = device.command_of(device.connect(client, device.report_message("Idle")))
    assert cmd is not None and cmd["CommandUUID"] == later

    shown = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers).json()
    assert [u["id"] for u in shown["user_channels"]] == [channel]
    assert shown["user_channels"][0]["enrolled"] is True
    shown_user = client.get(f"/api/v1/devices/{channel}", headers=api_headers).json()
    assert shown_user["channel"] == "user" and shown_user["device"] == device.udid
    assert shown_user["user_short_name"] == user.keys["UserShortName"]


def test_user_channel_target_by_short_name_from_the_cli(
    client: TestClient, russet: Russet, device: SimDevice, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = SimUser.mac_user("robin")
    device.enroll(client)
    assert device.check_in(client, device.user_token_update_message(user)).status_code == 200
    invoke = cli_invoker(settings, monkeypatch)
    result = invoke("command", "send", f"{device.udid}:robin", "--type", "ProfileList", "--json")
    assert result.exit_code == 0, result.output
    [queued] = json.loads(result.output)["commands"]
    assert queued["device"] == device.user_channel(user)
    cmd = device.command_of(device.connect(client, device.report_message("Idle", **user.keys)))
    assert cmd is not None and cmd["CommandUUID"] == queued["command_uuid"]
    result = CliRunner().invoke(cli, ["device", "show", device.udid])
    assert result.exit_code == 0, result.output
    assert "user channels:" in result.output and device.user_channel(user) in result.output
    assert '"escrowed": false' in result.output  # bootstrap token: present or absent only
    # An unknown user is named in the error, nothing is queued.
    result = CliRunner().invoke(cli, ["command", "send", f"{device.udid}:nobody", "--type", "ProfileList"])
    assert result.exit_code != 0 and f"{device.udid}:nobody" in result.output


def test_user_channel_needs_an_enrolled_device_and_its_certificate(
    client: TestClient, russet: Russet, make_device
) -> None:  # type: ignore[no-untyped-def]
    device, other = make_device(), make_device()
    user = SimUser.mac_user()
    # Before the device channel completed enrollment: refused (403, never 401).
    assert device.check_in(client, device.user_token_update_message(user)).status_code == 403
    device.enroll(client)
    other.enroll(client)
    # Another device's certificate cannot create or update this device's user channel.
    spoof = SimDevice(other.enrollment, udid=device.udid, path_only=True)
    assert spoof.check_in(client, spoof.user_token_update_message(user)).status_code == 403
    assert russet.storage.enrollments.get(device.user_channel(user)) is None
    # Authenticate is a device-channel message.
    reply = device.check_in(client, {**device.authenticate_message(), **user.keys})
    assert reply.status_code == 400 and "device-channel" in reply.text


# -- UserAuthenticate ----------------------------------------------------------------------------


def user_authenticate(device: SimDevice, user: SimUser, **extra: Any) -> dict[str, Any]:
    return {"MessageType": "UserAuthenticate", "UDID": device.udid, **user.keys, **extra}


def test_user_authenticate_is_declined_by_default(client: TestClient, device: SimDevice) -> None:
    user = SimUser.mac_user()
    device.enroll(client)
    reply = device.check_in(client, user_authenticate(device, user))
    assert reply.status_code == 410 and "RUSSET_USER_AUTHENTICATE" in reply.text
    # On the device channel it is a malformed request, not a decline.
    reply = device.check_in(client, {"MessageType": "UserAuthenticate", "UDID": device.udid})
    assert reply.status_code == 400


@pytest.fixture
def allowing(settings: Settings) -> Iterator[TestClient]:
    server = Russet.open(dataclasses.replace(settings, user_authenticate="allow"))
    with TestClient(create_app(server), base_url=PUBLIC_URL) as client:
        yield client
    server.close()


def test_user_authenticate_allowed_without_a_password(allowing: TestClient, make_device) -> None:  # type: ignore[no-untyped-def]
    device: SimDevice = make_device()
    user = SimUser.mac_user()
    device.enroll(allowing)
    reply = device.check_in(allowing, user_authenticate(device, user))
    assert reply.status_code == 200
    # A zero-length challenge: "no authentication needed" (Apple §a.4.4).
    assert plistlib.loads(reply.content) == {"DigestChallenge": ""}
    # A digest Russet never asked for cannot be right: Apple's rejection is 200 with an empty
    # AuthToken, never 401 (which would unenroll the Mac).
    reply = device.check_in(allowing, user_authenticate(device, user, DigestResponse="abc123"))
    assert reply.status_code == 200 and plistlib.loads(reply.content) == {"AuthToken": ""}
    # The user channel then comes up with its TokenUpdate as usual.
    assert device.check_in(allowing, device.user_token_update_message(user)).status_code == 200


def test_user_authenticate_from_an_unbound_certificate_is_refused(allowing: TestClient, make_device) -> None:  # type: ignore[no-untyped-def]
    device, other = make_device(), make_device()
    device.enroll(allowing)
    other.enroll(allowing)
    spoof = SimDevice(other.enrollment, udid=device.udid, path_only=True)
    reply = spoof.check_in(allowing, user_authenticate(spoof, SimUser.mac_user()))
    assert reply.status_code == 403
