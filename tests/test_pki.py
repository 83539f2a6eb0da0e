"""Russet's CA and CMS code, including interoperability with the openssl command line."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import cms as asn1_cms
from asn1crypto import core
from asn1crypto import pkcs12 as asn1_pkcs12
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from russet.pki import (
    CertificateRejected,
    SignatureError,
    create_ca,
    fingerprint,
    issue_device_identity,
    issue_from_public_key,
    issue_server_signing,
    pkcs12_identity,
    sign_attached,
    sign_detached,
    validate_issued,
    verify_attached,
    verify_detached,
)

BODY = (
    b'<?xml version="1.0"?><plist version="1.0"><dict>'
    b"<key>MessageType</key><string>Authenticate</string></dict></plist>"
)
needs_openssl = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl command not installed")

Identity = tuple[x509.Certificate, rsa.RSAPrivateKey]


@pytest.fixture(scope="module")
def ca() -> Identity:
    return create_ca("Russet Test CA", "Russet Tests")


@pytest.fixture(scope="module")
def device(ca: Identity) -> Identity:
    return issue_device_identity(*ca, "device-1")


@pytest.fixture(scope="module")
def signature(device: Identity) -> bytes:
    return sign_detached(BODY, *device)


def _subject(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ext(cert: x509.Certificate, kind: type[x509.ExtensionType]) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_class(kind)


# --- certificate authority -------------------------------------------------------------------------


def test_ca_is_a_self_signed_leaf_only_ca(ca: Identity) -> None:
    cert, key = ca
    cert.verify_directly_issued_by(cert)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Russet Test CA"
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Russet Tests"
    assert key.key_size >= 2048
    constraints = _ext(cert, x509.BasicConstraints)
    assert constraints.critical and constraints.value == x509.BasicConstraints(ca=True, path_length=0)
    usage = _ext(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.key_cert_sign and usage.crl_sign and not usage.digital_signature
    assert _ext(cert, x509.SubjectKeyIdentifier).value == x509.SubjectKeyIdentifier.from_public_key(
        key.public_key()
    )
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert timedelta(days=3650) <= lifetime <= timedelta(days=3650, hours=1)


def test_device_identity_is_a_client_certificate_of_the_ca(ca: Identity, device: Identity) -> None:
    cert, key = device
    assert cert.public_key() == key.public_key()
    assert cert.issuer == ca[0].subject
    assert cert.subject == _subject("device-1")
    assert _ext(cert, x509.BasicConstraints).value == x509.BasicConstraints(ca=False, path_length=None)
    assert _ext(cert, x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    usage = _ext(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    ca_ski = _ext(ca[0], x509.SubjectKeyIdentifier).value
    assert isinstance(ca_ski, x509.SubjectKeyIdentifier)
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == ca_ski.digest
    validate_issued(cert, ca[0])


def test_identities_get_distinct_random_serials(ca: Identity) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    serials = {issue_from_public_key(*ca, key, _subject("d"), 30).serial_number for _ in range(5)}
    assert len(serials) == 5
    assert min(serials).bit_length() > 64


def test_ec_identity_from_public_key_validates_without_key_encipherment(ca: Identity) -> None:
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    cert = issue_from_public_key(*ca, public_key, _subject("scep-device"), 30)
    usage = _ext(cert, x509.KeyUsage).value
    assert isinstance(usage, x509.KeyUsage)
    assert usage.digital_signature and not usage.key_encipherment
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=30)
    validate_issued(cert, ca[0])


def test_leaf_never_outlives_the_ca(ca: Identity) -> None:
    cert, _ = issue_device_identity(*ca, "long-lived", days=100_000)
    assert cert.not_valid_after_utc == ca[0].not_valid_after_utc


def test_fingerprint_is_lowercase_sha256_of_der(device: Identity) -> None:
    der = device[0].public_bytes(serialization.Encoding.DER)
    assert fingerprint(device[0]) == hashlib.sha256(der).hexdigest()


def test_identity_from_another_ca_is_rejected(ca: Identity) -> None:
    other = create_ca("Someone Else", "Elsewhere")
    cert, _ = issue_device_identity(*other, "intruder")
    with pytest.raises(CertificateRejected, match="not issued by Russet's CA"):
        validate_issued(cert, ca[0])


def test_identity_from_a_ca_with_the_same_name_is_rejected(ca: Identity) -> None:
    # Same subject as Russet's CA, different key: the signature check, not the name, must decide.
    impostor = create_ca("Russet Test CA", "Russet Tests")
    cert, _ = issue_device_identity(*impostor, "forged")
    assert cert.issuer == ca[0].subject
    with pytest.raises(CertificateRejected, match="not issued by Russet's CA"):
        validate_issued(cert, ca[0])


def test_expired_identity_is_rejected(ca: Identity) -> None:
    public_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    ended = datetime(2024, 1, 31, tzinfo=UTC)
    cert = issue_from_public_key(
        *ca, public_key, _subject("old"), 30, not_before=ended - timedelta(days=30), not_after=ended
    )
    with pytest.raises(CertificateRejected, match="certificate expired on 2024-01-31"):
        validate_issued(cert, ca[0])


def test_validity_is_checked_at_the_given_time(ca: Identity, device: Identity) -> None:
    cert = device[0]
    validate_issued(cert, ca[0], now=cert.not_valid_before_utc + timedelta(seconds=1))
    validate_issued(cert, ca[0], now=cert.not_valid_after_utc.replace(tzinfo=None))
    with pytest.raises(CertificateRejected, match="expired"):
        validate_issued(cert, ca[0], now=cert.not_valid_after_utc + timedelta(seconds=1))
    with pytest.raises(CertificateRejected, match="not valid before"):
        validate_issued(cert, ca[0], now=cert.not_valid_before_utc - timedelta(seconds=1))


def test_ca_certificate_is_rejected_as_identity(ca: Identity) -> None:
    with pytest.raises(CertificateRejected, match="CA certificate"):
        validate_issued(ca[0], ca[0])


def test_profile_signing_certificate_is_not_a_device_identity(ca: Identity) -> None:
    cert, key = issue_server_signing(*ca, "Russet profile signing")
    assert cert.public_key() == key.public_key()
    purposes = _ext(cert, x509.ExtendedKeyUsage).value
    assert isinstance(purposes, x509.ExtendedKeyUsage)
    assert ExtendedKeyUsageOID.CODE_SIGNING in purposes
    with pytest.raises(CertificateRejected, match="not a client identity"):
        validate_issued(cert, ca[0])


# --- PKCS#12 ---------------------------------------------------------------------------------------


def test_pkcs12_holds_exactly_one_identity(device: Identity) -> None:
    blob = pkcs12_identity(*device, "s3cret", b"device-1")
    loaded = pkcs12.load_pkcs12(blob, b"s3cret")
    assert loaded.key is not None and loaded.cert is not None
    assert loaded.key.public_key() == device[1].public_key()
    assert loaded.cert.certificate == device[0]
    assert loaded.cert.friendly_name == b"device-1"
    assert loaded.additional_certs == []


def test_pkcs12_uses_the_legacy_algorithms_old_devices_read(device: Identity) -> None:
    blob = pkcs12_identity(*device, "s3cret", b"device-1")
    assert asn1_pkcs12.Pfx.load(blob)["mac_data"]["mac"]["digest_algorithm"]["algorithm"].native == "sha1"
    assert core.ObjectIdentifier("1.2.840.113549.1.12.1.3").dump() in blob  # pbeWithSHAAnd3-KeyTripleDES
    assert core.ObjectIdentifier("1.2.840.113549.1.5.13").dump() not in blob  # PBES2


def test_pkcs12_rejects_a_wrong_password(device: Identity) -> None:
    blob = pkcs12_identity(*device, "s3cret", b"device-1")
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(blob, b"guess")


# --- CMS: our own signer ---------------------------------------------------------------------------


def test_detached_round_trip_returns_the_signer(device: Identity, signature: bytes) -> None:
    assert verify_detached(signature, BODY).certificate == device[0]


def test_detached_round_trip_with_an_ec_signer(ca: Identity) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue_from_public_key(*ca, key.public_key(), _subject("ec-device"), 30)
    assert verify_detached(sign_detached(BODY, cert, key), BODY).certificate == cert


def test_detached_round_trip_with_rsa_pss(device: Identity) -> None:
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(*device, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), 32))
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )
    assert (
        asn1_cms.ContentInfo.load(signature)["content"]["signer_infos"][0]["signature_algorithm"][
            "algorithm"
        ].native
        == "rsassa_pss"
    )
    assert verify_detached(signature, BODY).certificate == device[0]


def test_empty_body_can_be_signed(device: Identity) -> None:
    assert verify_detached(sign_detached(b"", *device), b"").certificate == device[0]


def test_tampered_content_is_rejected(signature: bytes) -> None:
    with pytest.raises(SignatureError, match="message digest does not match"):
        verify_detached(signature, BODY.replace(b"Authenticate", b"TokenUpdate!"))


def test_signature_of_other_content_is_rejected(device: Identity) -> None:
    other = sign_detached(b"some other body", *device)
    with pytest.raises(SignatureError, match="message digest does not match"):
        verify_detached(other, BODY)


def test_tampered_signature_value_is_rejected(signature: bytes) -> None:
    # cryptography writes no unsigned attributes, so the signature value ends the DER.
    tampered = signature[:-1] + bytes([signature[-1] ^ 0x01])
    with pytest.raises(SignatureError, match="signature does not verify"):
        verify_detached(tampered, BODY)


def test_tampered_signed_attribute_is_rejected(signature: bytes) -> None:
    # Change the signing time (inside the signed attributes) without touching the digest.
    signing_time = asn1_cms.ContentInfo.load(signature)["content"]["signer_infos"][0]["signed_attrs"][1]
    assert signing_time["type"].native == "signing_time"
    original = signing_time.dump()
    assert signature.count(original) == 1
    tampered = signature.replace(original, original[:-2] + bytes([original[-2] ^ 0x01]) + original[-1:])
    with pytest.raises(SignatureError, match="signature does not verify"):
        verify_detached(tampered, BODY)


def test_signature_with_another_identitys_certificate_is_rejected(ca: Identity, device: Identity) -> None:
    # Signed by one key, but claims (and embeds) another identity's certificate.
    other_cert, _ = issue_device_identity(*ca, "device-2")
    forged = sign_detached(BODY, other_cert, device[1])
    with pytest.raises(SignatureError, match="signature does not verify"):
        verify_detached(forged, BODY)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00", b"garbage, not DER", bytes(range(256)), b"\x30\x80", b"\x30\x03\x02\x01"],
    ids=["empty", "nul", "text", "bytes", "indefinite-unterminated", "short-length"],
)
def test_garbage_is_rejected(data: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_detached(data, BODY)
    with pytest.raises(SignatureError):
        verify_attached(data)


def test_every_truncation_is_rejected(signature: bytes) -> None:
    for length in range(len(signature)):
        with pytest.raises(SignatureError):
            verify_detached(signature[:length], BODY)


def test_trailing_bytes_are_rejected(signature: bytes) -> None:
    with pytest.raises(SignatureError):
        verify_detached(signature + b"\x00", BODY)


@pytest.mark.filterwarnings("ignore:Parsed a serial number which wasn't positive")
def test_any_single_byte_corruption_raises_only_signature_error(device: Identity, signature: bytes) -> None:
    # Some bytes (e.g. inside the embedded certificate's extensions) do not affect verification;
    # whatever the outcome, nothing but SignatureError may escape.
    for position in range(len(signature)):
        for flip in (0x01, 0x80, 0xFF):
            corrupted = bytearray(signature)
            corrupted[position] ^= flip
            try:
                verify_detached(bytes(corrupted), BODY)
            except SignatureError:
                pass


def test_content_info_of_another_type_is_rejected() -> None:
    data = asn1_cms.ContentInfo({"content_type": "data", "content": b"hello"}).dump()
    with pytest.raises(SignatureError, match="expected CMS SignedData"):
        verify_detached(data, BODY)


def test_attached_signature_is_not_accepted_as_detached(device: Identity) -> None:
    attached = sign_attached(BODY, *device, [])
    with pytest.raises(SignatureError, match="expected a detached signature"):
        verify_detached(attached, BODY)


def test_detached_signature_is_not_accepted_as_attached(signature: bytes) -> None:
    with pytest.raises(SignatureError, match="does not contain the signed content"):
        verify_attached(signature)


def test_two_signers_are_rejected(ca: Identity, device: Identity) -> None:
    second = issue_device_identity(*ca, "device-2")
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(*device, hashes.SHA256())
        .add_signer(*second, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary])
    )
    with pytest.raises(SignatureError, match="exactly one signer, found 2"):
        verify_detached(signature, BODY)


def test_signature_without_embedded_certificate_is_rejected(device: Identity) -> None:
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(BODY)
        .add_signer(*device, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.NoCerts],
        )
    )
    with pytest.raises(SignatureError, match="signer certificate is not embedded"):
        verify_detached(signature, BODY)


def _resigned(signature: bytes, key: rsa.RSAPrivateKey, attributes: list[dict[str, object]]) -> bytes:
    """Replace the signed attributes and sign them again, so only the attribute checks can fail."""
    info = asn1_cms.ContentInfo.load(signature)
    signer = info["content"]["signer_infos"][0]
    signed = asn1_cms.CMSAttributes(attributes)
    signer["signature"] = key.sign(signed.dump(), padding.PKCS1v15(), hashes.SHA256())
    signer["signed_attrs"] = signed
    return info.dump(force=True)


def test_resigned_helper_keeps_a_valid_signature(device: Identity, signature: bytes) -> None:
    digest = hashlib.sha256(BODY).digest()
    attributes: list[dict[str, object]] = [
        {"type": "content_type", "values": ["data"]},
        {"type": "message_digest", "values": [digest]},
    ]
    assert verify_detached(_resigned(signature, device[1], attributes), BODY).certificate == device[0]


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ([{"type": "content_type", "values": ["data"]}], "exactly one message digest"),
        (
            [{"type": "message_digest", "values": [hashlib.sha256(BODY).digest()] * 2}],
            "exactly one message digest",
        ),
        (
            [
                {"type": "content_type", "values": ["signed_data"]},
                {"type": "message_digest", "values": [hashlib.sha256(BODY).digest()]},
            ],
            "content-type attribute does not match",
        ),
    ],
    ids=["no-digest", "two-digests", "wrong-content-type"],
)
def test_bad_signed_attributes_are_rejected(
    device: Identity, signature: bytes, attributes: list[dict[str, object]], reason: str
) -> None:
    with pytest.raises(SignatureError, match=reason):
        verify_detached(_resigned(signature, device[1], attributes), BODY)


def test_attached_round_trip_finds_the_signer_among_the_chain(ca: Identity) -> None:
    cert, key = issue_server_signing(*ca, "Russet profile signing")
    content = b"<plist>profile\r\n</plist>"
    signed = sign_attached(content, cert, key, [ca[0]])
    embedded = asn1_cms.ContentInfo.load(signed)["content"]["certificates"]
    assert len(embedded) == 2
    signed_content = verify_attached(signed)
    assert (signed_content.content, signed_content.certificate) == (content, cert)


def test_attached_with_tampered_content_is_rejected(device: Identity) -> None:
    signed = sign_attached(b"UDID=0000-1111", *device, [])
    with pytest.raises(SignatureError, match="message digest does not match"):
        verify_attached(signed.replace(b"UDID=0000-1111", b"UDID=0000-2222"))


# --- CMS: interoperability with openssl -------------------------------------------------------------


def _write_identity(
    directory: Path,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey,
) -> tuple[Path, Path]:
    cert_path, key_path = directory / "signer.pem", directory / "signer.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def _openssl_sign(
    directory: Path,
    identity: tuple[x509.Certificate, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | dsa.DSAPrivateKey],
    content: bytes,
    *options: str,
) -> bytes:
    cert_path, key_path = _write_identity(directory, *identity)
    content_path, out_path = directory / "content", directory / "signature.der"
    content_path.write_bytes(content)
    command = "openssl cms -sign -binary -outform DER -nosmimecap".split()
    command += ["-in", str(content_path), "-out", str(out_path)]
    command += ["-signer", str(cert_path), "-inkey", str(key_path)]
    subprocess.run([*command, *options], check=True, capture_output=True)
    return out_path.read_bytes()


@needs_openssl
@pytest.mark.parametrize(
    "options",
    [
        (),
        ("-noattr",),
        ("-keyid",),
        ("-md", "sha1"),
        ("-md", "sha384"),
        ("-md", "sha512"),
        ("-keyopt", "rsa_padding_mode:pss"),
        ("-keyid", "-noattr", "-keyopt", "rsa_padding_mode:pss", "-md", "sha512"),
    ],
    ids=lambda options: " ".join(options) or "default",
)
def test_openssl_detached_signature_verifies(
    tmp_path: Path, device: Identity, options: tuple[str, ...]
) -> None:
    signature = _openssl_sign(tmp_path, device, BODY, *options)
    assert verify_detached(signature, BODY).certificate == device[0]
    with pytest.raises(SignatureError):
        verify_detached(signature, BODY + b" ")


@needs_openssl
def test_openssl_detached_ec_signature_verifies(tmp_path: Path, ca: Identity) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    cert = issue_from_public_key(*ca, key.public_key(), _subject("ec-device"), 30)
    assert verify_detached(_openssl_sign(tmp_path, (cert, key), BODY), BODY).certificate == cert


@needs_openssl
def test_openssl_unsupported_algorithms_are_rejected(tmp_path: Path, ca: Identity, device: Identity) -> None:
    with pytest.raises(SignatureError, match="unsupported digest algorithm sha224"):
        verify_detached(_openssl_sign(tmp_path, device, BODY, "-md", "sha224"), BODY)
    key = dsa.generate_private_key(2048)
    cert = issue_from_public_key(*ca, key.public_key(), _subject("dsa-device"), 30)
    with pytest.raises(SignatureError, match="unsupported signature algorithm"):
        verify_detached(_openssl_sign(tmp_path, (cert, key), BODY), BODY)


@needs_openssl
@pytest.mark.parametrize("options", [("-nodetach",), ("-nodetach", "-stream")], ids=["der", "ber-streamed"])
def test_openssl_attached_signature_verifies(
    tmp_path: Path, device: Identity, options: tuple[str, ...]
) -> None:
    content = b"<plist><dict><key>UDID</key><string>abc</string></dict></plist>" * 50
    signed = _openssl_sign(tmp_path, device, content, *options)
    assert signed[1] == (0x80 if "-stream" in options else 0x82)  # indefinite or definite length
    signed_content = verify_attached(signed)
    assert (signed_content.content, signed_content.certificate) == (content, device[0])


@needs_openssl
def test_openssl_accepts_our_signatures(tmp_path: Path, ca: Identity, device: Identity) -> None:
    ca_path = tmp_path / "ca.pem"
    ca_path.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    content_path, signature_path = tmp_path / "content", tmp_path / "signature.der"
    content_path.write_bytes(BODY)
    signature_path.write_bytes(sign_detached(BODY, *device))
    verify = "openssl cms -verify -binary -inform DER -purpose any".split() + ["-CAfile", str(ca_path)]
    subprocess.run(
        [*verify, "-in", str(signature_path), "-content", str(content_path)], check=True, capture_output=True
    )
    signature_path.write_bytes(sign_attached(BODY, *device, [ca[0]]))
    result = subprocess.run([*verify, "-in", str(signature_path)], check=True, capture_output=True)
    assert result.stdout == BODY


def test_signing_time_is_reported(device: tuple[x509.Certificate, rsa.RSAPrivateKey]) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    signed = verify_detached(sign_detached(BODY, *device), BODY)
    assert signed.signing_time is not None
    assert before <= signed.signing_time <= datetime.now(UTC) + timedelta(seconds=1)
