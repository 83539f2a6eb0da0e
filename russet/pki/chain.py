"""Checking that one certificate issued another, by the few rules that matter for device CAs.

Apple's devices sign their MachineInfo with a certificate from the "Apple iPhone Device CA", an
RSA-1024 CA that signs with SHA-1 and expired in 2014; devices still present it, and MicroMDM,
Zentral and Fleet accept it the same way. ``cryptography``'s path validation rightly refuses all of
that for the web PKI (and ``verify_directly_issued_by`` refuses SHA-1), so the checks are made here
directly: issuer name, the issuer's CA flags, and the signature over the to-be-signed bytes.
Validity periods are deliberately not checked; callers that need them check them themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa


class ChainError(Exception):
    """A certificate was not issued by the one it is checked against; ``str()`` says why."""


def _label(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _may_sign_certificates(issuer: x509.Certificate) -> None:
    if not is_ca(issuer):
        raise ChainError(f"{_label(issuer)} is not a CA certificate (no basicConstraints CA:TRUE)")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not usage.key_cert_sign:
        raise ChainError(f"{_label(issuer)} may not sign certificates (keyUsage lacks keyCertSign)")


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> None:
    """Raise ChainError unless ``issuer`` (a CA) signed ``cert``. SHA-1 is accepted; time is not checked."""
    if cert.issuer != issuer.subject:
        raise ChainError(f"issued by {cert.issuer.rfc4514_string()}, not by {_label(issuer)}")
    _may_sign_certificates(issuer)
    try:
        digest = cert.signature_hash_algorithm
        parameters = cert.signature_algorithm_parameters
    except UnsupportedAlgorithm as exc:
        raise ChainError(f"unsupported certificate signature algorithm: {exc}") from None
    if digest is None:
        oid = cert.signature_algorithm_oid.dotted_string
        raise ChainError(f"unsupported certificate signature algorithm {oid}")
    key = issuer.public_key()
    try:
        if isinstance(key, rsa.RSAPublicKey) and isinstance(parameters, padding.PKCS1v15 | padding.PSS):
            key.verify(cert.signature, cert.tbs_certificate_bytes, parameters, digest)
        elif isinstance(key, ec.EllipticCurvePublicKey) and isinstance(parameters, ec.ECDSA):
            key.verify(cert.signature, cert.tbs_certificate_bytes, parameters)
        else:
            raise ChainError(
                f"{_label(issuer)} has a {type(key).__name__}, which cannot have made this certificate's "
                f"{cert.signature_algorithm_oid.dotted_string} signature"
            )
    except InvalidSignature:
        raise ChainError(f"the signature does not verify with {_label(issuer)}'s key") from None


def check_chain(chain: Sequence[x509.Certificate]) -> None:
    """Raise ChainError unless each certificate was issued by the next one (a CA bundle's order)."""
    for position, (child, parent) in enumerate(zip(chain, chain[1:], strict=False), start=1):
        try:
            issued_by(child, parent)
        except ChainError as exc:
            raise ChainError(
                f"certificate {position} ({_label(child)}) is not issued by the next: {exc}"
            ) from None
