"""Russet's PKI: the certificate authority for device identities and CMS signing/verification."""

from russet.pki.ca import (
    CertificateRejected,
    create_ca,
    fingerprint,
    issue_device_identity,
    issue_from_public_key,
    issue_server_signing,
    pkcs12_identity,
    validate_issued,
)
from russet.pki.cms import (
    SignatureError,
    Signed,
    sign_attached,
    sign_detached,
    verify_attached,
    verify_detached,
)

__all__ = [
    "CertificateRejected",
    "SignatureError",
    "Signed",
    "create_ca",
    "fingerprint",
    "issue_device_identity",
    "issue_from_public_key",
    "issue_server_signing",
    "pkcs12_identity",
    "sign_attached",
    "sign_detached",
    "validate_issued",
    "verify_attached",
    "verify_detached",
]
