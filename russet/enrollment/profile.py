"""Enrollment profiles (.mobileconfig): the MDM payload plus a device identity, CMS-signed.

The identity here is a PKCS#12 payload issued by Russet's CA (the server generates the key).
SCEP, where the device makes its own key, will be a second identity payload builder: the MDM
payload only refers to whichever identity payload it is given by PayloadUUID.
"""

from __future__ import annotations

import plistlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from russet.enrollment.authority import DEVICE_KIND, Authority
from russet.pki import issue_device_identity, pkcs12_identity, sign_attached
from russet.storage.certificates import CertificateStore

ALL_ACCESS_RIGHTS = 8191
# Advertised from the first enrollment because Apple does not let a profile update add it.
SERVER_CAPABILITIES = ["com.apple.mdm.per-user-connections"]


class ProfileError(ValueError):
    """The profile cannot be built as asked; the message says what to fix."""


@dataclass(frozen=True)
class ProfileRequest:
    public_url: str
    topic: str
    organization: str = "Russet"
    identity_days: int = 365


def _identifier_base(public_url: str) -> str:
    host = urlsplit(public_url).hostname or "localhost"
    return ".".join(reversed(host.split("."))) + ".russet"


def _payload(payload_type: str, identifier: str, display_name: str, **content: Any) -> dict[str, Any]:
    return {
        "PayloadType": payload_type,
        "PayloadVersion": 1,
        "PayloadIdentifier": identifier,
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": display_name,
        **content,
    }


def build_profile(
    req: ProfileRequest, authority: Authority, certificates: CertificateStore
) -> dict[str, Any]:
    """The unsigned profile dict, with a freshly issued identity recorded in the store."""
    if not req.topic.startswith("com.apple.mgmt."):
        raise ProfileError(f"the push topic must start with com.apple.mgmt., got {req.topic!r}")
    base = _identifier_base(req.public_url)
    common_name = f"Russet device identity {secrets.token_hex(8)}"
    cert, key = issue_device_identity(
        authority.ca_certificate, authority.ca_key, common_name, req.identity_days
    )
    certificates.add(DEVICE_KIND, cert)  # recorded (without its key) for audit and revocation
    password = secrets.token_urlsafe(18)
    identity = _payload(
        "com.apple.security.pkcs12",
        f"{base}.identity",
        "Device identity",
        PayloadContent=pkcs12_identity(cert, key, password, common_name.encode()),
        Password=password,
        PayloadCertificateFileName="russet-identity.p12",
    )
    mdm = _payload(
        "com.apple.mdm",
        f"{base}.mdm",
        "Device management",
        IdentityCertificateUUID=identity["PayloadUUID"],
        Topic=req.topic,
        ServerURL=f"{req.public_url}/mdm/connect",
        CheckInURL=f"{req.public_url}/mdm/checkin",
        SignMessage=True,
        AccessRights=ALL_ACCESS_RIGHTS,
        CheckOutWhenRemoved=True,
        ServerCapabilities=SERVER_CAPABILITIES,
    )
    return {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": f"{base}.enrollment",
        "PayloadUUID": str(uuid.uuid4()).upper(),
        "PayloadDisplayName": f"{req.organization} MDM enrollment",
        "PayloadDescription": f"Enrolls this device in {req.organization}'s device management.",
        "PayloadOrganization": req.organization,
        "PayloadContent": [identity, mdm],
    }


def signed_profile(profile: dict[str, Any], authority: Authority) -> bytes:
    """DER CMS SignedData with the profile attached, signed by Russet's signing identity."""
    return sign_attached(
        plistlib.dumps(profile),
        authority.signer_certificate,
        authority.signer_key,
        [authority.ca_certificate],
    )
