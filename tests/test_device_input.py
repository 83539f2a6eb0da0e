"""Device-facing bad input: every refusal is a 4xx with a reason, stores nothing, and the
server goes on serving."""

from __future__ import annotations

import base64
import plistlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.mdm.tables import command_queue, enrollments
from russet.pki import create_ca, issue_device_identity, sign_detached
from russet.runtime import Russet
from simulators.device import CHECKIN_TYPE, Enrollment, SimDevice
from tests.apple_schema import CAPTURES


def stored_enrollments(russet: Russet) -> int:
    with russet.storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(enrollments)).scalar_one()


def assert_still_serving(client: TestClient, make_device) -> None:  # type: ignore[no-untyped-def]
    fresh = make_device()
    fresh.enroll(client)
    assert fresh.command_of(fresh.connect(client, fresh.report_message("Idle"))) is None


def test_real_device_captures_are_accepted(client: TestClient, russet: Russet, device: SimDevice) -> None:
    """Authenticate and TokenUpdate exactly as real devices sent them (topic and ids adjusted)."""
    auth = plistlib.loads((CAPTURES / "Authenticate.1.plist").read_bytes())
    token = plistlib.loads((CAPTURES / "TokenUpdate.1.plist").read_bytes())
    for msg in (auth, token):
        msg["Topic"] = device.enrollment.topic
        msg["UDID"] = device.udid
        assert device.check_in(client, msg).status_code == 200
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["enabled"] and row["serial_number"] == "F5JM992LF193"
    assert russet.storage.enrollments.push_credentials(device.udid) == (
        token["Token"].hex(),
        "CEFDF0BD-E342-4A27-8742-E930EA116B0A",
    )
    assert russet.storage.enrollments.unlock_token(device.udid) == token["UnlockToken"]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty body"),
        (b"\x00\x01\x02garbage\xff" * 20, "not a valid property list"),
        (b"<?xml version='1.0'?><plist><dict><key>MessageType</key>", "not a valid property list"),
        (plistlib.dumps(["not", "a", "dict"]), "must be a dictionary"),
        (plistlib.dumps({"UDID": "X"}), "MessageType is missing"),
        (plistlib.dumps({"MessageType": 5, "UDID": "X"}), "MessageType is missing or not a string"),
        (plistlib.dumps({"MessageType": "Authenticate", "UDID": "X"}), "missing required key Topic"),
        (plistlib.dumps({"MessageType": "Frobnicate", "UDID": "X", "Topic": "t"}), "unknown MessageType"),
        (
            plistlib.dumps({"MessageType": "Authenticate", "Topic": "com.apple.mgmt.x"}),
            "neither UDID nor EnrollmentID",
        ),
        (plistlib.dumps({"MessageType": "Authenticate", "UDID": 42, "Topic": "t"}), "UDID must be"),
        (
            plistlib.dumps({"MessageType": "Authenticate", "UDID": "X", "Topic": "t", "SerialNumber": 7}),
            "SerialNumber has the wrong type",
        ),
        (
            plistlib.dumps(
                {"MessageType": "TokenUpdate", "UDID": "X", "Topic": "t", "Token": "str", "PushMagic": "m"}
            ),
            "Token must be",
        ),
        (
            plistlib.dumps(
                {"MessageType": "Authenticate", "UDID": "X", "Topic": "t"}, fmt=plistlib.FMT_BINARY
            )[:20],
            "not a valid property list",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaa">]><plist><string>&a;</string></plist>',
            "not a valid property list",
        ),
    ],
)
def test_malformed_check_ins_are_refused(  # type: ignore[no-untyped-def]
    client: TestClient, russet: Russet, device: SimDevice, make_device, body: bytes, reason: str
) -> None:
    response = device.send_raw(client, "checkin", body)
    assert response.status_code == 400
    assert reason in response.text
    assert stored_enrollments(russet) == 0
    assert_still_serving(client, make_device)


def test_oversized_body_is_refused(client: TestClient, russet: Russet, device: SimDevice) -> None:
    body = plistlib.dumps({**device.authenticate_message(), "Padding": "x" * (300 * 1024)})
    response = device.send_raw(client, "checkin", body)
    assert response.status_code == 413
    assert "limit" in response.text
    assert stored_enrollments(russet) == 0


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ({"Status": "Sleeping"}, "unknown Status"),
        ({"Status": "Acknowledged"}, "needs a CommandUUID"),
        ({"Status": 1}, "Status is missing"),
        ({"Status": "Error", "CommandUUID": "x", "ErrorChain": "oops"}, "ErrorChain has the wrong type"),
    ],
)
def test_malformed_reports_are_refused(
    client: TestClient, russet: Russet, device: SimDevice, report, reason
) -> None:  # type: ignore[no-untyped-def]
    device.enroll(client)
    response = device.connect(client, {"UDID": device.udid, **report})
    assert response.status_code == 400
    assert reason in response.text


def test_unsigned_request_is_refused(client: TestClient, russet: Russet, device: SimDevice) -> None:
    body = plistlib.dumps(device.authenticate_message())
    response = device.send_raw(client, "checkin", body, headers={"Content-Type": CHECKIN_TYPE})
    assert response.status_code == 400  # never 401: that unenrolls a device
    assert "Mdm-Signature" in response.text
    assert stored_enrollments(russet) == 0


def test_signature_over_another_body_is_refused(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    signed_for = plistlib.dumps(device.token_update_message())
    headers = device.signed_headers(signed_for, CHECKIN_TYPE)
    response = device.send_raw(
        client, "checkin", plistlib.dumps(device.authenticate_message()), headers=headers
    )
    assert response.status_code == 403
    assert "does not verify" in response.text
    assert stored_enrollments(russet) == 0


def test_garbage_signature_is_refused(client: TestClient, russet: Russet, device: SimDevice) -> None:
    headers = {
        "Content-Type": CHECKIN_TYPE,
        "Mdm-Signature": base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),
    }
    response = device.send_raw(
        client, "checkin", plistlib.dumps(device.authenticate_message()), headers=headers
    )
    assert response.status_code == 403
    assert stored_enrollments(russet) == 0


def test_certificate_from_another_ca_is_refused(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    other_ca, other_key = create_ca("Someone Else's CA", "Mallory")
    cert, key = issue_device_identity(other_ca, other_key, "impostor")
    impostor = SimDevice(
        Enrollment(
            cert, key, device.enrollment.server_url, device.enrollment.checkin_url, device.enrollment.topic
        ),
        path_only=True,
    )
    response = impostor.check_in(client, impostor.authenticate_message())
    assert response.status_code == 403
    assert "not issued by Russet's CA" in response.text
    assert stored_enrollments(russet) == 0


def test_another_devices_certificate_is_refused(client: TestClient, russet: Russet, make_device) -> None:  # type: ignore[no-untyped-def]
    victim, attacker = make_device(), make_device()
    victim.enroll(client)
    attacker.enroll(client)
    # The attacker speaks for the victim's UDID with its own (valid, Russet-issued) certificate.
    spoof = SimDevice(attacker.enrollment, udid=victim.udid, path_only=True)
    response = spoof.connect(client, spoof.report_message("Idle"))
    assert response.status_code == 403
    response = spoof.check_in(client, spoof.token_update_message())
    assert response.status_code == 403
    # And a new UDID cannot enroll with a certificate already bound to another device.
    stolen = SimDevice(victim.enrollment, path_only=True)
    assert stolen.check_in(client, stolen.authenticate_message()).status_code == 403
    assert stored_enrollments(russet) == 2
    assert russet.storage.enrollments.push_credentials(victim.udid) == (
        victim.push_token.hex(),
        victim.push_magic,
    )


def test_replayed_request_is_refused_and_changes_nothing(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    [uuid] = russet.storage.queue.enqueue("ProfileList", b"<plist/>", [device.udid], "test").values()
    device.os_version, device.push_magic = "18.2", "NEW-MAGIC"  # a genuine later re-enrollment
    body = plistlib.dumps(device.authenticate_message())
    headers = device.signed_headers(body, CHECKIN_TYPE)
    assert device.send_raw(client, "checkin", body, headers=headers).status_code == 200
    assert device.check_in(client, device.token_update_message()).status_code == 200
    [fresh] = russet.storage.queue.enqueue("ProfileList", b"<plist/>", [device.udid], "test").values()
    replay = device.send_raw(client, "checkin", body, headers=headers)
    assert replay.status_code == 403
    assert "replayed" in replay.text
    assert russet.storage.queue.by_uuid(fresh)["status"] == "queued"  # type: ignore[index]
    assert russet.storage.queue.by_uuid(uuid)["status"] == "cancelled"  # type: ignore[index]


def test_unknown_device_is_refused_without_unenrolling_it(client: TestClient, device: SimDevice) -> None:
    # 403 without ErrorUnrecognizedDevice: a lost or restored database must not unenroll a fleet.
    response = device.check_in(client, device.token_update_message())
    assert response.status_code == 403
    assert "unknown device" in response.text and "com.apple.unrecognized.device" not in response.text
    assert device.connect(client, device.report_message("Idle")).status_code == 403


def test_wrong_topic_is_refused(client: TestClient, russet: Russet, device: SimDevice) -> None:
    msg = {**device.authenticate_message(), "Topic": "com.apple.mgmt.External.someone-else"}
    response = device.check_in(client, msg)
    assert response.status_code == 403
    assert stored_enrollments(russet) == 0


@pytest.mark.parametrize(
    ("message", "status"),
    [
        # Network/mobile users are declined by default (RUSSET_USER_AUTHENTICATE=decline).
        ({"MessageType": "UserAuthenticate", "UserID": "2F3C1E0A-1111-4222-8333-444455556666"}, 410),
        ({"MessageType": "UserAuthenticate"}, 400),  # no UserID: not a user channel
        ({"MessageType": "GetToken", "TokenServiceType": "com.apple.maid"}, 400),  # no token service
        ({"MessageType": "GetToken"}, 400),
        ({"MessageType": "DeclarativeManagement"}, 400),  # no Endpoint
    ],
)
def test_messages_not_offered_get_apples_answer(
    client: TestClient, device: SimDevice, message: dict[str, str], status: int
) -> None:
    device.enroll(client)
    response = device.check_in(client, {**message, "UDID": device.udid, "Topic": device.enrollment.topic})
    assert response.status_code == status
    assert response.text.strip()


def test_return_to_service_is_answered_disabled(client: TestClient, device: SimDevice) -> None:
    device.enroll(client)
    response = device.check_in(client, {"MessageType": "ReturnToService", "UDID": device.udid})
    assert response.status_code == 200
    assert plistlib.loads(response.content) == {"ReturnToService": {"Enabled": False}}


def test_report_from_unenrolled_channel_stores_nothing(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    [uuid] = russet.storage.queue.enqueue("ProfileList", b"<plist/>", [device.udid], "test").values()
    before = russet.storage.queue.by_uuid(uuid)
    device.check_in(
        client, {"MessageType": "CheckOut", "Topic": device.enrollment.topic, "UDID": device.udid}
    )
    device.connect(client, device.report_message("Acknowledged", uuid))
    after = russet.storage.queue.by_uuid(uuid)
    assert before is not None and after is not None
    assert after["status"] == "cancelled" and after["result"] is None
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(command_queue)).scalar_one() == 1


def test_checkout_signed_by_another_device_is_refused(client: TestClient, make_device) -> None:  # type: ignore[no-untyped-def]
    """A body signed by one enrolled device but claiming another's UDID is refused at check-in."""
    a, b = make_device(), make_device()
    a.enroll(client)
    b.enroll(client)
    body = plistlib.dumps({"MessageType": "CheckOut", "Topic": a.enrollment.topic, "UDID": a.udid})
    sig = sign_detached(body, b.enrollment.certificate, b.enrollment.key)
    headers = {"Content-Type": CHECKIN_TYPE, "Mdm-Signature": base64.b64encode(sig).decode()}
    assert a.send_raw(client, "checkin", body, headers=headers).status_code == 403
