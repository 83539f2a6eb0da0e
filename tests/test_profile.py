"""The enrollment profile: Apple's payload schemas, signature, and a usable identity."""

from __future__ import annotations

import plistlib
from typing import Any

from cryptography.hazmat.primitives.serialization import pkcs12

from russet.pki import validate_issued, verify_attached
from russet.pki.authority import DEVICE_KIND
from russet.runtime import Russet
from tests.apple_schema import load_schema, schema_errors
from tests.conftest import PUBLIC_URL, TOPIC, new_profile


def payloads(profile: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["PayloadType"]: p for p in profile["PayloadContent"]}


def test_profile_is_signed_by_russet_and_matches_apple_schemas(russet: Russet) -> None:
    signed = verify_attached(new_profile(russet))
    assert signed.certificate == russet.authority.signer_certificate
    profile = plistlib.loads(signed.content)

    top = load_schema("mdm/profiles/TopLevel.yaml")
    assert schema_errors(top["payloadkeys"], profile) == []
    common = load_schema("mdm/profiles/CommonPayloadKeys.yaml")["payloadkeys"]
    for payload_type, payload in payloads(profile).items():
        schema = load_schema(f"mdm/profiles/{payload_type}.yaml")
        assert schema_errors(schema["payloadkeys"] + common, payload) == [], payload_type


def test_mdm_payload_points_at_russet(russet: Russet) -> None:
    profile = plistlib.loads(verify_attached(new_profile(russet)).content)
    mdm = payloads(profile)["com.apple.mdm"]
    identity = payloads(profile)["com.apple.security.pkcs12"]
    assert mdm["ServerURL"] == f"{PUBLIC_URL}/mdm/connect"
    assert mdm["CheckInURL"] == f"{PUBLIC_URL}/mdm/checkin"
    assert mdm["Topic"] == TOPIC
    assert mdm["SignMessage"] is True and mdm["CheckOutWhenRemoved"] is True
    assert mdm["AccessRights"] == 8191
    assert mdm["IdentityCertificateUUID"] == identity["PayloadUUID"]
    assert "com.apple.mdm.per-user-connections" in mdm["ServerCapabilities"]
    # Identity payloads install before the MDM payload that uses them.
    assert [p["PayloadType"] for p in profile["PayloadContent"]][-1] == "com.apple.mdm"


def test_identity_opens_with_its_password_and_chains_to_the_ca(russet: Russet) -> None:
    profile = plistlib.loads(verify_attached(new_profile(russet)).content)
    identity = payloads(profile)["com.apple.security.pkcs12"]
    key, cert, extra = pkcs12.load_key_and_certificates(
        identity["PayloadContent"], identity["Password"].encode()
    )
    assert key is not None and cert is not None and not extra
    validate_issued(cert, russet.authority.ca_certificate)
    assert russet.storage.certificates.count(DEVICE_KIND) == 1


def test_each_profile_has_its_own_identity(russet: Russet) -> None:
    first = payloads(plistlib.loads(verify_attached(new_profile(russet)).content))[
        "com.apple.security.pkcs12"
    ]
    second = payloads(plistlib.loads(verify_attached(new_profile(russet)).content))[
        "com.apple.security.pkcs12"
    ]
    assert first["PayloadContent"] != second["PayloadContent"]
    assert first["Password"] != second["Password"]


def test_ca_key_is_sealed_at_rest(russet: Russet) -> None:
    from cryptography.hazmat.primitives import serialization
    from sqlalchemy import select

    from russet.storage.tables import certificates

    ca_key_der = russet.authority.ca_key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with russet.storage.engine.connect() as conn:
        sealed = [row.sealed_key for row in conn.execute(select(certificates.c.sealed_key)) if row.sealed_key]
    assert sealed and all(ca_key_der[40:80] not in blob for blob in sealed)
