"""The push certificate's lifecycle: CSR, vendor signing, import, status (protocol doc §d.1–§d.2).

A stand-in "Apple" CA (simulators.apns.FakeAppleCA) issues the push certificate for the CSR's key,
with the topic in the subject UID, and the MDM vendor certificate that signs the request.
"""

from __future__ import annotations

import base64
import json
import plistlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from russet.apns.certificate import (
    PENDING_KEY,
    ApnsCertificateError,
    create_push_csr,
    expiry_warning,
    import_push_certificate,
    pending_key,
    push_identity,
    push_status,
    vendor_sign,
)
from russet.config import Settings
from russet.runtime import Russet
from simulators.apns import FakeAppleCA

CERT_TOPIC = "com.apple.mgmt.External.6a0a852b-efaa-4267-94ca-f1a3e6a9e43e"
OTHER_TOPIC = "com.apple.mgmt.External.11111111-2222-4333-8444-555555555555"


def pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA("Apple Worldwide Developer Relations Certification Authority")


@pytest.fixture(scope="module")
def vendor(apple: FakeAppleCA) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    return apple.issue_vendor_certificate()


@pytest.fixture
def run(invoke_cli: Callable[..., Result]) -> Callable[..., Result]:
    return invoke_cli  # these tests read stdout and stderr apart


def one_line_error(result: Result) -> str:
    """A failed command prints exactly one `Error:` line and no traceback."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def issue_for_csr(
    apple: FakeAppleCA, csr_file: Path, topic: str | None, **kwargs: object
) -> x509.Certificate:
    csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    return apple.issue_push_certificate(csr.public_key(), topic, **kwargs)  # type: ignore[arg-type]


def test_csr_vendor_sign_import_status(
    run: Callable[..., Result],
    tmp_path: Path,
    apple: FakeAppleCA,
    vendor: tuple[x509.Certificate, rsa.RSAPrivateKey],
    settings: Settings,
) -> None:
    result = run("apns", "status")
    assert result.exit_code == 0 and "no APNs push certificate installed" in result.stdout

    # 1. The customer's instance makes the key and the CSR.
    csr_file = tmp_path / "push.csr"
    result = run("apns", "csr", "--out", str(csr_file))
    assert result.exit_code == 0, result.output
    csr = x509.load_pem_x509_csr(csr_file.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=Russet APNs"
    csr_key = csr.public_key()
    assert isinstance(csr_key, rsa.RSAPublicKey) and csr_key.key_size == 2048
    assert "--force" in one_line_error(run("apns", "csr", "--out", str(tmp_path / "again.csr")))
    assert run("apns", "status", "--json").exit_code == 0
    assert json.loads(run("apns", "status", "--json").stdout) == {"installed": False, "pending_key": True}

    # 2. The vendor signs it (no database needed).
    vendor_cert, vendor_key = vendor
    (tmp_path / "vendor.pem").write_bytes(pem(vendor_cert))
    (tmp_path / "vendor.key").write_bytes(key_pem(vendor_key))
    (tmp_path / "wwdr.pem").write_bytes(apple.pem)
    request_file = tmp_path / "request.b64"
    result = run(
        "apns", "vendor-sign", "--csr", str(csr_file), "--vendor-cert", str(tmp_path / "vendor.pem"),
        "--vendor-key", str(tmp_path / "vendor.key"), "--chain", str(tmp_path / "wwdr.pem"),
        "--out", str(request_file),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # a proper vendor certificate and chain: no warnings
    request = plistlib.loads(base64.b64decode(request_file.read_text()))
    assert set(request) == {"PushCertRequestCSR", "PushCertCertificateChain", "PushCertSignature"}
    csr_der = base64.b64decode(request["PushCertRequestCSR"])
    assert csr_der == csr.public_bytes(serialization.Encoding.DER)
    vendor_public = vendor_cert.public_key()
    assert isinstance(vendor_public, rsa.RSAPublicKey)
    vendor_public.verify(
        base64.b64decode(request["PushCertSignature"]), csr_der, padding.PKCS1v15(), hashes.SHA256()
    )
    chain = x509.load_pem_x509_certificates(request["PushCertCertificateChain"].encode())
    assert chain == [vendor_cert, apple.cert]
    assert all(len(line) <= 64 for line in request["PushCertCertificateChain"].splitlines())

    # 3. "Apple" issues the certificate; the customer imports it.
    cert_file = tmp_path / "MDM_Russet_Certificate.pem"
    cert_file.write_bytes(pem(issue_for_csr(apple, csr_file, CERT_TOPIC)))
    result = run("apns", "import", str(cert_file))
    assert result.exit_code == 0, result.output
    assert f"installed the APNs push certificate: topic {CERT_TOPIC}" in result.stdout

    status = json.loads(run("apns", "status", "--json").stdout)
    assert status["installed"] and status["topic"] == CERT_TOPIC
    assert status["days_left"] in (364, 365) and status["warning"] is None and not status["expired"]
    assert status["pending_key"] is False  # the key moved to the certificate store
    result = run("apns", "status")
    assert CERT_TOPIC in result.stdout and "days_left" in result.stdout and result.stderr == ""

    # The key never left: the installed identity pairs Apple's certificate with the CSR's key.
    russet = Russet.open(settings)
    try:
        found = push_identity(russet.storage)
        assert found is not None and found.topic == CERT_TOPIC
        assert found.key.public_key().public_numbers() == csr_key.public_numbers()
        assert russet.storage.settings.get_secret(PENDING_KEY) is None
        # The effective push topic is the certificate's, not RUSSET_PUSH_TOPIC.
        assert settings.push_topic != CERT_TOPIC and russet.push_topic() == CERT_TOPIC
    finally:
        russet.close()
    profile_file = tmp_path / "enroll.mobileconfig"
    assert run("enrollment", "profile", "--out", str(profile_file), "--unsigned").exit_code == 0
    profile = plistlib.loads(profile_file.read_bytes())
    mdm = next(p for p in profile["PayloadContent"] if p["PayloadType"] == "com.apple.mdm")
    assert mdm["Topic"] == CERT_TOPIC

    # Importing the same file again changes nothing; a new CSR needs no --force any more.
    result = run("apns", "import", str(cert_file))
    assert result.exit_code == 0 and "already installed" in result.stdout
    assert run("apns", "csr", "--out", str(tmp_path / "renewal.csr")).exit_code == 0


def test_vendor_sign_checks_the_vendor_identity(
    tmp_path: Path, apple: FakeAppleCA, vendor: tuple[x509.Certificate, rsa.RSAPrivateKey], russet: Russet
) -> None:
    csr = create_push_csr(russet.storage, tmp_path / "push.csr")
    csr_pem = csr.public_bytes(serialization.Encoding.PEM)
    vendor_cert, vendor_key = vendor
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(ApnsCertificateError, match="does not belong to the vendor certificate"):
        vendor_sign(csr_pem, pem(vendor_cert), key_pem(stranger))
    with pytest.raises(ApnsCertificateError, match="not a certificate signing request"):
        vendor_sign(b"garbage", pem(vendor_cert), key_pem(vendor_key))
    with pytest.raises(ApnsCertificateError, match="not a readable private key"):
        vendor_sign(csr_pem, pem(vendor_cert), b"garbage")
    with pytest.raises(ApnsCertificateError, match="expired"):
        vendor_sign(
            csr_pem, pem(vendor_cert), key_pem(vendor_key), now=datetime.now(UTC) + timedelta(days=400)
        )

    # DER CSR, no chain: signed, with a warning about the missing chain.
    request = vendor_sign(csr.public_bytes(serialization.Encoding.DER), pem(vendor_cert), key_pem(vendor_key))
    assert len(request.warnings) == 1 and "chain" in request.warnings[0]
    chain = plistlib.loads(base64.b64decode(request.text))["PushCertCertificateChain"]
    assert x509.load_pem_x509_certificates(chain.encode()) == [vendor_cert]

    # A certificate that is not an MDM vendor certificate from Apple is signed with, but warned about.
    other_ca = FakeAppleCA("Example Corp CA", organization="Example Corp")
    plain_cert, plain_key = other_ca.issue_vendor_certificate("Example Corp Code Signing")
    request = vendor_sign(csr_pem, pem(plain_cert), key_pem(plain_key), [other_ca.pem])
    assert any("MDM Vendor" in w for w in request.warnings)
    assert any("not Apple" in w for w in request.warnings)

    # Encrypted vendor keys need their password.
    encrypted = vendor_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"s3cret"),
    )
    with pytest.raises(ApnsCertificateError, match="encrypted"):
        vendor_sign(csr_pem, pem(vendor_cert), encrypted)
    assert vendor_sign(csr_pem, pem(vendor_cert), encrypted, [apple.pem], vendor_key_password=b"s3cret").text


def test_vendor_sign_cli_errors_are_one_line(
    run: Callable[..., Result], tmp_path: Path, vendor: tuple[x509.Certificate, rsa.RSAPrivateKey]
) -> None:
    vendor_cert, _ = vendor
    (tmp_path / "vendor.pem").write_bytes(pem(vendor_cert))
    (tmp_path / "wrong.key").write_bytes(
        key_pem(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    )
    run("apns", "csr", "--out", str(tmp_path / "push.csr"))
    result = run(
        "apns", "vendor-sign", "--csr", str(tmp_path / "push.csr"),
        "--vendor-cert", str(tmp_path / "vendor.pem"), "--vendor-key", str(tmp_path / "wrong.key"),
    )  # fmt: skip
    assert "does not belong to the vendor certificate" in one_line_error(result)


@pytest.fixture
def installed(russet: Russet, apple: FakeAppleCA, tmp_path: Path) -> x509.Certificate:
    """A push certificate imported the normal way (CSR, then Apple's certificate for it)."""
    create_push_csr(russet.storage, tmp_path / "push.csr")
    cert = issue_for_csr(apple, tmp_path / "push.csr", CERT_TOPIC)
    import_push_certificate(russet.storage, pem(cert))
    return cert


def assert_untouched(russet: Russet, cert: x509.Certificate) -> None:
    found = push_identity(russet.storage)
    assert found is not None and found.certificate == cert and found.topic == CERT_TOPIC


def test_bad_certificates_leave_the_current_one_untouched(
    russet: Russet, apple: FakeAppleCA, installed: x509.Certificate, tmp_path: Path
) -> None:
    current = push_identity(russet.storage)
    assert current is not None
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    past = datetime.now(UTC) - timedelta(days=400)
    cases = [
        (apple.issue_push_certificate(stranger.public_key(), CERT_TOPIC), "matches neither"),
        (
            apple.issue_push_certificate(current.key.public_key(), CERT_TOPIC, not_before=past, days=30),
            "expired",
        ),
        (apple.issue_push_certificate(current.key.public_key(), None), "no UID"),
        (apple.issue_push_certificate(current.key.public_key(), "com.example.app"), "does not start with"),
    ]
    for cert, message in cases:
        with pytest.raises(ApnsCertificateError, match=message):
            import_push_certificate(russet.storage, pem(cert))
        assert_untouched(russet, installed)
    for garbage in (
        b"",
        b"not a certificate",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ):
        with pytest.raises(ApnsCertificateError, match="not an X.509 certificate"):
            import_push_certificate(russet.storage, garbage)
    with pytest.raises(ApnsCertificateError, match="not an X.509 certificate"):
        import_push_certificate(russet.storage, key_pem(stranger))
    assert_untouched(russet, installed)


def test_import_cli_errors_are_one_line(
    run: Callable[..., Result], tmp_path: Path, apple: FakeAppleCA
) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"\x00\x01 definitely not a certificate")
    assert "not an X.509 certificate" in one_line_error(run("apns", "import", str(garbage)))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    orphan = tmp_path / "orphan.pem"
    orphan.write_bytes(pem(apple.issue_push_certificate(key.public_key(), CERT_TOPIC)))
    assert "run `russet apns csr` first" in one_line_error(run("apns", "import", str(orphan)))
    assert "does not exist" in run("apns", "import", str(tmp_path / "missing.pem")).stderr


def test_renewal_keeps_the_topic_and_may_reuse_the_key(
    russet: Russet, apple: FakeAppleCA, installed: x509.Certificate
) -> None:
    current = push_identity(russet.storage)
    assert current is not None
    renewed = apple.issue_push_certificate(current.key.public_key(), CERT_TOPIC, days=400)
    der = renewed.public_bytes(serialization.Encoding.DER)
    result = import_push_certificate(russet.storage, der)  # DER is accepted too
    assert not result.unchanged and result.previous_topic == CERT_TOPIC and result.warnings == []
    found = push_identity(russet.storage)
    assert found is not None and found.certificate == renewed
    # An older certificate (earlier expiry) is not installed over a newer one without --force.
    with pytest.raises(ApnsCertificateError, match="before the installed one"):
        import_push_certificate(russet.storage, pem(installed))
    with pytest.raises(ApnsCertificateError, match="installed before and has since been replaced"):
        import_push_certificate(russet.storage, pem(installed), force=True)
    found = push_identity(russet.storage)
    assert found is not None and found.certificate == renewed


def test_topic_change_needs_force(
    russet: Russet, apple: FakeAppleCA, installed: x509.Certificate, tmp_path: Path
) -> None:
    csr = create_push_csr(russet.storage, tmp_path / "new.csr")
    moved = apple.issue_push_certificate(csr.public_key(), OTHER_TOPIC)
    with pytest.raises(ApnsCertificateError, match="re-enroll") as refused:
        import_push_certificate(russet.storage, pem(moved))
    assert CERT_TOPIC in str(refused.value) and OTHER_TOPIC in str(refused.value)
    assert_untouched(russet, installed)
    assert pending_key(russet.storage) is not None  # still waiting, nothing consumed

    result = import_push_certificate(russet.storage, pem(moved), force=True)
    assert result.topic == OTHER_TOPIC and result.previous_topic == CERT_TOPIC
    assert any("re-enroll" in w for w in result.warnings)
    found = push_identity(russet.storage)
    assert found is not None and found.topic == OTHER_TOPIC
    assert pending_key(russet.storage) is None


def test_topic_change_via_cli(run: Callable[..., Result], tmp_path: Path, apple: FakeAppleCA) -> None:
    run("apns", "csr", "--out", str(tmp_path / "a.csr"))
    (tmp_path / "a.pem").write_bytes(pem(issue_for_csr(apple, tmp_path / "a.csr", CERT_TOPIC)))
    assert run("apns", "import", str(tmp_path / "a.pem")).exit_code == 0
    run("apns", "csr", "--out", str(tmp_path / "b.csr"))
    (tmp_path / "b.pem").write_bytes(pem(issue_for_csr(apple, tmp_path / "b.csr", OTHER_TOPIC)))
    assert "re-enroll" in one_line_error(run("apns", "import", str(tmp_path / "b.pem")))
    assert json.loads(run("apns", "status", "--json").stdout)["topic"] == CERT_TOPIC
    result = run("apns", "import", str(tmp_path / "b.pem"), "--force")
    assert result.exit_code == 0 and "re-enroll" in result.stderr
    assert json.loads(run("apns", "status", "--json").stdout)["topic"] == OTHER_TOPIC


def test_expiry_warning(apple: FakeAppleCA) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime(2030, 1, 1, tzinfo=UTC)
    cert = apple.issue_push_certificate(
        key.public_key(), CERT_TOPIC, not_before=now - timedelta(days=300), not_after=now + timedelta(days=60)
    )
    assert expiry_warning(cert, now) is None
    assert expiry_warning(cert, now + timedelta(days=29, hours=12)) is None  # 30.5 days left
    warning = expiry_warning(cert, now + timedelta(days=50))
    assert (
        warning is not None and "expires in 10 days" in warning and "identity.apple.com/pushcert" in warning
    )
    assert "in 1 day " in (expiry_warning(cert, now + timedelta(days=59)) or "")
    assert "less than a day" in (expiry_warning(cert, now + timedelta(days=59, hours=23)) or "")
    expired = expiry_warning(cert, now + timedelta(days=61))
    assert expired is not None and "expired on 2030-03-02" in expired


def test_status_warns_within_30_days(
    run: Callable[..., Result], russet: Russet, apple: FakeAppleCA, tmp_path: Path
) -> None:
    create_push_csr(russet.storage, tmp_path / "push.csr")
    soon = issue_for_csr(apple, tmp_path / "push.csr", CERT_TOPIC, days=12)
    result = import_push_certificate(russet.storage, pem(soon))
    assert any("expires in" in w for w in result.warnings)
    status = push_status(russet.storage)
    assert status["days_left"] in (11, 12) and "expires in" in status["warning"]
    cli_result = run("apns", "status")
    assert cli_result.exit_code == 0 and "warning: the APNs push certificate" in cli_result.stderr
