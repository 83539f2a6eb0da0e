"""Bootstrap tokens: a Mac escrows its token (SetBootstrapToken) and gets it back
(GetBootstrapToken); at rest it is sealed, administrators see only whether one is held, and
it is never logged."""

from __future__ import annotations

import base64
import logging
import os
import plistlib
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.mdm.tables import bootstrap_tokens, enrollments
from russet.pki import verify_attached
from russet.runtime import Russet
from simulators.device import SimDevice, SimUser
from tests.conftest import new_profile


def set_token(device: SimDevice, token: bytes | None, awaiting: bool = False) -> dict[str, Any]:
    msg: dict[str, Any] = {
        "MessageType": "SetBootstrapToken",
        "UDID": device.udid,
        "AwaitingConfiguration": awaiting,
    }
    if token is not None:
        msg["BootstrapToken"] = token
    return msg


def get_token(device: SimDevice, awaiting: bool | None = None, **extra: Any) -> dict[str, Any]:
    msg = {"MessageType": "GetBootstrapToken", "UDID": device.udid, **extra}
    if awaiting is not None:
        msg["AwaitingConfiguration"] = awaiting
    return msg


def test_escrow_round_trip_sealed_at_rest_and_never_shown(
    client: TestClient,
    russet: Russet,
    device: SimDevice,
    api_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = os.urandom(48)
    device.enroll(client)
    shown = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers).json()
    assert shown["bootstrap_token"] == {"escrowed": False, "escrowed_at": None}

    assert device.check_in(client, set_token(device, token)).status_code == 200
    reply = device.check_in(client, get_token(device))
    assert reply.status_code == 200
    assert plistlib.loads(reply.content) == {"BootstrapToken": token}

    # At rest: only ciphertext, in its own table; the enrollment row holds nothing of it.
    with russet.storage.engine.connect() as conn:
        [row] = conn.execute(select(bootstrap_tokens)).all()
        device_row = conn.execute(select(enrollments).where(enrollments.c.id == device.udid)).one()
    assert row.device_id == device.udid
    assert token not in row.sealed_token and token[:16] not in row.sealed_token
    assert all(token not in value for value in device_row if isinstance(value, bytes))
    if russet.settings.is_sqlite:  # nowhere in the database files either
        db_file = Path(russet.settings.database_url.split("///", 1)[1])
        for path in (db_file, Path(f"{db_file}-wal")):
            if path.exists():
                assert token not in path.read_bytes()

    # Administrators see that one is held, and when, but not the token.
    response = client.get(f"/api/v1/devices/{device.udid}", headers=api_headers)
    shown = response.json()
    assert shown["bootstrap_token"]["escrowed"] is True and shown["bootstrap_token"]["escrowed_at"]
    for encoding in (base64.b64encode(token).decode(), token.hex()):
        assert encoding not in response.text
        assert encoding not in caplog.text


def test_a_new_token_replaces_the_old_and_an_empty_one_removes_it(
    client: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(client)
    first, second = os.urandom(32), os.urandom(32)
    device.check_in(client, set_token(device, first))
    device.check_in(client, set_token(device, second))
    assert plistlib.loads(device.check_in(client, get_token(device)).content) == {"BootstrapToken": second}
    # Zero length or missing: Apple's "remove the stored token". (Each body differs: the replay
    # guard refuses an identical signed check-in within the same second.)
    for removal, awaiting in ((b"", False), (None, True)):
        assert device.check_in(client, set_token(device, os.urandom(32))).status_code == 200
        assert device.check_in(client, set_token(device, removal, awaiting)).status_code == 200
        reply = device.check_in(client, get_token(device, awaiting))
        assert reply.status_code == 200 and plistlib.loads(reply.content) == {}
        assert russet.storage.bootstrap.escrowed_at(device.udid) is None


def test_only_the_device_itself_gets_its_token(client: TestClient, russet: Russet, make_device) -> None:  # type: ignore[no-untyped-def]
    owner, other = make_device(), make_device()
    owner.enroll(client)
    other.enroll(client)
    token = os.urandom(32)
    owner.check_in(client, set_token(owner, token))
    # Another enrolled device's certificate asking for (or overwriting) the owner's token.
    spoof = SimDevice(other.enrollment, udid=owner.udid, path_only=True)
    reply = spoof.check_in(client, get_token(spoof))
    assert reply.status_code == 403 and token not in reply.content
    assert spoof.check_in(client, set_token(spoof, os.urandom(32))).status_code == 403
    # A user channel does not carry bootstrap tokens.
    reply = owner.check_in(client, get_token(owner, **SimUser.mac_user().keys))
    assert reply.status_code == 400 and "device-channel" in reply.text
    # A device that is not enrolled is refused (403, never a 401 that would unenroll it).
    stranger = make_device()
    assert stranger.check_in(client, get_token(stranger)).status_code == 403
    assert russet.storage.bootstrap.token(owner.udid) == token


def test_checkout_forgets_the_token(client: TestClient, russet: Russet, device: SimDevice) -> None:
    device.enroll(client)
    device.check_in(client, set_token(device, os.urandom(32)))
    checkout = {"MessageType": "CheckOut", "Topic": device.enrollment.topic, "UDID": device.udid}
    assert device.check_in(client, checkout).status_code == 200
    assert russet.storage.bootstrap.escrowed_at(device.udid) is None
    # Checked out, it is no longer ours to answer: refused (403).
    assert device.check_in(client, get_token(device)).status_code == 403


@pytest.mark.parametrize(
    ("token", "reason"),
    [("a string", "BootstrapToken has the wrong type"), (b"x" * (65 * 1024), "BootstrapToken is over")],
)
def test_bad_tokens_are_refused_and_nothing_changes(
    client: TestClient, russet: Russet, device: SimDevice, token: Any, reason: str
) -> None:
    device.enroll(client)
    kept = os.urandom(32)
    device.check_in(client, set_token(device, kept))
    reply = device.check_in(client, {**set_token(device, None), "BootstrapToken": token})
    assert reply.status_code == 400 and reason in reply.text
    assert russet.storage.bootstrap.token(device.udid) == kept


def test_enrollment_profile_advertises_bootstrap_token_escrow(russet: Russet) -> None:
    profile = plistlib.loads(verify_attached(new_profile(russet)).content)
    [mdm] = [p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm"]
    assert "com.apple.mdm.bootstraptoken" in mdm["ServerCapabilities"]
    assert "com.apple.mdm.per-user-connections" in mdm["ServerCapabilities"]
