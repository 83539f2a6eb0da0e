"""A SCEP client (RFC 8894) playing the device's part: key, CSR, PKCSReq/RenewalReq, CertRep.

Written apart from Russet's responder on purpose (it shares no code with `russet.scep`), so a
mistake in one side's CMS handling is not mirrored by the other: the envelope is made and opened
with ``cryptography``'s PKCS#7 builders, the SCEP attributes built and read with asn1crypto, and
the CertRep signature checked here against the CA certificate from GetCACert.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import algorithms
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import AttributeOID, NameOID

_VERISIGN = "2.16.840.1.113733.1.9."
OID = {
    "messageType": _VERISIGN + "2",
    "pkiStatus": _VERISIGN + "3",
    "failInfo": _VERISIGN + "4",
    "senderNonce": _VERISIGN + "5",
    "recipientNonce": _VERISIGN + "6",
    "transactionID": _VERISIGN + "7",
    "failInfoText": "1.3.6.1.5.5.7.24.1",
}
PKCS_REQ, RENEWAL_REQ, CERT_REP = "19", "17", "3"
FAIL_INFO_NAMES = {"0": "badAlg", "1": "badMessageCheck", "2": "badRequest", "3": "badTime", "4": "badCertId"}
_SHORT_NAMES = {
    "C": NameOID.COUNTRY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "L": NameOID.LOCALITY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "CN": NameOID.COMMON_NAME,
}


class ScepHttp(Protocol):
    def get(self, url: str, *, params: dict[str, str]) -> Any: ...
    def post(self, url: str, *, params: dict[str, str], content: bytes, headers: dict[str, str]) -> Any: ...


class ScepError(Exception):
    """The server refused (FAILURE CertRep or an HTTP error); ``fail_info`` names the failInfo."""

    def __init__(self, message: str, fail_info: str | None = None, text: str | None = None) -> None:
        super().__init__(message)
        self.fail_info = fail_info
        self.text = text


@dataclass(frozen=True)
class Request:
    """A pkiMessage ready to send, with what is needed to read its answer."""

    der: bytes
    transaction_id: str
    nonce: bytes
    signer: x509.Certificate
    signer_key: rsa.RSAPrivateKey


def subject_from_apple(subject: list[list[list[str]]]) -> x509.Name:
    """An X.500 name from a SCEP payload's Subject: [[["CN", "x"]], [["O", "y"]]]."""
    rdns = []
    for rdn in subject:
        attrs = [
            x509.NameAttribute(_SHORT_NAMES.get(kind) or x509.ObjectIdentifier(kind), value)
            for kind, value in rdn
        ]
        rdns.append(x509.RelativeDistinguishedName(attrs))
    return x509.Name(rdns)


def make_csr(
    key: rsa.RSAPrivateKey, subject: x509.Name, challenge: str | None
) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if challenge is not None:
        builder = builder.add_attribute(AttributeOID.CHALLENGE_PASSWORD, challenge.encode())
    return builder.sign(key, hashes.SHA256())


def self_signed(key: rsa.RSAPrivateKey, subject: x509.Name) -> x509.Certificate:
    """The throw-away certificate a first request is signed with (and the reply encrypted to)."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )


def _attr(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": oid, "values": [value]})


def envelope_for(ca: x509.Certificate, content: bytes) -> bytes:
    """The pkcsPKIEnvelope: ``content`` encrypted to the CA (AES-256, as SCEPStandard allows)."""
    return (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(content)
        .add_recipient(ca)
        .set_content_encryption_algorithm(algorithms.AES256)
        .encrypt(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )


def pki_message(
    message_type: str,
    csr: x509.CertificateSigningRequest,
    ca: x509.Certificate,
    signer: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
) -> Request:
    """Encrypt the CSR to the CA and sign it with the SCEP attributes, as RFC 8894 §3.2 says."""
    spki = csr.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    transaction_id = hashlib.sha256(spki).hexdigest()  # RFC 8894 §3.2.1.1: a hash of the key
    envelope = envelope_for(ca, csr.public_bytes(serialization.Encoding.DER))
    return signed_message(message_type, envelope, signer, signer_key, transaction_id)


def signed_message(
    message_type: str,
    envelope: bytes,
    signer: x509.Certificate,
    signer_key: rsa.RSAPrivateKey,
    transaction_id: str,
) -> Request:
    """Wrap any pkcsPKIEnvelope in the signed pkiMessage (tests hand it broken envelopes)."""
    nonce = os.urandom(16)
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(envelope).digest()]}),
            _attr(OID["messageType"], core.PrintableString(message_type)),
            _attr(OID["transactionID"], core.PrintableString(transaction_id)),
            _attr(OID["senderNonce"], core.OctetString(nonce)),
        ]
    )
    signature = signer_key.sign(attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    signer_asn1 = asn1_x509.Certificate.load(signer.public_bytes(serialization.Encoding.DER))
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data", "content": envelope},
            "certificates": [signer_asn1],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        name="issuer_and_serial_number",
                        value={"issuer": signer_asn1.issuer, "serial_number": signer_asn1.serial_number},
                    ),
                    "digest_algorithm": {"algorithm": "sha256"},
                    "signed_attrs": attrs,
                    "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                    "signature": signature,
                }
            ],
        }
    )
    der = cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()
    return Request(der, transaction_id, nonce, signer, signer_key)


def _values(signer_info: cms.SignerInfo) -> dict[str, Any]:
    return {
        attr["type"].dotted: core.load(attr["values"][0].dump()).native
        for attr in signer_info["signed_attrs"]
    }


def read_cert_rep(body: bytes, ca: x509.Certificate, request: Request) -> x509.Certificate:
    """Check a CertRep (CA signature, nonce, transaction) and open the issued certificate."""
    signed = cms.ContentInfo.load(body)["content"]
    [signer_info] = signed["signer_infos"]
    content = signed["encap_content_info"]["content"]
    data = b"" if isinstance(content, core.Void) else bytes(content)
    attrs = _values(signer_info)
    if not hmac.compare_digest(attrs["1.2.840.113549.1.9.4"], hashlib.sha256(data).digest()):
        raise ScepError("CertRep message digest does not match its content")
    to_verify = b"\x31" + signer_info["signed_attrs"].dump()[1:]
    public_key = ca.public_key()
    assert isinstance(public_key, rsa.RSAPublicKey)
    public_key.verify(signer_info["signature"].native, to_verify, padding.PKCS1v15(), hashes.SHA256())
    if attrs[OID["messageType"]] != CERT_REP or attrs[OID["transactionID"]] != request.transaction_id:
        raise ScepError("the reply is not the CertRep for this transaction")
    if attrs[OID["recipientNonce"]] != request.nonce:
        raise ScepError("the CertRep does not echo our senderNonce")
    status = attrs[OID["pkiStatus"]]
    if status != "0":
        info = str(attrs.get(OID["failInfo"]))
        text = attrs.get(OID["failInfoText"])
        raise ScepError(f"SCEP FAILURE {FAIL_INFO_NAMES.get(info, info)}: {text}", info, text)
    degenerate = pkcs7.pkcs7_decrypt_der(data, request.signer, request.signer_key, [])
    [cert] = pkcs7.load_der_pkcs7_certificates(degenerate)
    return cert


class ScepClient:
    """Talks to one SCEP URL over any client with httpx's get/post (httpx, Starlette's TestClient)."""

    def __init__(self, http: ScepHttp, url: str) -> None:
        self._http = http
        self._url = url

    def capabilities(self) -> list[str]:
        response = self._http.get(self._url, params={"operation": "GetCACaps"})
        response.raise_for_status()
        return [line.strip() for line in response.text.splitlines() if line.strip()]

    def ca_certificate(self) -> x509.Certificate:
        response = self._http.get(self._url, params={"operation": "GetCACert"})
        response.raise_for_status()
        return x509.load_der_x509_certificate(response.content)

    def send(self, der: bytes) -> Any:
        """POST a pkiMessage as is (tests send broken ones through here)."""
        return self._http.post(
            self._url,
            params={"operation": "PKIOperation"},
            content=der,
            headers={"Content-Type": "application/x-pki-message"},
        )

    def exchange(self, request: Request, ca: x509.Certificate) -> x509.Certificate:
        response = self.send(request.der)
        if response.status_code != 200:
            raise ScepError(f"PKIOperation refused: HTTP {response.status_code} {response.text.strip()}")
        return read_cert_rep(response.content, ca, request)

    def enroll(
        self, subject: x509.Name, challenge: str | None, key_size: int = 2048
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A first identity: new key, CSR with the challenge, PKCSReq signed by a self-signed cert."""
        ca = self.ca_certificate()
        key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        csr = make_csr(key, subject, challenge)
        request = pki_message(PKCS_REQ, csr, ca, self_signed(key, subject), key)
        return self.exchange(request, ca), key

    def renew(
        self, cert: x509.Certificate, key: rsa.RSAPrivateKey, key_size: int = 2048
    ) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A new identity for the same subject, asked for with the current one (RenewalReq)."""
        ca = self.ca_certificate()
        new_key = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
        csr = make_csr(new_key, cert.subject, None)
        return self.exchange(pki_message(RENEWAL_REQ, csr, ca, cert, key), ca), new_key
