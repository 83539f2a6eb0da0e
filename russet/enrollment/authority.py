"""Russet's built-in certificate authority and profile-signing identity: loaded, or made on first start.

The `Authority` type and the certificate kinds are `russet/pki/authority.py`'s.

Created once, on first start, and kept in the certificate store with keys sealed at rest.
Device identities are issued by the CA; check-ins are accepted only from certificates it
issued.
"""

from __future__ import annotations

from russet.pki import create_ca, issue_server_signing
from russet.pki.authority import CA_KIND, SIGNER_KIND, Authority
from russet.storage.certificates import CertificateStore
from russet.storage.db import NotMigrated


def ensure_authority(
    certificates: CertificateStore, organization: str = "Russet", *, create: bool = True
) -> Authority:
    """Load the CA and signing identity, creating them if this is the first start.

    Creating them is first-start work (`russet.runtime.set_up`, under the first-start lock, so
    two servers starting together make one CA); with `create=False` their absence is an error.
    """
    ca = certificates.identity(CA_KIND)
    if ca is None and not create:
        raise NotMigrated("Russet's CA has not been created yet: run `russet migrate` first")
    if ca is None:
        ca_cert, ca_key = create_ca(f"{organization} Device CA", organization)
        certificates.add(CA_KIND, ca_cert, ca_key)
    else:
        ca_cert, ca_key = ca  # type: ignore[assignment]
    signer = certificates.identity(SIGNER_KIND)
    if signer is None and not create:
        raise NotMigrated("Russet's profile signing identity is missing: run `russet migrate` first")
    if signer is None:
        signer_cert, signer_key = issue_server_signing(ca_cert, ca_key, f"{organization} Profile Signing")
        certificates.add(SIGNER_KIND, signer_cert, signer_key)
    else:
        signer_cert, signer_key = signer  # type: ignore[assignment]
    return Authority(ca_cert, ca_key, signer_cert, signer_key)
