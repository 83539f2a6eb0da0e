"""FileVault personal recovery key escrow: the certificate Russet holds, the profile payloads that
make a Mac escrow its key to it, and opening the CMS envelope the Mac answers with.

The Mac encrypts its personal recovery key (PRK) to the certificate of the profile's
`com.apple.security.FDERecoveryKeyEscrow` payload and reports it as `FDE_PersonalRecoveryKeyCMS`
in SecurityInfo; `RotateFileVaultKey` answers a new key the same way (`EncryptedNewRecoveryKey`,
to its `ReplyEncryptionCertificate`). Only Russet's key opens either.
"""

from __future__ import annotations

import plistlib
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from russet.kernel.errors import Invalid
from russet.pki.ca import key_usage, self_signed
from russet.storage.certificates import CertificateStore

CERT_KIND = "filevault-escrow"
MAX_CMS_BYTES = 64 * 1024  # a PRK envelope is ~1 KiB; anything this big is not one
MAX_KEY_CHARS = 256
PROFILE_IDENTIFIER = "russet.filevault"

Identity = tuple[x509.Certificate, rsa.RSAPrivateKey]


def escrow_identity(certificates: CertificateStore) -> Identity:
    """Russet's FileVault escrow certificate and key, made on first use (RSA: what macOS
    encrypts the recovery key to). Processes making it at once end with one, which all use
    (`CertificateStore.sole_identity`): a profile made with the other would escrow keys that
    nothing could open."""
    cert, key = certificates.sole_identity(CERT_KIND, make_escrow_identity)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise RuntimeError("the FileVault escrow key is not an RSA key")
    return cert, key


def make_escrow_identity() -> Identity:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Russet FileVault recovery key escrow")])
    usage = key_usage(key_encipherment=True, data_encipherment=True)  # macOS encrypts the PRK to it
    return self_signed(key, name, 3650, usage=usage), key


def escrow_profile(cert: x509.Certificate, location: str) -> dict[str, Any]:
    """A configuration profile (unsigned) that turns FileVault on and escrows the personal recovery
    key to `cert`: com.apple.MCX.FileVault2, com.apple.security.pkcs1 and
    com.apple.security.FDERecoveryKeyEscrow. Sign it through the profile library to deliver it."""
    cert_uuid = str(uuid.uuid4()).upper()
    payloads = [
        {
            "PayloadType": "com.apple.security.pkcs1",
            "PayloadIdentifier": f"{PROFILE_IDENTIFIER}.certificate",
            "PayloadUUID": cert_uuid,
            "PayloadVersion": 1,
            "PayloadDisplayName": "FileVault recovery key escrow certificate",
            "PayloadContent": cert.public_bytes(serialization.Encoding.DER),
        },
        {
            "PayloadType": "com.apple.security.FDERecoveryKeyEscrow",
            "PayloadIdentifier": f"{PROFILE_IDENTIFIER}.escrow",
            "PayloadUUID": str(uuid.uuid4()).upper(),
            "PayloadVersion": 1,
            "Location": location,
            "EncryptCertPayloadUUID": cert_uuid,
        },
        {
            "PayloadType": "com.apple.MCX.FileVault2",
            "PayloadIdentifier": f"{PROFILE_IDENTIFIER}.enable",
            "PayloadUUID": str(uuid.uuid4()).upper(),
            "PayloadVersion": 1,
            "Enable": "On",
            "Defer": True,
            "UseRecoveryKey": True,
            "ShowRecoveryKey": False,
        },
    ]
    return {
        "PayloadType": "Configuration",
        "PayloadIdentifier": PROFILE_IDENTIFIER,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadVersion": 1,
        "PayloadDisplayName": "FileVault",
        "PayloadScope": "System",
        "PayloadContent": payloads,
    }


def open_key(envelope: object, identity: Identity) -> str:
    """The recovery key inside a CMS envelope the Mac encrypted to Russet's certificate.

    The envelope is device input: bounded, and every failure is Invalid with the reason (never
    the bytes). macOS puts the key itself in the envelope; a property list holding it under
    `RecoveryKey` is accepted too.
    """
    if not isinstance(envelope, bytes) or not envelope:
        raise Invalid("the FileVault recovery key envelope is missing or not data")
    if len(envelope) > MAX_CMS_BYTES:
        raise Invalid(f"the FileVault recovery key envelope is larger than {MAX_CMS_BYTES} bytes")
    cert, key = identity
    try:
        content = pkcs7.pkcs7_decrypt_der(envelope, cert, key, [])
    except ValueError as exc:
        raise Invalid(f"the FileVault recovery key envelope cannot be opened: {exc}") from None
    if content.startswith((b"<?xml", b"bplist")):
        try:
            parsed = plistlib.loads(content)
        except Exception:
            raise Invalid("the FileVault recovery key envelope holds a malformed property list") from None
        content = parsed.get("RecoveryKey", b"") if isinstance(parsed, dict) else b""
        content = content.encode() if isinstance(content, str) else content
    try:
        text = content.decode("ascii").strip()
    except (UnicodeDecodeError, AttributeError):
        raise Invalid("the FileVault recovery key is not ASCII text") from None
    if not text or len(text) > MAX_KEY_CHARS or not text.isprintable():
        raise Invalid("the FileVault recovery key is empty, too long or not printable")
    return text
