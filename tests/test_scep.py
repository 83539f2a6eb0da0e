"""SCEP: the responder, challenges, renewal, SCEP enrollment profiles, and bad input.

Issuance is driven by the simulated device's own SCEP client (simulators/scep_client.py) and by
certmonger, a SCEP client Russet shares no code with.
"""

from __future__ import annotations

import base64
import os
import plistlib
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.enrollment.profile import ProfileRequest, build_profile, signed_profile
from russet.pki import fingerprint, validate_issued, verify_attached
from russet.pki.authority import DEVICE_KIND
from russet.runtime import Russet
from russet.scep.challenges import ChallengeRejected, ChallengeStore
from russet.scep.http import MAX_MESSAGE_BYTES
from russet.scep.tables import scep_challenges
from simulators.device import Enrollment, SimDevice
from simulators.scep_client import (
    PKCS_REQ,
    RENEWAL_REQ,
    ScepClient,
    ScepError,
    envelope_for,
    make_csr,
    pki_message,
    read_cert_rep,
    self_signed,
    signed_message,
)
from tests.apple_schema import load_schema, schema_errors
from tests.conftest import PUBLIC_URL, TOPIC

SCEP_URL = f"{PUBLIC_URL}/scep"


def name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issued(russet: Russet) -> int:
    return russet.storage.certificates.count(DEVICE_KIND)


@pytest.fixture
def challenges(russet: Russet) -> ChallengeStore:
    return ChallengeStore(russet.storage.engine)


@pytest.fixture
def scep(client: TestClient) -> ScepClient:
    return ScepClient(client, SCEP_URL)


def refused(scep: ScepClient, fail_info: str, text: str, **enroll: Any) -> None:
    with pytest.raises(ScepError) as err:
        scep.enroll(**enroll)
    assert err.value.fail_info == fail_info, err.value
    assert text in (err.value.text or ""), err.value


def first_request(
    ca: x509.Certificate, subject: x509.Name, challenge: str | None, bits: int = 2048
) -> tuple[Any, rsa.RSAPrivateKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return pki_message(PKCS_REQ, make_csr(key, subject, challenge), ca, self_signed(key, subject), key), key


# -- GetCACaps, GetCACert ---------------------------------------------------------------------------


def test_get_ca_caps_advertises_what_russet_does(client: TestClient) -> None:
    response = client.get("/scep", params={"operation": "GetCACaps"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert set(response.text.split()) == {"POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal"}


def test_get_ca_cert_is_the_ca_in_der(client: TestClient, russet: Russet) -> None:
    response = client.get("/scep", params={"operation": "GetCACert", "message": "Russet"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-x509-ca-cert"
    assert x509.load_der_x509_certificate(response.content) == russet.authority.ca_certificate


def test_unknown_operation_is_a_400(client: TestClient) -> None:
    response = client.get("/scep", params={"operation": "GetNextCACert"})
    assert response.status_code == 400 and "unknown SCEP operation" in response.text


# -- issuance -------------------------------------------------------------------------------------


def test_pkcsreq_issues_an_identity_and_consumes_the_challenge(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    challenge = challenges.create(name("Russet device 1"))
    cert, key = scep.enroll(name("Russet device 1"), challenge)

    validate_issued(cert, russet.authority.ca_certificate)
    assert cert.subject == name("Russet device 1")
    assert cert.public_key() == key.public_key()
    assert issued(russet) == 1
    with russet.storage.engine.connect() as conn:
        row = conn.execute(select(scep_challenges)).one()
    # Stored as a hash only, consumed, and tied to the certificate it bought.
    assert challenge not in str(row) and row.consumed_at is not None
    assert row.issued_fp == fingerprint(cert)


def test_pkioperation_by_get(russet: Russet, client: TestClient, challenges: ChallengeStore) -> None:
    ca = russet.authority.ca_certificate
    request, _ = first_request(ca, name("by get"), challenges.create())
    message = base64.b64encode(request.der).decode()
    response = client.get("/scep", params={"operation": "PKIOperation", "message": message})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-pki-message"
    assert read_cert_rep(response.content, ca, request).subject == name("by get")


def test_an_unbound_challenge_takes_any_subject(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    cert, _ = scep.enroll(name("anything"), challenges.create())
    assert cert.subject == name("anything")


def test_two_racing_requests_with_one_challenge_get_one_certificate(
    russet: Russet, challenges: ChallengeStore
) -> None:
    ca, ca_key = russet.authority.ca_certificate, russet.authority.ca_key
    challenge = challenges.create(name("race"))
    from russet.pki import issue_from_public_key

    certs = [
        issue_from_public_key(ca, ca_key, rsa.generate_private_key(65537, 2048).public_key(), name("race"), 1)
        for _ in range(4)
    ]
    outcomes: list[str] = []

    def redeem(cert: x509.Certificate) -> None:
        try:
            challenges.redeem(challenge, name("race"), cert, DEVICE_KIND)
            outcomes.append("issued")
        except ChallengeRejected:
            outcomes.append("refused")

    threads = [threading.Thread(target=redeem, args=(c,)) for c in certs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["issued", "refused", "refused", "refused"]
    assert issued(russet) == 1


# -- renewal ---------------------------------------------------------------------------------------


def test_renewal_with_the_current_identity(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    old, old_key = scep.enroll(name("renew me"), challenges.create(name("renew me")))
    new, new_key = scep.renew(old, old_key)  # no challenge: the old identity vouches

    validate_issued(new, russet.authority.ca_certificate)
    assert new.subject == old.subject and new.public_key() == new_key.public_key()
    assert new.public_key() != old.public_key()
    assert challenges.renewed_from(fingerprint(new)) == fingerprint(old)
    assert issued(russet) == 2


def test_renewal_must_be_signed_by_a_russet_identity(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    ca = russet.authority.ca_certificate
    stranger_key = rsa.generate_private_key(65537, 2048)
    stranger = self_signed(stranger_key, name("stranger"))
    with pytest.raises(ScepError) as err:
        scep.exchange(
            pki_message(
                RENEWAL_REQ, make_csr(stranger_key, name("stranger"), None), ca, stranger, stranger_key
            ),
            ca,
        )
    assert err.value.fail_info == "1" and "not issued by Russet's CA" in (err.value.text or "")
    # Russet's profile-signing certificate is issued by the CA but is no device identity.
    signer, signer_key = russet.authority.signer_certificate, russet.authority.signer_key
    csr = make_csr(signer_key, signer.subject, None)
    with pytest.raises(ScepError) as err:
        scep.exchange(pki_message(RENEWAL_REQ, csr, ca, signer, signer_key), ca)
    assert err.value.fail_info == "1" and "clientAuth" in (err.value.text or "")
    assert issued(russet) == 0


def test_renewal_keeps_the_subject(russet: Russet, scep: ScepClient, challenges: ChallengeStore) -> None:
    ca = russet.authority.ca_certificate
    old, old_key = scep.enroll(name("me"), challenges.create())
    new_key = rsa.generate_private_key(65537, 2048)
    with pytest.raises(ScepError) as err:
        scep.exchange(
            pki_message(RENEWAL_REQ, make_csr(new_key, name("someone else"), None), ca, old, old_key), ca
        )
    assert err.value.fail_info == "2" and "keeps the subject" in (err.value.text or "")
    assert issued(russet) == 1


# -- SCEP enrollment profiles over HTTP --------------------------------------------------------------


def scep_profile(russet: Russet, challenges: ChallengeStore) -> bytes:
    profile = build_profile(
        ProfileRequest(PUBLIC_URL, TOPIC), russet.authority, russet.storage.certificates, challenges
    )
    return signed_profile(profile, russet.authority)


def queue(client: TestClient, headers: dict[str, str], device: SimDevice, request_type: str) -> str:
    response = client.post(
        "/api/v1/commands",
        json={"devices": [device.udid], "command": {"RequestType": request_type}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["commands"][0]["command_uuid"])


def test_scep_profile_payload(russet: Russet, challenges: ChallengeStore) -> None:
    profile = plistlib.loads(verify_attached(scep_profile(russet, challenges)).content)
    identity, mdm = profile["PayloadContent"]
    assert identity["PayloadType"] == "com.apple.security.scep"
    assert mdm["IdentityCertificateUUID"] == identity["PayloadUUID"]
    content = identity["PayloadContent"]
    assert content["URL"] == SCEP_URL
    assert content["Keysize"] == 2048 and content["Key Type"] == "RSA" and content["Key Usage"] == 5
    [[[kind, common_name]]] = content["Subject"]
    assert kind == "CN" and common_name.startswith("Russet device ")
    challenges.check(content["Challenge"], name(common_name))  # live, and bound to that subject
    with pytest.raises(ChallengeRejected, match="not the one this challenge was issued for"):
        challenges.check(content["Challenge"], name("another device"))
    assert issued(russet) == 0  # nothing is issued until the device asks


def test_scep_profile_matches_apple_schemas(russet: Russet, challenges: ChallengeStore) -> None:
    profile = plistlib.loads(verify_attached(scep_profile(russet, challenges)).content)
    common = load_schema("mdm/profiles/CommonPayloadKeys.yaml")["payloadkeys"]
    for payload in profile["PayloadContent"]:
        schema = load_schema(f"mdm/profiles/{payload['PayloadType']}.yaml")
        assert schema_errors(schema["payloadkeys"] + common, payload) == [], payload["PayloadType"]


def test_device_enrolls_with_a_scep_profile(
    russet: Russet, client: TestClient, challenges: ChallengeStore, api_headers: dict[str, str]
) -> None:
    device = SimDevice(Enrollment.from_profile(scep_profile(russet, challenges), client), path_only=True)
    validate_issued(device.enrollment.certificate, russet.authority.ca_certificate)
    device.enroll(client)  # Authenticate, TokenUpdate
    assert device.command_of(device.connect(client, device.report_message("Idle"))) is None
    uuid = queue(client, api_headers, device, "ProfileList")
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["CommandUUID"] == uuid
    reply = device.connect(client, device.report_message("Acknowledged", uuid, ProfileList=[]))
    assert device.command_of(reply) is None
    assert client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()["status"] == "acknowledged"
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["identity_fp"] == fingerprint(device.enrollment.certificate)


def test_renewed_identity_keeps_the_enrollment_and_its_queue(
    russet: Russet, client: TestClient, challenges: ChallengeStore, api_headers: dict[str, str]
) -> None:
    device = SimDevice(Enrollment.from_profile(scep_profile(russet, challenges), client), path_only=True)
    device.enroll(client)
    before = SimDevice(Enrollment(**vars(device.enrollment)), udid=device.udid, path_only=True)
    uuid = queue(client, api_headers, device, "ProfileList")

    device.enrollment.renew(client)  # cert A -> cert B over SCEP RenewalReq
    assert device.enrollment.certificate != before.enrollment.certificate
    response = device.check_in(client, device.token_update_message())
    assert response.status_code == 200, response.text
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["CommandUUID"] == uuid  # queued before the renewal
    device.connect(client, device.report_message("Acknowledged", uuid, ProfileList=[]))
    assert client.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()["status"] == "acknowledged"

    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["identity_fp"] == fingerprint(device.enrollment.certificate)
    assert row["enabled"] is True
    # The old certificate is retired once the renewed one has been seen.
    assert before.connect(client, before.report_message("Idle")).status_code == 403


def test_renewed_identity_may_speak_first_on_the_command_channel(
    russet: Russet, client: TestClient, challenges: ChallengeStore, api_headers: dict[str, str]
) -> None:
    device = SimDevice(Enrollment.from_profile(scep_profile(russet, challenges), client), path_only=True)
    device.enroll(client)
    uuid = queue(client, api_headers, device, "ProfileList")
    device.enrollment.renew(client)
    # No TokenUpdate after the renewal: the very next request is an Idle signed with the new cert.
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["CommandUUID"] == uuid
    row = russet.storage.enrollments.get(device.udid)
    assert row is not None and row["identity_fp"] == fingerprint(device.enrollment.certificate)


def test_a_certificate_renewed_from_another_device_cannot_take_over(
    russet: Russet, client: TestClient, challenges: ChallengeStore
) -> None:
    first = SimDevice(Enrollment.from_profile(scep_profile(russet, challenges), client), path_only=True)
    second = SimDevice(Enrollment.from_profile(scep_profile(russet, challenges), client), path_only=True)
    first.enroll(client)
    second.enroll(client)
    second.enrollment.renew(client)
    # The second device's renewed certificate renews its own identity, not the first one's.
    intruder = SimDevice(second.enrollment, udid=first.udid, path_only=True)
    assert intruder.check_in(client, intruder.token_update_message()).status_code == 403


# -- refusals: nothing is issued ---------------------------------------------------------------------


def test_reused_challenge(russet: Russet, scep: ScepClient, challenges: ChallengeStore) -> None:
    challenge = challenges.create()
    scep.enroll(name("once"), challenge)
    refused(scep, "2", "already used", subject=name("twice"), challenge=challenge)
    assert issued(russet) == 1


def test_expired_challenge(russet: Russet, scep: ScepClient, challenges: ChallengeStore) -> None:
    challenge = challenges.create(lifetime=timedelta(seconds=-1))
    refused(scep, "2", "expired", subject=name("late"), challenge=challenge)
    assert issued(russet) == 0


def test_unknown_or_missing_challenge(russet: Russet, scep: ScepClient) -> None:
    refused(scep, "2", "unknown challenge", subject=name("x"), challenge="0" * 32)
    refused(scep, "2", "no challengePassword", subject=name("x"), challenge=None)
    assert issued(russet) == 0


def test_1024_bit_key(russet: Russet, scep: ScepClient, challenges: ChallengeStore) -> None:
    challenge = challenges.create()
    refused(scep, "0", "1024 bits", subject=name("weak"), challenge=challenge, key_size=1024)
    assert issued(russet) == 0
    scep.enroll(name("strong"), challenge)  # a refusal does not use the challenge up
    assert issued(russet) == 1


def test_wrong_subject_for_the_challenge(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    challenge = challenges.create(name("Russet device A"))
    refused(
        scep,
        "2",
        "not the one this challenge was issued for",
        subject=name("Russet device B"),
        challenge=challenge,
    )
    assert issued(russet) == 0
    scep.enroll(name("Russet device A"), challenge)
    assert issued(russet) == 1


def test_request_not_encrypted_to_russet(
    russet: Russet, scep: ScepClient, challenges: ChallengeStore
) -> None:
    other_key = rsa.generate_private_key(65537, 2048)
    other_ca = self_signed(other_key, name("Some other CA"))
    request, _ = first_request(other_ca, name("lost"), challenges.create())
    with pytest.raises(ScepError) as err:
        scep.exchange(request, russet.authority.ca_certificate)
    assert err.value.fail_info == "1" and "not encrypted to Russet's CA" in (err.value.text or "")
    assert issued(russet) == 0


def test_weak_content_cipher_is_bad_alg(russet: Russet, scep: ScepClient, challenges: ChallengeStore) -> None:
    ca = russet.authority.ca_certificate
    key = rsa.generate_private_key(65537, 2048)
    envelope = cms.ContentInfo.load(
        envelope_for(
            ca, make_csr(key, name("3des"), challenges.create()).public_bytes(serialization.Encoding.DER)
        )
    )
    envelope["content"]["encrypted_content_info"]["content_encryption_algorithm"] = {
        "algorithm": "tripledes_3key",
        "parameters": os.urandom(8),
    }
    request = signed_message(
        PKCS_REQ, envelope.dump(force=True), self_signed(key, name("3des")), key, "tx-3des"
    )
    with pytest.raises(ScepError) as err:
        scep.exchange(request, ca)
    assert err.value.fail_info == "0" and "tripledes" in (err.value.text or "")
    assert issued(russet) == 0


def test_bad_signature_and_unserved_message_types(
    russet: Russet, scep: ScepClient, client: TestClient, challenges: ChallengeStore
) -> None:
    ca = russet.authority.ca_certificate
    request, key = first_request(ca, name("tampered"), challenges.create())
    tampered = request.der[:-1] + bytes([request.der[-1] ^ 1])  # the last byte is the signature's
    response = scep.send(tampered)
    assert response.status_code == 200
    with pytest.raises(ScepError) as err:
        read_cert_rep(response.content, ca, request)
    assert err.value.fail_info == "1" and "signature" in (err.value.text or "")

    get_crl = signed_message("22", envelope_for(ca, b"issuer and serial"), request.signer, key, "tx-crl")
    with pytest.raises(ScepError) as err:
        scep.exchange(get_crl, ca)
    assert err.value.fail_info == "2" and "GET_CRL" in (err.value.text or "")
    assert issued(russet) == 0


def test_truncated_garbage_and_empty_messages_are_400(
    russet: Russet, scep: ScepClient, client: TestClient, challenges: ChallengeStore
) -> None:
    request, _ = first_request(russet.authority.ca_certificate, name("cut"), challenges.create())
    for body, reason in (
        (request.der[: len(request.der) // 2], "not a readable PKCS#7"),
        (request.der[:-40], "not a readable PKCS#7"),
        (os.urandom(2000), "not a readable PKCS#7"),
        (b"", "empty pkiMessage"),
    ):
        response = scep.send(body)
        assert response.status_code == 400 and reason in response.text, response.text
    bad_base64 = client.get("/scep", params={"operation": "PKIOperation", "message": "!!not base64!!"})
    assert bad_base64.status_code == 400 and "not base64" in bad_base64.text
    assert issued(russet) == 0


def test_oversized_message_is_413(russet: Russet, scep: ScepClient, client: TestClient) -> None:
    response = scep.send(b"\x30" * (MAX_MESSAGE_BYTES + 1))
    assert response.status_code == 413 and "limit" in response.text
    # Without Content-Length (chunked), the limit is enforced while reading.
    chunks = iter([b"\x30" * 40_000, b"\x30" * 40_000])
    response = client.post("/scep", params={"operation": "PKIOperation"}, content=chunks)
    assert response.status_code == 413
    assert issued(russet) == 0


def test_a_scep_profile_needs_the_challenge_store(russet: Russet) -> None:
    from russet.enrollment.profile import ProfileError

    with pytest.raises(ProfileError, match="challenge store"):
        build_profile(ProfileRequest(PUBLIC_URL, TOPIC), russet.authority, russet.storage.certificates)


# -- a third-party client: certmonger ----------------------------------------------------------------

CERTMONGER_TOOLS = ("certmonger", "getcert", "dbus-run-session")
requires_certmonger = pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in CERTMONGER_TOOLS),
    reason="certmonger is not installed (apt-get install -y certmonger): "
    "the third-party SCEP client test needs it",
)


@pytest.fixture
def live_url(russet: Russet) -> Iterator[str]:
    """Russet served over real HTTP on a free loopback port, for clients outside this process."""
    import uvicorn

    from russet.app import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(russet), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/scep"
    server.should_exit = True
    thread.join(timeout=10)


CERTMONGER_SCRIPT = """\
set -e
W=$1 SCEP_URL=$2 CHALLENGE=$3
getcert add-scep-ca -s -c Russet -u "$SCEP_URL" -r "$W/ca.pem" -N "$W/ca.pem"
getcert request -s -c Russet -I device -f "$W/cert.pem" -k "$W/key.pem" -L "$CHALLENGE" \\
    -N "CN=certmonger device" -w
cp "$W/cert.pem" "$W/first.pem"
getcert resubmit -s -i device -w
getcert list -s -i device
"""


@requires_certmonger
def test_certmonger_enrolls_and_renews(
    russet: Russet, challenges: ChallengeStore, live_url: str, tmp_path: Path
) -> None:
    work = tmp_path / "certmonger"
    work.mkdir()
    (work / "ca.pem").write_bytes(russet.authority.ca_certificate.public_bytes(serialization.Encoding.PEM))
    (work / "run.sh").write_text(CERTMONGER_SCRIPT)
    # A private certmonger on a private session bus, its state kept in the test's directory.
    env = {**os.environ, "HOME": str(work)}
    challenge = challenges.create(name("certmonger device"))
    for setting in ("CONFIG_DIR", "REQUESTS_DIR", "CAS_DIR", "LOCAL_CA_DIR", "TMPDIR"):
        (work / setting.lower()).mkdir()
        env[f"CERTMONGER_{setting}"] = str(work / setting.lower())
    env["CERTMONGER_SYSTEM_LOCK_FILE"] = str(work / "lock")
    run = subprocess.run(
        [
            "dbus-run-session",
            "--",
            "certmonger",
            "-s",
            "-n",
            "-c",
            f"bash {work / 'run.sh'} {work} {live_url} {challenge}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert "status: MONITORING" in run.stdout and "ca-error" not in run.stdout, run.stdout + run.stderr

    ca = russet.authority.ca_certificate
    first = x509.load_pem_x509_certificate((work / "first.pem").read_bytes())
    renewed = x509.load_pem_x509_certificate((work / "cert.pem").read_bytes())
    for cert in (first, renewed):
        validate_issued(cert, ca)
        assert cert.subject == name("certmonger device")
    # certmonger renews the pre-RFC 8894 way (a PKCSReq signed by the current certificate).
    assert renewed != first and challenges.renewed_from(fingerprint(renewed)) == fingerprint(first)
    assert issued(russet) == 2
    with pytest.raises(ChallengeRejected, match="already used"):
        challenges.check(challenge, name("certmonger device"))
    assert renewed.fingerprint(hashes.SHA256()).hex() == fingerprint(renewed)


@pytest.mark.parametrize(("flag", "payload"), [([], "scep"), (["--identity", "pkcs12"], "pkcs12")])
def test_cli_profile_identity_choice(
    russet: Russet, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flag: list[str], payload: str
) -> None:
    from click.testing import CliRunner

    from russet.cli.main import cli

    settings = russet.settings
    monkeypatch.setenv("RUSSET_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RUSSET_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("RUSSET_PUBLIC_URL", settings.public_url)
    monkeypatch.setenv("RUSSET_PUSH_TOPIC", TOPIC)
    out = tmp_path / "p.mobileconfig"
    result = CliRunner().invoke(cli, ["enrollment", "profile", "--out", str(out), *flag])
    assert result.exit_code == 0, result.output
    types = [
        p["PayloadType"] for p in plistlib.loads(verify_attached(out.read_bytes()).content)["PayloadContent"]
    ]
    assert types == [f"com.apple.security.{payload}", "com.apple.mdm"]


def test_housekeeping_deletes_only_challenges_that_expired_unused(russet: Russet) -> None:
    from sqlalchemy import func, select, update

    from russet.scep.challenges import _hash as _challenge_hash
    from russet.scep.tables import scep_challenges

    store = russet.storage.challenges
    store.create(lifetime=timedelta(days=-8))  # expired unused, past the grace period: goes
    store.create(lifetime=timedelta(days=-1))  # expired unused, within the grace period: stays
    store.create()  # still valid: stays
    used = store.create(lifetime=timedelta(days=-8))
    with russet.storage.engine.begin() as conn:  # as if redeemed before it expired: kept as a record
        conn.execute(
            update(scep_challenges)
            .where(scep_challenges.c.challenge_hash == _challenge_hash(used))
            .values(consumed_at=scep_challenges.c.created_at)
        )
    assert russet.housekeeping()["scep_challenges"] == 1
    with russet.storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(scep_challenges)).scalar_one() == 3
    assert russet.housekeeping()["scep_challenges"] == 0
