"""What devices are answered when something is wrong: never 401 (Apple devices unenroll on it),
ErrorUnrecognizedDevice only for a device an admin forgot; signing-time window and replays."""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import plistlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.app import create_app
from russet.cli.main import cli
from russet.config import Settings
from russet.mdm.errors import Forbidden
from russet.mdm.identity import Presented, ReplayGuard
from russet.mdm.signatures import SeenSignatures
from russet.mdm.tables import seen_signatures
from russet.runtime import Russet
from simulators.device import CHECKIN_TYPE, CONNECT_TYPE, SimDevice
from tests.conftest import PUBLIC_URL


def self_signed(device: SimDevice) -> SimDevice:
    """The same device, signing with a certificate Russet never issued."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "not from Russet")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    enrollment = dataclasses.replace(device.enrollment, certificate=cert, key=key)
    return dataclasses.replace(device, enrollment=enrollment)


def test_no_device_endpoint_answers_401(client: TestClient, russet: Russet, make_device: Any) -> None:
    enrolled, stranger = make_device(), make_device()
    enrolled.enroll(client)
    forged = self_signed(enrolled)
    answers: dict[str, int] = {}

    def put(name: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        answers[name] = client.put(path, content=body, headers=headers).status_code

    for path, content_type, msg in (
        ("/mdm/checkin", CHECKIN_TYPE, enrolled.token_update_message()),
        ("/mdm/connect", CONNECT_TYPE, enrolled.report_message("Idle")),
    ):
        body = plistlib.dumps(msg)
        other = plistlib.dumps({**msg, "Extra": 1})
        plain = {"Content-Type": content_type}
        put(f"{path} no signature", path, body, plain)
        put(f"{path} empty signature", path, body, {**plain, "Mdm-Signature": ""})
        put(f"{path} not base64", path, body, {**plain, "Mdm-Signature": "%%%"})
        put(f"{path} not CMS", path, body, {**plain, "Mdm-Signature": base64.b64encode(b"x" * 64).decode()})
        put(f"{path} over another body", path, body, enrolled.signed_headers(other, content_type))
        put(f"{path} foreign certificate", path, body, forged.signed_headers(body, content_type))
        put(
            f"{path} unknown device",
            path,
            plistlib.dumps({**msg, "UDID": stranger.udid}),
            stranger.signed_headers(plistlib.dumps({**msg, "UDID": stranger.udid}), content_type),
        )
        put(
            f"{path} another device's UDID",
            path,
            plistlib.dumps({**msg, "UDID": stranger.udid}),
            enrolled.signed_headers(plistlib.dumps({**msg, "UDID": stranger.udid}), content_type),
        )
        put(
            f"{path} garbage body",
            path,
            b"\x00garbage",
            enrolled.signed_headers(b"\x00garbage", content_type),
        )
    answers["enroll no token"] = client.get("/mdm/enroll").status_code
    answers["enroll bad token"] = client.get("/mdm/enroll?token=enr_nope").status_code
    answers["enroll garbage MachineInfo"] = client.post(
        "/mdm/enroll", content=b"junk", headers={"Content-Type": "application/pkcs7-signature"}
    ).status_code
    answers["scep no operation"] = client.get("/scep").status_code
    answers["scep garbage PKIOperation"] = client.post(
        "/scep?operation=PKIOperation", content=b"junk", headers={"Content-Type": "application/x-pki-message"}
    ).status_code
    answers["scep bad GET message"] = client.get("/scep?operation=PKIOperation&message=%%%").status_code
    answers["vpp no auth"] = client.post("/vpp/notify/main", content=b"{}").status_code
    answers["vpp bad auth"] = client.post(
        "/vpp/notify/main", content=b"{}", headers={"Authorization": "Bearer wrong"}
    ).status_code
    assert not [name for name, status in answers.items() if status == 401], answers
    assert all(400 <= status < 500 for status in answers.values()), answers
    assert answers["/mdm/connect unknown device"] == 403 and answers["/mdm/checkin no signature"] == 400


def test_a_forgotten_device_is_told_to_unenroll(
    client: TestClient, russet: Russet, make_device: Any, api_headers: dict[str, str]
) -> None:
    device, other = make_device(), make_device()
    device.enroll(client)
    other.enroll(client)
    queued = client.post(
        "/api/v1/commands",
        json={"devices": [device.udid], "command": {"RequestType": "ProfileList"}},
        headers=api_headers,
    ).json()["commands"][0]["command_uuid"]
    assert client.post(f"/api/v1/devices/{device.udid}/forget", headers=api_headers).json()["forgotten"]
    assert russet.storage.queue.by_uuid(queued)["status"] == "cancelled"  # type: ignore[index]
    assert russet.pusher.state.device(device.udid)["requested"]  # type: ignore[index]  # so it hears it soon
    for response in (
        device.connect(client, device.report_message("Idle")),
        device.check_in(client, {**device.token_update_message(), "PushMagic": "NEW"}),
    ):
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/json"
        answer = response.json()
        assert answer["code"] == "com.apple.unrecognized.device"
        assert answer["description"] and answer["message"]
    # Only that device: others are served, and an unknown device gets no unenroll answer.
    assert other.connect(client, other.report_message("Idle")).status_code == 200
    stranger = make_device()
    unknown = stranger.connect(client, stranger.report_message("Idle"))
    assert unknown.status_code == 403 and "com.apple.unrecognized.device" not in unknown.text
    # A forgotten device may come back with a new enrollment (new identity).
    SimDevice(make_device().enrollment, udid=device.udid, path_only=True).enroll(client)
    assert client.post("/api/v1/devices/NOPE/forget", headers=api_headers).status_code == 404


def test_forget_from_the_cli(
    client: TestClient, russet: Russet, device: SimDevice, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    device.enroll(client)
    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    result = CliRunner().invoke(cli, ["device", "forget", device.udid])
    assert result.exit_code == 0 and "forgotten" in result.output, result.output
    assert (
        device.connect(client, device.report_message("Idle")).json()["code"]
        == "com.apple.unrecognized.device"
    )


# -- signing time window ------------------------------------------------------------------------------


class Log:
    def __init__(self) -> None:
        self.seen: set[bytes] = set()

    def first_use(self, digest: bytes, expires_at: datetime) -> bool:
        fresh = digest not in self.seen
        self.seen.add(digest)
        return fresh


def presented(device: SimDevice, skew: timedelta) -> Presented:
    return Presented(device.enrollment.certificate, datetime.now(UTC) - skew, b"sig" + str(skew).encode())


def test_the_signing_window_is_a_setting_and_refusals_log_the_skew(
    device: SimDevice, caplog: pytest.LogCaptureFixture
) -> None:
    assert Settings.from_env({}).signing_window_seconds == 600
    assert Settings.from_env({"RUSSET_SIGNING_WINDOW_SECONDS": "3600"}).signing_window_seconds == 3600
    with pytest.raises(ValueError, match="RUSSET_SIGNING_WINDOW_SECONDS must be positive"):
        Settings.from_env({"RUSSET_SIGNING_WINDOW_SECONDS": "0"})
    late = presented(device, timedelta(minutes=20))  # a device whose clock is 20 minutes behind
    ReplayGuard(Log(), window_seconds=3600).check(late, unique=True)
    with (
        caplog.at_level(logging.WARNING, logger="russet.mdm"),
        pytest.raises(Forbidden, match="1200 s behind"),
    ):
        ReplayGuard(Log(), window_seconds=600).check(late, unique=True)
    assert "+1200 s" in caplog.text and "window 600 s" in caplog.text
    with pytest.raises(Forbidden, match="ahead of"):
        ReplayGuard(Log(), window_seconds=600).check(presented(device, timedelta(minutes=-20)), unique=False)


# -- replays across workers ---------------------------------------------------------------------------


def test_a_replay_is_refused_by_another_worker(settings: Settings, russet: Russet, device: SimDevice) -> None:
    second = Russet.open(settings)  # another worker (or node) on the same database
    try:
        with (
            TestClient(create_app(russet), base_url=PUBLIC_URL) as one,
            TestClient(create_app(second), base_url=PUBLIC_URL) as two,
        ):
            device.enroll(one)
            body = plistlib.dumps({**device.token_update_message(), "PushMagic": "ANOTHER"})
            headers = device.signed_headers(body, CHECKIN_TYPE)
            assert device.send_raw(one, "checkin", body, headers=headers).status_code == 200
            replay = device.send_raw(two, "checkin", body, headers=headers)
            assert replay.status_code == 403 and "replayed" in replay.text
    finally:
        second.close()


def test_housekeeping_prunes_signatures_outside_the_window(russet: Russet) -> None:
    seen = SeenSignatures(russet.storage.engine)
    now = datetime.now(UTC)
    assert seen.first_use(b"old", now - timedelta(seconds=1))
    assert seen.first_use(b"new", now + timedelta(minutes=10))
    assert not seen.first_use(b"new", now + timedelta(minutes=10))
    assert russet.housekeeping()["seen_signatures"] == 1
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(seen_signatures)).scalar_one() == 1
    assert json.dumps(russet.housekeeping())
