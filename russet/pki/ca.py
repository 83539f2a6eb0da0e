"""Russet's certificate authority: issuing and checking device identities.

Everything here is pure: keys and certificates go in and come out as ``cryptography`` objects, and
the caller decides how to persist them (PEM/DER, private keys encrypted at rest).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import PrivateFormat, pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# Certificates start a little in the past so a device whose clock runs slightly behind still
# accepts an identity it has just been given.
_BACKDATE = timedelta(minutes=5)
# 3072 bits keeps the CA within NIST guidance for its whole ten-year life; leaves live a year.
_CA_KEY_BITS = 3072
_LEAF_KEY_BITS = 2048


class CertificateRejected(Exception):
    """A certificate presented to Russet is not an acceptable identity; ``str()`` says why."""


def _new_rsa_key(bits: int) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def create_ca(
    common_name: str, organization: str, days: int = 3650
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """Create the self-signed CA that issues device identities and Russet's signing certificate.

    ``pathlen=0`` because this CA only ever signs end-entity certificates.
    """
    key = _new_rsa_key(_CA_KEY_BITS)
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        ]
    )
    ca_usage = key_usage(key_cert_sign=True, crl_sign=True)
    cert = self_signed(key, name, days, usage=ca_usage, ca=True)
    return cert, key


def key_usage(
    *,
    digital_signature: bool = False,
    key_encipherment: bool = False,
    data_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    """A KeyUsage extension naming only what a certificate is for; every other use is off."""
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=key_encipherment,
        data_encipherment=data_encipherment,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def self_signed(
    key: rsa.RSAPrivateKey, subject: x509.Name, days: int, *, usage: x509.KeyUsage, ca: bool = False
) -> x509.Certificate:
    """A certificate `key` signs for itself, valid from a little in the past for `days`: Russet's
    CA (`ca=True`: it signs only end-entity certificates, so path length 0), or a key's public
    half handed to Apple or a device (an ABM server's certificate, the FileVault escrow one)."""
    not_before = datetime.now(UTC) - _BACKDATE
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _issue_leaf(
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    not_before: datetime,
    not_after: datetime,
    key_usage: x509.KeyUsage,
    purposes: list[x509.ObjectIdentifier],
) -> x509.Certificate:
    # A leaf that outlives its CA is unusable (the chain expires first), so never promise more.
    not_after = min(not_after, ca_cert.not_valid_after_utc)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(key_usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def issue_from_public_key(
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    public_key: CertificatePublicKeyTypes,
    subject: x509.Name,
    days: int,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """Issue a device identity (TLS client) certificate for a key held elsewhere (SCEP, ACME).

    ``not_before``/``not_after`` override the window computed from ``days``; the validity is
    always capped at the CA's own expiry. Only RSA keys get keyEncipherment: EC and EdDSA keys cannot encrypt.
    """
    start = not_before if not_before is not None else datetime.now(UTC) - _BACKDATE
    end = not_after if not_after is not None else start + timedelta(days=days)
    usage = key_usage(digital_signature=True, key_encipherment=isinstance(public_key, rsa.RSAPublicKey))
    return _issue_leaf(
        ca_cert, ca_key, public_key, subject, start, end, usage, [ExtendedKeyUsageOID.CLIENT_AUTH]
    )


def issue_device_identity(
    ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, common_name: str, days: int = 365
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """Generate a key and identity for a device that receives it as a PKCS#12 payload."""
    key = _new_rsa_key(_LEAF_KEY_BITS)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return issue_from_public_key(ca_cert, ca_key, key.public_key(), subject, days), key


def issue_server_signing(
    ca_cert: x509.Certificate, ca_key: rsa.RSAPrivateKey, common_name: str, days: int = 3650
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """Issue the certificate Russet signs enrollment profiles with.

    It carries codeSigning and emailProtection (the CMS signing purposes) but not clientAuth, so
    ``validate_issued`` never accepts it as a device identity.
    """
    key = _new_rsa_key(_LEAF_KEY_BITS)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = datetime.now(UTC) - _BACKDATE
    cert = _issue_leaf(
        ca_cert,
        ca_key,
        key.public_key(),
        subject,
        start,
        start + timedelta(days=days),
        key_usage(digital_signature=True, key_encipherment=False),
        [ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION],
    )
    return cert, key


def pkcs12_identity(
    cert: x509.Certificate, key: rsa.RSAPrivateKey, password: str, friendly_name: bytes
) -> bytes:
    """Bundle one identity (key + certificate, no CA certificates) for a PKCS#12 profile payload.

    Uses the legacy PBE-SHA1-3DES encryption and a SHA-1 MAC on purpose: older iOS and macOS
    releases cannot import the AES/PBKDF2 (PBES2) PKCS#12 files that modern defaults produce, and the
    blob only travels inside an enrollment profile protected by TLS.
    """
    encryption = (
        PrivateFormat.PKCS12.encryption_builder()
        .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
        .hmac_hash(hashes.SHA1())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(friendly_name, key, cert, None, encryption)


def validate_issued(cert: x509.Certificate, ca_cert: x509.Certificate, now: datetime | None = None) -> None:
    """Accept ``cert`` only as a device identity issued by ``ca_cert`` and valid at ``now``.

    A device identity is an end-entity certificate usable for clientAuth; anything else raises
    CertificateRejected with the reason. A naive ``now`` is taken to be UTC.
    """
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise CertificateRejected(
            f"certificate not issued by Russet's CA (issuer {cert.issuer.rfc4514_string()})"
        ) from exc
    try:
        is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if is_ca:
        raise CertificateRejected("certificate is a CA certificate, not a device identity")
    try:
        purposes = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        purposes = None  # RFC 5280: no extendedKeyUsage means any purpose
    if purposes is not None and ExtendedKeyUsageOID.CLIENT_AUTH not in purposes:
        raise CertificateRejected("certificate is not a client identity (no clientAuth usage)")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(f"certificate not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(f"certificate expired on {cert.not_valid_after_utc.isoformat()}")


@functools.lru_cache(maxsize=4096)
def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the DER, lowercase hex: the key that binds a certificate to an enrollment.
    Cached: every device request asks it of its (cached, see cms._find_signer) certificate."""
    return cert.fingerprint(hashes.SHA256()).hex()
