"""Russet's certificate authority and profile-signing identity, as the features use them.

`Authority` holds the CA (which issues device identities: enrollment's profiles and SCEP) and the
identity that signs profiles; the kinds name them in the certificate store. Loading or creating
them is `russet.enrollment.authority.ensure_authority` (first-start work, under the first-start
lock). Here, below the features, so SCEP and enrollment share the type without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

CA_KIND = "ca"
SIGNER_KIND = "server_signing"
DEVICE_KIND = "device_identity"


@dataclass(frozen=True)
class Authority:
    ca_certificate: x509.Certificate
    ca_key: rsa.RSAPrivateKey
    signer_certificate: x509.Certificate
    signer_key: rsa.RSAPrivateKey
