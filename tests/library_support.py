"""Profiles for the profile library's tests: built here, each payload as Apple's schema has it."""

from __future__ import annotations

import datetime as dt
import plistlib
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def payload(payload_type: str, identifier: str, **keys: Any) -> dict[str, Any]:
    base = {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
    }
    return base | keys


def wifi(**keys: Any) -> dict[str, Any]:
    """A Wi-Fi payload; `keys` add to or replace its settings (PayloadUUID too)."""
    settings = {"SSID_STR": "Office", "EncryptionType": "WPA2", "Password": "correct horse battery staple"}
    return payload(
        "com.apple.wifi.managed", "com.example.wifi.office", **(settings | {"AutoJoin": True} | keys)
    )


def passcode(**keys: Any) -> dict[str, Any]:
    settings = {"minLength": 6, "maxFailedAttempts": 10, "requireAlphanumeric": False}
    return payload(
        "com.apple.mobiledevice.passwordpolicy", "com.example.passcode.policy", **(settings | keys)
    )


def restrictions(**keys: Any) -> dict[str, Any]:
    settings = {"allowCamera": False, "allowScreenShot": True, "ratingApps": 300}
    return payload("com.apple.applicationaccess", "com.example.restrictions.main", **(settings | keys))


def profile(*payloads: dict[str, Any], identifier: str = "com.example.wifi", **top: Any) -> dict[str, Any]:
    return {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": "Office network",
        "PayloadContent": list(payloads),
        **top,
    }


def xml(value: dict[str, Any]) -> bytes:
    return plistlib.dumps(value)


def third_party_signer(
    name: str = "Example Corp Profile Signing",
) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    """A self-signed certificate such as an organisation or Apple Configurator signs with."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert, key
