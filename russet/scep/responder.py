"""The SCEP responder: what Russet's CA answers to GetCACaps, GetCACert and PKIOperation.

Russet is its own CA (no RA certificate): requests are encrypted to the CA certificate and
CertReps are signed by the CA key. Two requests issue certificates:

* PKCSReq, for a first identity: the CSR must carry a live one-time challenge from the
  `ChallengeStore` (and the subject it was issued for, if any). The challenge is consumed in the
  transaction that records the certificate.
* RenewalReq, for a new certificate: signed by a still-valid device identity issued by Russet's
  CA, for the same subject; the renewal is recorded so the enrollment can follow it. A PKCSReq
  signed by such an identity (rather than a self-signed certificate) is a renewal too: that is
  how clients written before RFC 8894 renew (draft-nourse-scep; certmonger does).

Every refusal is a FAILURE CertRep with a failInfo and a failInfoText saying why, and nothing is
issued or recorded.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID

from russet.pki import (
    CertificateRejected,
    SignatureError,
    fingerprint,
    issue_from_public_key,
    validate_issued,
    verify_attached,
)
from russet.pki.authority import DEVICE_KIND, Authority
from russet.scep.challenges import ChallengeRejected, ChallengeStore, RenewalRejected
from russet.scep.envelope import open_envelope, seal_envelope
from russet.scep.message import (
    FailInfo,
    MessageType,
    PkiRequest,
    PkiStatus,
    Refused,
    cert_rep,
    read_request,
)

log = logging.getLogger("russet.scep")

CAPABILITIES = ("POSTPKIOperation", "SHA-256", "AES", "SCEPStandard", "Renewal")
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class Outcome:
    """A CertRep to send, and what it says (for logs and tests)."""

    body: bytes
    status: PkiStatus
    transaction_id: str
    certificate: x509.Certificate | None = None
    fail_info: FailInfo | None = None
    reason: str | None = None


def _csr_from(content: bytes) -> x509.CertificateSigningRequest:
    try:
        csr = x509.load_der_x509_csr(content)
    except ValueError:
        raise Refused(FailInfo.BAD_REQUEST, "the decrypted content is not a PKCS#10 CSR") from None
    if not csr.is_signature_valid:
        raise Refused(FailInfo.BAD_MESSAGE_CHECK, "the CSR's self-signature does not verify")
    key = csr.public_key()
    if not isinstance(key, rsa.RSAPublicKey):
        raise Refused(FailInfo.BAD_ALG, f"only RSA keys are issued, the CSR has a {type(key).__name__}")
    if key.key_size < MIN_RSA_BITS:
        raise Refused(
            FailInfo.BAD_ALG, f"the CSR's RSA key has {key.key_size} bits; at least {MIN_RSA_BITS} needed"
        )
    return csr


def _challenge_of(csr: x509.CertificateSigningRequest) -> str:
    try:
        raw = csr.attributes.get_attribute_for_oid(AttributeOID.CHALLENGE_PASSWORD).value
    except x509.AttributeNotFound:
        raise Refused(FailInfo.BAD_REQUEST, "the CSR carries no challengePassword") from None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise Refused(FailInfo.BAD_REQUEST, "the challengePassword is not text") from None


class ScepResponder:
    def __init__(self, authority: Authority, challenges: ChallengeStore, *, days: int = 365) -> None:
        self._authority = authority
        self._challenges = challenges
        self._days = days

    def capabilities(self) -> str:
        """The GetCACaps body: one capability a line."""
        return "\n".join(CAPABILITIES) + "\n"

    def ca_certificate(self) -> bytes:
        """The GetCACert body: Russet's CA certificate, DER (one CA, no RA)."""
        return self._authority.ca_certificate.public_bytes(serialization.Encoding.DER)

    def pki_operation(self, der: bytes) -> Outcome:
        """Answer a pkiMessage with a CertRep; raises Malformed when there is nothing to answer."""
        request = read_request(der)
        try:
            signer, cert, cipher = self._issue(request)
            envelope = seal_envelope(
                pkcs7.serialize_certificates([cert], serialization.Encoding.DER), signer, cipher
            )
        except Refused as refused:
            log.warning(
                "SCEP %s %s refused (failInfo %s): %s",
                _type_name(request.message_type),
                request.transaction_id,
                refused.fail_info.name,
                refused.reason,
            )
            body = self._reply(
                request, PkiStatus.FAILURE, fail_info=refused.fail_info, fail_text=refused.reason
            )
            return Outcome(
                body, PkiStatus.FAILURE, request.transaction_id, None, refused.fail_info, refused.reason
            )
        log.info(
            "SCEP %s %s issued %s",
            _type_name(request.message_type),
            request.transaction_id,
            cert.subject.rfc4514_string(),
        )
        body = self._reply(request, PkiStatus.SUCCESS, envelope=envelope)
        return Outcome(body, PkiStatus.SUCCESS, request.transaction_id, cert)

    def _reply(
        self,
        request: PkiRequest,
        status: PkiStatus,
        *,
        envelope: bytes | None = None,
        fail_info: FailInfo | None = None,
        fail_text: str | None = None,
    ) -> bytes:
        return cert_rep(
            ca_certificate=self._authority.ca_certificate,
            ca_key=self._authority.ca_key,
            request=request,
            status=status,
            fail_info=fail_info,
            fail_text=fail_text,
            envelope=envelope,
        )

    def _issue(self, request: PkiRequest) -> tuple[x509.Certificate, x509.Certificate, str]:
        """Check and serve a request: (requester's signing certificate, issued certificate, cipher)."""
        if request.message_type not in (MessageType.PKCS_REQ, MessageType.RENEWAL_REQ):
            raise Refused(
                FailInfo.BAD_REQUEST,
                f"messageType {_type_name(request.message_type)} is not served (only PKCSReq and RenewalReq)",
            )
        try:
            signer = verify_attached(request.raw).certificate
        except SignatureError as exc:
            fail = FailInfo.BAD_ALG if "unsupported" in str(exc) else FailInfo.BAD_MESSAGE_CHECK
            raise Refused(fail, f"the pkiMessage signature is not valid: {exc}") from None
        if not isinstance(signer.public_key(), rsa.RSAPublicKey):
            raise Refused(
                FailInfo.BAD_ALG,
                "the pkiMessage must be signed with an RSA key (the reply is encrypted to it)",
            )
        if request.envelope is None:
            raise Refused(FailInfo.BAD_REQUEST, "the pkiMessage carries no pkcsPKIEnvelope")
        content, cipher = open_envelope(
            request.envelope, self._authority.ca_certificate, self._authority.ca_key
        )
        csr = _csr_from(content)
        if (
            request.message_type == MessageType.RENEWAL_REQ
            or signer.issuer == self._authority.ca_certificate.subject
        ):
            return signer, self._renew(signer, csr), cipher
        return signer, self._enroll(csr), cipher

    def _new_certificate(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        return issue_from_public_key(
            self._authority.ca_certificate, self._authority.ca_key, csr.public_key(), csr.subject, self._days
        )

    def _enroll(self, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        challenge = _challenge_of(csr)
        try:
            self._challenges.check(challenge, csr.subject)
            cert = self._new_certificate(csr)
            self._challenges.redeem(challenge, csr.subject, cert, DEVICE_KIND)
        except ChallengeRejected as exc:
            raise Refused(FailInfo.BAD_REQUEST, str(exc)) from None
        return cert

    def _renew(self, signer: x509.Certificate, csr: x509.CertificateSigningRequest) -> x509.Certificate:
        try:
            validate_issued(signer, self._authority.ca_certificate)
        except CertificateRejected as exc:
            raise Refused(
                FailInfo.BAD_MESSAGE_CHECK, f"RenewalReq not signed by a valid Russet identity: {exc}"
            ) from None
        if csr.subject.rfc4514_string() != signer.subject.rfc4514_string():
            raise Refused(
                FailInfo.BAD_REQUEST,
                f"a renewal keeps the subject {signer.subject.rfc4514_string()!r}, "
                f"the CSR asks for {csr.subject.rfc4514_string()!r}",
            )
        cert = self._new_certificate(csr)
        old_fp = fingerprint(signer)
        try:
            self._challenges.record_renewal(old_fp, cert, DEVICE_KIND)
        except RenewalRejected as exc:
            raise Refused(FailInfo.BAD_MESSAGE_CHECK, str(exc)) from None
        log.info("SCEP renewal of identity %s", old_fp)
        return cert


def _type_name(message_type: str) -> str:
    try:
        return MessageType(message_type).name
    except ValueError:
        return repr(message_type)
