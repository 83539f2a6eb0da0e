"""Enrollment profiles (.mobileconfig): the MDM payload plus a device identity, CMS-signed.

The identity payload is either SCEP (the default: the device makes its own key and asks Russet's
SCEP endpoint for a certificate with a one-time challenge, so the private key never leaves it)
or PKCS#12 (Russet generates key and certificate and ships both in the profile). The MDM payload
only refers to whichever identity payload it is given by PayloadUUID.
"""

from __future__ import annotations

import plistlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.x509.oid import NameOID

from russet.kernel.errors import Invalid
from russet.pki import issue_device_identity, pkcs12_identity, sign_attached
from russet.pki.authority import DEVICE_KIND, Authority
from russet.scep.challenges import ChallengeStore
from russet.storage.certificates import CertificateStore

ALL_ACCESS_RIGHTS = 8191
SCEP_KEY_BITS = 2048
SCEP_KEY_USAGE = 5  # 1 signing + 4 encryption: the identity signs requests and decrypts profiles
# Advertised from the first enrollment because Apple does not let a profile update add them:
# user channels, and bootstrap token escrow (SetBootstrapToken / GetBootstrapToken on Macs).
SERVER_CAPABILITIES = ["com.apple.mdm.per-user-connections", "com.apple.mdm.bootstraptoken"]


class ProfileError(Invalid, ValueError):
    """The profile cannot be built as asked; the message says what to fix.

    Still a ValueError too, for callers that catch one.
    """


@dataclass(frozen=True)
class ProfileRequest:
    public_url: str
    topic: str
    organization: str = "Russet"
    identity_days: int = 365  # PKCS#12 identities only; SCEP ones get the responder's validity
    identity: Literal["scep", "pkcs12"] = "scep"
    # Mdm-Signature on every request. Off when a TLS-terminating proxy forwards the client
    # certificate instead (RUSSET_CLIENT_CERT_HEADER): Russet then ignores signatures.
    sign_message: bool = True


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


def _pkcs12_identity(
    req: ProfileRequest, base: str, authority: Authority, certificates: CertificateStore
) -> dict[str, Any]:
    common_name = f"Russet device identity {secrets.token_hex(8)}"
    cert, key = issue_device_identity(
        authority.ca_certificate, authority.ca_key, common_name, req.identity_days
    )
    certificates.add(DEVICE_KIND, cert)  # recorded (without its key) for audit and revocation
    password = secrets.token_urlsafe(18)
    return _payload(
        "com.apple.security.pkcs12",
        f"{base}.identity",
        "Device identity",
        PayloadContent=pkcs12_identity(cert, key, password, common_name.encode()),
        Password=password,
        PayloadCertificateFileName="russet-identity.p12",
    )


def _scep_identity(req: ProfileRequest, base: str, challenges: ChallengeStore) -> dict[str, Any]:
    """A SCEP payload whose one-time challenge only buys a certificate for its own subject."""
    common_name = f"Russet device {secrets.token_hex(8)}"
    challenge = challenges.create(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    return _payload(
        "com.apple.security.scep",
        f"{base}.identity",
        "Device identity",
        PayloadContent={
            "URL": f"{req.public_url}/scep",
            "Name": req.organization,
            "Subject": [[["CN", common_name]]],
            "Challenge": challenge,
            "Keysize": SCEP_KEY_BITS,
            "Key Type": "RSA",
            "Key Usage": SCEP_KEY_USAGE,
        },
    )


def build_profile(
    req: ProfileRequest,
    authority: Authority,
    certificates: CertificateStore,
    challenges: ChallengeStore | None = None,
) -> dict[str, Any]:
    """The unsigned profile dict. A PKCS#12 identity is issued and recorded now; a SCEP one
    carries a fresh challenge from ``challenges`` (required then) and is issued on request."""
    if not req.topic.startswith("com.apple.mgmt."):
        raise ProfileError(f"the push topic must start with com.apple.mgmt., got {req.topic!r}")
    base = _identifier_base(req.public_url)
    if req.identity == "pkcs12":
        identity = _pkcs12_identity(req, base, authority, certificates)
    elif req.identity == "scep":
        if challenges is None:
            raise ProfileError("a SCEP enrollment profile needs the challenge store for its challenge")
        identity = _scep_identity(req, base, challenges)
    else:
        raise ProfileError(f"identity must be scep or pkcs12, got {req.identity!r}")
    mdm = _payload(
        "com.apple.mdm",
        f"{base}.mdm",
        "Device management",
        IdentityCertificateUUID=identity["PayloadUUID"],
        Topic=req.topic,
        ServerURL=f"{req.public_url}/mdm/connect",
        CheckInURL=f"{req.public_url}/mdm/checkin",
        SignMessage=req.sign_message,
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


@dataclass(frozen=True)
class ProfileIssuer:
    """What making a profile needs beyond what one request asks: the CA and signer, where issued
    identities and challenges are kept, the address devices use, and whether they sign requests
    (not behind a proxy that forwards client certificates, RUSSET_CLIENT_CERT_HEADER).

    The CLI's `enrollment profile` and the /mdm/enroll server make their profiles through it, so
    both hand out the same profile.
    """

    authority: Authority
    certificates: CertificateStore
    challenges: ChallengeStore
    public_url: str
    sign_message: bool = True

    def build(
        self, topic: str, *, organization: str = "Russet", identity: Literal["scep", "pkcs12"] = "scep"
    ) -> dict[str, Any]:
        """The unsigned profile dict (a SCEP identity carries a fresh one-time challenge)."""
        request = ProfileRequest(
            public_url=self.public_url,
            topic=topic,
            organization=organization,
            identity=identity,
            sign_message=self.sign_message,
        )
        return build_profile(request, self.authority, self.certificates, self.challenges)

    def sign(self, profile: dict[str, Any]) -> bytes:
        """The profile signed by Russet's signing identity, as devices install it."""
        return signed_profile(profile, self.authority)
