"""The push topic follows the installed certificate while serving: importing a new one (through the
API here, or on another node) needs no restart for Authenticate, enrollment profiles or pushes."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient

from russet.apns import topic as topic_module
from russet.apns.certificate import create_push_csr
from russet.apns.topic import PushTopic
from russet.config import Settings
from russet.runtime import Russet
from simulators.apns import FakeAppleCA
from simulators.device import Enrollment, SimDevice
from tests.conftest import TOPIC

NEW_TOPIC = "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA()


def certificate_pem(russet: Russet, apple: FakeAppleCA, tmp_path: Path, topic: str) -> str:
    csr = create_push_csr(russet.storage, tmp_path / "push.csr", force=True)
    cert = apple.issue_push_certificate(csr.public_key(), topic)
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_certificate_imported_through_the_api_applies_without_a_restart(
    russet: Russet,
    client: TestClient,
    api_headers: dict[str, str],
    apple: FakeAppleCA,
    tmp_path: Path,
    make_device,  # type: ignore[no-untyped-def]
) -> None:
    make_device().enroll(client)  # before: RUSSET_PUSH_TOPIC is the topic
    assert russet.push_topic() == TOPIC

    body = {"certificate": certificate_pem(russet, apple, tmp_path, NEW_TOPIC)}
    response = client.put("/api/v1/push/certificate", json=body, headers=api_headers)
    assert response.status_code == 200, response.text
    assert response.json()["topic"] == NEW_TOPIC and response.json()["previous_topic"] is None

    # An enrollment profile handed out now names the new topic, and its device's Authenticate is
    # accepted by the same running server.
    token = russet.enrollment.create_token(uses=1)["token"]
    profile = client.get("/mdm/enroll", params={"token": token})
    assert profile.status_code == 200, profile.text
    device = SimDevice(Enrollment.from_profile(profile.content, client), path_only=True)
    assert device.enrollment.topic == NEW_TOPIC
    device.enroll(client)
    # A device still on the old topic is now refused (403, never 401).
    old = make_device()
    refused = old.check_in(client, old.authenticate_message())
    assert refused.status_code == 403 and "Topic" in refused.text


def test_topic_change_through_the_api_needs_force(
    russet: Russet, client: TestClient, api_headers: dict[str, str], apple: FakeAppleCA, tmp_path: Path
) -> None:
    first = {"certificate": certificate_pem(russet, apple, tmp_path, NEW_TOPIC)}
    assert client.put("/api/v1/push/certificate", json=first, headers=api_headers).status_code == 200
    moved = {"certificate": certificate_pem(russet, apple, tmp_path, TOPIC)}
    refused = client.put("/api/v1/push/certificate", json=moved, headers=api_headers)
    assert refused.status_code == 409 and '"force": true' in refused.json()["detail"]
    assert russet.push_topic() == NEW_TOPIC
    forced = client.put("/api/v1/push/certificate", json={**moved, "force": True}, headers=api_headers)
    assert forced.status_code == 200 and forced.json()["previous_topic"] == NEW_TOPIC
    assert russet.push_topic() == TOPIC


def test_bad_certificate_upload_is_400(client: TestClient, api_headers: dict[str, str]) -> None:
    response = client.put("/api/v1/push/certificate", json={"certificate": "nope"}, headers=api_headers)
    assert response.status_code == 400 and "not an X.509 certificate" in response.json()["detail"]


def test_another_node_picks_the_new_topic_up_within_max_age(
    settings: Settings, russet: Russet, apple: FakeAppleCA, tmp_path: Path
) -> None:
    now = [0.0]
    topic = PushTopic(russet.storage, TOPIC, max_age=30, clock=lambda: now[0])
    assert topic() == TOPIC
    other = Russet.open(settings)  # another node on the same database imports the certificate
    try:
        other.push.import_certificate(certificate_pem(other, apple, tmp_path, NEW_TOPIC).encode())
        assert other.push_topic() == NEW_TOPIC  # the importing process at once
    finally:
        other.close()
    now[0] = 29.0
    assert topic() == TOPIC  # still cached: no query per message
    now[0] = 30.0
    assert topic() == NEW_TOPIC


def test_the_topic_is_cached_between_reads(russet: Russet, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[int] = []
    topic = PushTopic(russet.storage, TOPIC, clock=lambda: 5.0)
    original = topic_module.push_certificate_fingerprint
    monkeypatch.setattr(
        topic_module, "push_certificate_fingerprint", lambda e: reads.append(1) or original(e)
    )
    assert [topic() for _ in range(100)] == [TOPIC] * 100
    assert len(reads) == 1
    topic.invalidate()
    assert topic() == TOPIC and len(reads) == 2
