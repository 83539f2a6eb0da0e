"""Enrollment URLs: OTA profiles for enrollment tokens, ADE profiles for Apple-signed MachineInfo.

Devices are the simulators: `simulators/ade.py` signs MachineInfo with an identity from a test
stand-in for Apple's device CA (configured through RUSSET_ADE_CA_FILE), and the profile Russet
answers is installed by `simulators/device.py` (SCEP) and used for check-in and commands.
"""

from __future__ import annotations

import dataclasses
import json
import plistlib
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select, update

from russet.abm.profiles import ade_url, validate_profile
from russet.abm.tables import abm_devices
from russet.apns.topic import PushTopic
from russet.app import create_app
from russet.config import ConfigError, Settings
from russet.enrollment.http import MAX_MACHINE_INFO_BYTES
from russet.enrollment.machineinfo import APPLE_DEVICE_CA_CHAIN, DeviceCA
from russet.enrollment.serving import EnrollmentRefused
from russet.enrollment.tables import enrollment_requests, enrollment_tokens
from russet.enrollment.tokens import EnrollmentTokenStore, TokenRejected
from russet.kernel.errors import Invalid
from russet.pki import fingerprint, validate_issued, verify_attached
from russet.pki.authority import DEVICE_KIND
from russet.pki.chain import ChainError, check_chain, issued_by
from russet.runtime import Russet
from russet.scep.tables import scep_challenges
from russet.storage.db import utcnow
from simulators.ade import AdeDevice, TestAppleCA, sign_machine_info
from simulators.device import Enrollment, SimDevice
from tests.apple_schema import load_schema, schema_errors
from tests.conftest import PUBLIC_URL

ENROLL_URL = f"{PUBLIC_URL}/mdm/enroll"
PROFILE_TYPE = "application/x-apple-aspen-config"
APPLE_ROOT_CA_SHA256 = (
    "B0:B1:73:0E:CB:C7:FF:45:05:14:2C:49:F1:29:5E:6E:DA:6B:CA:ED:7E:2C:68:C5:BE:91:B5:A1:10:01:F0:24"
)


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def nothing_issued(russet: Russet) -> None:
    assert count(russet, scep_challenges) == 0
    assert count(russet, enrollment_requests) == 0
    assert russet.storage.certificates.count(DEVICE_KIND) == 0


def queue(client: TestClient, headers: dict[str, str], device: SimDevice, request_type: str) -> str:
    response = client.post(
        "/api/v1/commands",
        json={"devices": [device.udid], "command": {"RequestType": request_type}},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["commands"][0]["command_uuid"])


def command_round_trip(client: TestClient, headers: dict[str, str], device: SimDevice) -> None:
    uuid = queue(client, headers, device, "ProfileList")
    command = device.command_of(device.connect(client, device.report_message("Idle")))
    assert command is not None and command["CommandUUID"] == uuid
    reply = device.connect(client, device.report_message("Acknowledged", uuid, ProfileList=[]))
    assert device.command_of(reply) is None
    assert client.get(f"/api/v1/commands/{uuid}", headers=headers).json()["status"] == "acknowledged"


def token(russet: Russet, **kwargs: Any) -> str:
    return str(russet.enrollment.create_token(**kwargs)["token"])


def fetch(client: TestClient, value: str | None) -> Any:
    return client.get("/mdm/enroll", params={} if value is None else {"token": value})


# -- OTA: enrollment tokens --------------------------------------------------------------------------


def test_token_fetch_serves_the_signed_scep_profile(russet: Russet, client: TestClient) -> None:
    response = fetch(client, token(russet))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROFILE_TYPE
    assert response.headers["cache-control"] == "no-store"
    signed = verify_attached(response.content)
    assert signed.certificate == russet.authority.signer_certificate
    identity, mdm = plistlib.loads(signed.content)["PayloadContent"]
    assert identity["PayloadType"] == "com.apple.security.scep"
    assert identity["PayloadContent"]["URL"] == f"{PUBLIC_URL}/scep"
    assert (
        mdm["ServerURL"] == f"{PUBLIC_URL}/mdm/connect"
        and mdm["IdentityCertificateUUID"] == identity["PayloadUUID"]
    )
    assert count(russet, scep_challenges) == 1  # the profile's challenge, live until the device uses it


def test_token_profile_validates_against_apple_schemas(russet: Russet, client: TestClient) -> None:
    profile = plistlib.loads(verify_attached(fetch(client, token(russet)).content).content)
    assert schema_errors(load_schema("mdm/profiles/TopLevel.yaml")["payloadkeys"], profile) == []
    common = load_schema("mdm/profiles/CommonPayloadKeys.yaml")["payloadkeys"]
    for payload in profile["PayloadContent"]:
        schema = load_schema(f"mdm/profiles/{payload['PayloadType']}.yaml")
        assert schema_errors(schema["payloadkeys"] + common, payload) == [], payload["PayloadType"]


def test_device_enrolls_with_a_token_profile(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    response = fetch(client, token(russet, uses=1))
    device = SimDevice(Enrollment.from_profile(response.content, client), path_only=True)
    validate_issued(device.enrollment.certificate, russet.authority.ca_certificate)
    device.enroll(client)  # Authenticate, TokenUpdate
    command_round_trip(client, api_headers, device)
    [request] = russet.enrollment.recent_requests()
    assert request["method"] == "ota" and request["token_id"] is not None
    assert request["issued_fp"] == fingerprint(device.enrollment.certificate)  # the token's device
    assert request["identity_issued_at"] is not None


def test_unknown_missing_expired_used_up_and_revoked_tokens_are_403(
    russet: Russet, client: TestClient
) -> None:
    expired = token(russet)
    with russet.storage.engine.begin() as conn:
        conn.execute(update(enrollment_tokens).values(expires_at=utcnow() - timedelta(seconds=1)))
    used_up = token(russet, uses=1)
    revoked = russet.enrollment.create_token()
    russet.enrollment.revoke_token(revoked["id"])
    assert fetch(client, used_up).status_code == 200  # its only use
    with russet.storage.engine.begin() as conn:  # forget that one, so the refusals below are seen alone
        conn.execute(enrollment_requests.delete())
        conn.execute(scep_challenges.delete())
    assert client.head("/mdm/enroll", params={"token": revoked["token"]}).status_code == 405
    for value, reason in (
        ("enr_" + "x" * 43, "unknown enrollment token"),
        (None, "an enrollment token is required"),
        ("", "an enrollment token is required"),
        (expired, "expired at"),
        (used_up, "used 1 of 1 times"),
        (revoked["token"], "was revoked at"),
    ):
        response = fetch(client, value)
        assert response.status_code == 403 and reason in response.text, (value, response.text)
    nothing_issued(russet)
    by_id = {t["id"]: t for t in russet.enrollment.list_tokens()}
    assert [t["status"] for t in by_id.values()] == ["expired", "used up", "revoked"]
    assert by_id[revoked["id"]]["uses"] == 0  # refused fetches count nothing


def test_two_concurrent_fetches_of_a_one_use_token_get_one_profile(
    russet: Russet, client: TestClient
) -> None:
    value = token(russet, uses=1)
    start = threading.Barrier(2)
    statuses: list[int] = []

    def get() -> None:
        start.wait()
        statuses.append(fetch(client, value).status_code)

    threads = [threading.Thread(target=get) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 403]
    assert count(russet, enrollment_requests) == 1 and count(russet, scep_challenges) == 1
    assert russet.enrollment.list_tokens()[0]["uses"] == 1


def test_racing_consumers_never_exceed_the_uses(russet: Russet) -> None:
    store = EnrollmentTokenStore(russet.storage.engine)
    value, _ = store.create(timedelta(hours=1), max_uses=3)
    outcomes: list[str] = []
    start = threading.Barrier(8)

    def consume() -> None:
        start.wait()
        try:
            store.consume(value)
            outcomes.append("ok")
        except TokenRejected:
            outcomes.append("refused")

    threads = [threading.Thread(target=consume) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 5
    assert store.list()[0].uses == 3


def test_tokens_are_stored_as_hashes_only(russet: Russet) -> None:
    created = russet.enrollment.create_token(note="lab iPads")
    with russet.storage.engine.connect() as conn:
        row = conn.execute(select(enrollment_tokens)).one()
    assert created["token"] not in str(tuple(row))
    assert created["url"] == f"{ENROLL_URL}?token={created['token']}"
    assert all("token" not in t and "url" not in t for t in russet.enrollment.list_tokens())


def test_no_push_topic_is_503_and_costs_no_use(russet: Russet) -> None:
    value = token(russet, uses=1)
    untopical = dataclasses.replace(
        russet.enrollment.profile_server(),
        topic=PushTopic(russet.storage, None),  # no certificate installed and none configured
    )
    with pytest.raises(EnrollmentRefused) as refused:
        untopical.for_token(value)
    assert refused.value.status == 503 and "push" in refused.value.reason
    assert russet.enrollment.list_tokens()[0]["uses"] == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires": "7 days"}, "expected a duration"),
        ({"expires": "0m"}, "1 minute to 365 days"),
        ({"expires": "400d"}, "1 minute to 365 days"),
        ({"uses": 0}, "uses must be between"),
        ({"note": "x" * 201}, "at most 200 characters"),
    ],
)
def test_bad_token_requests_are_named(russet: Russet, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid, match=message):
        russet.enrollment.create_token(**kwargs)
    assert russet.enrollment.list_tokens() == []


def test_token_api(russet: Russet, client: TestClient, api_headers: dict[str, str]) -> None:
    assert client.get("/api/v1/enrollment/tokens").status_code == 401
    created = client.post("/api/v1/enrollment/tokens", json={"expires": "2h", "uses": 2}, headers=api_headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["url"].startswith(f"{ENROLL_URL}?token=enr_") and body["max_uses"] == 2
    assert fetch(client, body["token"]).status_code == 200
    [listed] = client.get("/api/v1/enrollment/tokens", headers=api_headers).json()
    assert listed["uses"] == 1 and listed["status"] == "active" and "token" not in listed
    revoke = f"/api/v1/enrollment/tokens/{body['id']}/revoke"
    assert client.post(revoke, headers=api_headers).json()["status"] == "revoked"
    assert client.post(revoke, headers=api_headers).status_code == 409
    assert client.post("/api/v1/enrollment/tokens/999/revoke", headers=api_headers).status_code == 404
    assert fetch(client, body["token"]).status_code == 403
    bad = client.post("/api/v1/enrollment/tokens", json={"expires": "soon"}, headers=api_headers)
    assert bad.status_code == 400 and "expected a duration" in bad.json()["detail"]
    [request] = client.get("/api/v1/enrollment/requests", headers=api_headers).json()
    assert request["method"] == "ota" and request["token_id"] == body["id"]


@pytest.fixture
def run(invoke_cli: Callable[..., Result]) -> Callable[..., tuple[int, str, str]]:
    """`russet ARGS…` as (exit code, stdout, stderr): these commands print the URL and the token
    on stdout, the notes on stderr."""

    def run_(*args: str) -> tuple[int, str, str]:
        result = invoke_cli(*args)
        return result.exit_code, result.stdout, result.stderr

    return run_


def test_token_cli(run, russet: Russet, client: TestClient) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run("enrollment", "token", "create", "--expires", "12h", "--uses", "5", "--note", "lab")
    assert code == 0, out + err
    value, url = out.split()
    assert url == f"{ENROLL_URL}?token={value}" and "shown once" in err
    assert fetch(client, value).status_code == 200
    code, out, _ = run("enrollment", "token", "list", "--json")
    [listed] = json.loads(out)
    assert listed["uses"] == 1 and listed["max_uses"] == 5 and listed["note"] == "lab"
    code, out, _ = run("enrollment", "token", "list")
    assert code == 0 and "active" in out and value not in out
    code, out, _ = run("enrollment", "token", "revoke", str(listed["id"]))
    assert code == 0 and "revoked" in out
    code, out, err = run("enrollment", "token", "revoke", str(listed["id"]))
    assert code != 0 and "already revoked" in out + err and "Traceback" not in out + err
    code, out, err = run("enrollment", "token", "create", "--expires", "forever")
    assert code != 0 and "expected a duration such as 30m, 12h or 7d" in out + err
    code, out, _ = run("enrollment", "requests")
    assert code == 0 and "ota" in out


# -- ADE: Apple-signed MachineInfo -----------------------------------------------------------------


@pytest.fixture
def ade_settings(settings: Settings, apple: TestAppleCA, tmp_path: Path) -> Settings:
    bundle = tmp_path / "ade-ca.pem"
    bundle.write_bytes(apple.pem_bundle())
    return dataclasses.replace(settings, ade_ca_file=str(bundle))


@pytest.fixture
def ade(ade_settings: Settings) -> Iterator[tuple[Russet, TestClient]]:
    server = Russet.open(ade_settings)
    with TestClient(create_app(server), base_url=PUBLIC_URL) as c:
        yield server, c
    server.close()


@pytest.fixture
def ade_headers(ade: tuple[Russet, TestClient]) -> dict[str, str]:
    return {"Authorization": f"Bearer {ade[0].storage.api_keys.create('tests')}"}


def test_abm_profiles_point_devices_at_this_endpoint(russet: Russet) -> None:
    assert ade_url(PUBLIC_URL) == ENROLL_URL
    profile = validate_profile(
        {"profile_name": "Russet"}, default_url=ade_url(PUBLIC_URL), default_org_magic="m"
    )
    assert profile["url"] == ENROLL_URL


@pytest.mark.parametrize("style", ["ios", "macos"])
def test_ade_device_gets_its_profile_and_enrolls(
    ade: tuple[Russet, TestClient], ade_headers: dict[str, str], apple: TestAppleCA, style: str
) -> None:
    russet, client = ade
    ade_device = AdeDevice(apple, style=style)  # type: ignore[arg-type]
    device = ade_device.enroll(client, ENROLL_URL)  # MachineInfo → profile → SCEP → Authenticate, TokenUpdate
    validate_issued(device.enrollment.certificate, russet.authority.ca_certificate)
    command_round_trip(client, ade_headers, device)
    enrolled = russet.storage.enrollments.get(ade_device.udid)
    assert enrolled is not None and enrolled["serial_number"] == ade_device.serial
    [request] = russet.enrollment.recent_requests()
    assert request["method"] == "ade" and request["token_id"] is None
    assert (request["udid"], request["serial_number"], request["product"]) == (
        ade_device.udid,
        ade_device.serial,
        ade_device.product,
    )
    assert (request["build_version"], request["os_version"]) == ("22B83", "18.1")
    assert request["issued_fp"] == fingerprint(device.enrollment.certificate)
    with russet.storage.engine.connect() as conn:  # IMEI and language are not kept
        assert "35 000000" not in str(conn.execute(select(enrollment_requests)).all())


@pytest.mark.parametrize(("digest", "attributes"), [("sha1", False), ("sha1", True), ("sha256", False)])
def test_ade_accepts_the_signature_shapes_devices_use(
    ade: tuple[Russet, TestClient], apple: TestAppleCA, digest: str, attributes: bool
) -> None:
    russet, client = ade
    device = AdeDevice(apple)
    response = device.post(
        client, ENROLL_URL, device.signed_request(digest=digest, signed_attributes=attributes)
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == PROFILE_TYPE
    assert verify_attached(response.content).certificate == russet.authority.signer_certificate


def test_ade_request_is_joined_to_abm_by_serial(
    ade: tuple[Russet, TestClient], ade_headers: dict[str, str], apple: TestAppleCA
) -> None:
    russet, client = ade
    device = AdeDevice(apple)
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(abm_devices).values(
                connection="school", serial_number=device.serial, generation=1, updated_at=utcnow()
            )
        )
    assert device.post(client, ENROLL_URL, device.signed_request()).status_code == 200
    [request] = client.get("/api/v1/enrollment/requests", headers=ade_headers).json()
    assert request["abm_connections"] == ["school"] and request["identity_issued_at"] is None


def other_ca_device(udid: str) -> tuple[x509.Certificate, Any, TestAppleCA]:
    impostor = TestAppleCA.create()  # same names as the real test CA, other keys
    cert, key = impostor.issue_device(udid)
    return cert, key, impostor


def bad_requests(apple: TestAppleCA) -> list[tuple[str, bytes, int, str]]:
    device = AdeDevice(apple)
    good = device.signed_request()
    info = plistlib.dumps(device.machine_info())
    other_cert, other_key, impostor = other_ca_device(device.udid)
    # A certificate the root issued directly: Apple's root also issues developer and web CAs.
    root_issued, root_issued_key = TestAppleCA(
        apple.root, apple.root_key, apple.root, apple.root_key
    ).issue_device(device.udid)
    start = good.index(device.serial.encode())
    tampered = good[:start] + b"X" + good[start + 1 :]
    missing_serial = {k: v for k, v in device.machine_info().items() if k != "SERIAL"}
    return [
        ("unsigned plist", info, 403, "not signed"),
        ("other CA", sign_machine_info(info, other_cert, other_key, [impostor.device_ca]), 403, "device CA"),
        (
            "root-issued",
            sign_machine_info(info, root_issued, root_issued_key, [apple.root]),
            403,
            "device CA",
        ),
        (
            "device CA signs itself",
            sign_machine_info(info, apple.device_ca, apple.device_ca_key, []),
            403,
            "device CA",
        ),
        ("tampered content", tampered, 403, "message digest does not match"),
        ("truncated", good[: len(good) // 2], 400, "not a CMS SignedData"),
        ("cut short", good[:-20], 400, "not a CMS SignedData"),
        ("garbage", b"\x30\x82\x01\x00" + b"\x00" * 300, 400, "not a CMS SignedData"),
        ("empty", b"", 400, "empty body"),
        ("no serial", device.signed_request(missing_serial), 400, "SERIAL is missing"),
        (
            "serial not text",
            device.signed_request({**device.machine_info(), "SERIAL": 7}),
            400,
            "SERIAL is not text",
        ),
        (
            "not a plist",
            sign_machine_info(b"hello", device.certificate, device.key, []),
            400,
            "not a property list",
        ),
        ("plist array", device.signed_request([1, 2]), 400, "not a dictionary"),  # type: ignore[arg-type]
    ]


def test_bad_ade_requests_are_refused_and_nothing_is_issued(
    ade: tuple[Russet, TestClient], apple: TestAppleCA
) -> None:
    russet, client = ade
    device = AdeDevice(apple)
    for label, body, status, reason in bad_requests(apple):
        response = device.post(client, ENROLL_URL, body)
        assert response.status_code == status and reason in response.text, (label, response.text)
    nothing_issued(russet)


def test_oversized_machine_info_is_413(ade: tuple[Russet, TestClient], apple: TestAppleCA) -> None:
    russet, client = ade
    device = AdeDevice(apple)
    padded = device.signed_request({**device.machine_info(), "PAD": "x" * MAX_MACHINE_INFO_BYTES})
    response = device.post(client, ENROLL_URL, padded)
    assert response.status_code == 413 and "limit" in response.text
    chunks = iter([b"\x30" * 40_000, b"\x30" * 40_000])  # no Content-Length: the cap holds while reading
    assert client.post("/mdm/enroll", content=chunks).status_code == 413
    nothing_issued(russet)


def test_the_shipped_apple_ca_refuses_a_test_ca_device(
    russet: Russet, client: TestClient, apple: TestAppleCA
) -> None:
    device = AdeDevice(apple)
    response = device.post(client, ENROLL_URL, device.signed_request())
    assert response.status_code == 403 and "Apple iPhone Device CA" in response.text
    nothing_issued(russet)


# -- the shipped Apple certificates and RUSSET_ADE_CA_FILE ------------------------------------------


def test_shipped_apple_chain_is_apples() -> None:
    chain = DeviceCA.load().chain
    sha256 = [c.fingerprint(hashes.SHA256()).hex(":").upper() for c in chain]
    assert sha256[-1] == APPLE_ROOT_CA_SHA256  # Apple Root CA, as Apple publishes it
    assert [c.subject.rfc4514_string() for c in chain] == [
        "CN=Apple iPhone Device CA,OU=Apple iPhone,O=Apple Inc.,C=US",
        "CN=Apple iPhone Certification Authority,OU=Apple Certification Authority,O=Apple Inc.,C=US",
        "CN=Apple Root CA,OU=Apple Certification Authority,O=Apple Inc.,C=US",
    ]
    # Each certificate's signature verifies with the next one's key, up to the pinned root, so the
    # intermediates are byte for byte what Apple signed.
    check_chain(chain)
    issued_by(chain[-1], chain[-1])
    assert (
        sha256[0]
        == "76:F2:7D:00:E1:33:3B:C8:8D:E0:E2:91:6C:38:C9:A7:F2:B7:57:74:C2:5A:79:4C:09:2A:80:E3:C4:C6:6C:CE"
    )
    assert APPLE_DEVICE_CA_CHAIN.read_text().count("BEGIN CERTIFICATE") == 3


def test_ade_ca_file_must_exist_and_be_a_device_ca_chain(tmp_path: Path, apple: TestAppleCA) -> None:
    with pytest.raises(ConfigError, match="RUSSET_ADE_CA_FILE"):
        Settings.from_env({"RUSSET_ADE_CA_FILE": str(tmp_path / "missing.pem")})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    with pytest.raises(ConfigError, match="not a PEM certificate bundle"):
        DeviceCA.load(str(garbage))
    backwards = tmp_path / "backwards.pem"
    backwards.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (apple.root, apple.device_ca)))
    with pytest.raises(ConfigError, match="must run from the device CA up to its root"):
        DeviceCA.load(str(backwards))
    device = AdeDevice(apple)
    leaf_only = tmp_path / "leaf.pem"
    leaf_only.write_bytes(device.certificate.public_bytes(Encoding.PEM))
    with pytest.raises(ConfigError, match="is not a CA"):
        DeviceCA.load(str(leaf_only))


def test_a_bad_ade_ca_file_stops_the_server_at_start(settings: Settings, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    server = Russet.open(dataclasses.replace(settings, ade_ca_file=str(garbage)))
    try:
        with pytest.raises(ConfigError, match="RUSSET_ADE_CA_FILE"):
            create_app(server)
    finally:
        server.close()


def test_chain_checks(apple: TestAppleCA) -> None:
    device = AdeDevice(apple)
    issued_by(device.certificate, apple.device_ca)  # SHA-1, RSA-1024, issuer expired: accepted
    with pytest.raises(ChainError, match="issued by"):
        issued_by(device.certificate, apple.root)
    below_a_leaf = (
        x509.CertificateBuilder()
        .subject_name(device.certificate.subject)
        .issuer_name(device.certificate.subject)
        .public_key(device.key.public_key())
        .serial_number(3)
        .not_valid_before(device.certificate.not_valid_before_utc)
        .not_valid_after(device.certificate.not_valid_after_utc)
        .sign(device.key, hashes.SHA256())
    )
    with pytest.raises(ChainError, match="not a CA"):
        issued_by(below_a_leaf, device.certificate)
    _, _, impostor = other_ca_device(device.udid)
    with pytest.raises(ChainError, match="does not verify"):
        issued_by(device.certificate, impostor.device_ca)
