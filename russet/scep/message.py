"""SCEP pkiMessages (RFC 8894 §3): reading a request's SignedData, building the CertRep.

Both are CMS SignedData whose signed attributes carry the SCEP fields. ``cryptography`` cannot
read or add custom signed attributes, so the structures are handled with asn1crypto and only the
signature itself is computed with ``cryptography``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# Attribute OIDs: the Verisign arc used by every SCEP implementation, and RFC 8894's failInfoText.
MESSAGE_TYPE = "2.16.840.1.113733.1.9.2"
PKI_STATUS = "2.16.840.1.113733.1.9.3"
FAIL_INFO = "2.16.840.1.113733.1.9.4"
SENDER_NONCE = "2.16.840.1.113733.1.9.5"
RECIPIENT_NONCE = "2.16.840.1.113733.1.9.6"
TRANSACTION_ID = "2.16.840.1.113733.1.9.7"
FAIL_INFO_TEXT = "1.3.6.1.5.5.7.24.1"

# Longest transactionID/nonce accepted: real ones are a hash in hex (64) and 16 bytes.
_MAX_FIELD = 256


class MessageType(StrEnum):
    CERT_REP = "3"
    RENEWAL_REQ = "17"
    PKCS_REQ = "19"
    CERT_POLL = "20"
    GET_CERT = "21"
    GET_CRL = "22"


class PkiStatus(StrEnum):
    SUCCESS = "0"
    FAILURE = "2"
    PENDING = "3"


class FailInfo(StrEnum):
    BAD_ALG = "0"
    BAD_MESSAGE_CHECK = "1"
    BAD_REQUEST = "2"
    BAD_TIME = "3"
    BAD_CERT_ID = "4"


class Malformed(ValueError):
    """The body is not a readable pkiMessage: no CertRep can even say which transaction failed."""


class Refused(Exception):
    """The request is readable but refused: answered with a FAILURE CertRep carrying ``fail_info``."""

    def __init__(self, fail_info: FailInfo, reason: str) -> None:
        super().__init__(reason)
        self.fail_info = fail_info
        self.reason = reason


@dataclass(frozen=True)
class PkiRequest:
    """The SCEP fields of a request, read but not yet verified (`raw` is what to verify)."""

    raw: bytes
    message_type: str
    transaction_id: str
    sender_nonce: bytes
    envelope: bytes | None  # the encapsulated pkcsPKIEnvelope (EnvelopedData), if any


def _string(value: core.Asn1Value) -> str:
    # RFC 8894 says PrintableString; some clients send UTF8String or IA5String. Any string will do.
    native = core.load(value.dump()).native
    if not isinstance(native, str):
        raise Malformed("a SCEP string attribute is not a string")
    return native


def _octets(value: core.Asn1Value) -> bytes:
    native = core.load(value.dump()).native
    if not isinstance(native, bytes):
        raise Malformed("a SCEP nonce is not an OCTET STRING")
    return native


def _attributes(signer: cms.SignerInfo) -> dict[str, core.Asn1Value]:
    attrs = signer["signed_attrs"]
    if isinstance(attrs, core.Void):
        raise Malformed("the pkiMessage has no signed attributes (no messageType or transactionID)")
    found: dict[str, core.Asn1Value] = {}
    for attr in attrs:
        values = attr["values"]
        if len(values) != 1:
            raise Malformed(f"attribute {attr['type'].dotted} must have exactly one value")
        found[attr["type"].dotted] = values[0]
    return found


def _read(der: bytes) -> PkiRequest:
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].native != "signed_data":
        raise Malformed(f"expected a PKCS#7 SignedData pkiMessage, got {info['content_type'].native}")
    signed_data = info["content"]
    signers = signed_data["signer_infos"]
    if len(signers) != 1:
        raise Malformed(f"a pkiMessage has exactly one signer, this one has {len(signers)}")
    attrs = _attributes(signers[0])
    missing = [
        name
        for name, oid in (
            ("messageType", MESSAGE_TYPE),
            ("transactionID", TRANSACTION_ID),
            ("senderNonce", SENDER_NONCE),
        )
        if oid not in attrs
    ]
    if missing:
        raise Malformed(f"the pkiMessage lacks {', '.join(missing)}")
    transaction_id = _string(attrs[TRANSACTION_ID])
    nonce = _octets(attrs[SENDER_NONCE])
    if not transaction_id or len(transaction_id) > _MAX_FIELD or not nonce or len(nonce) > _MAX_FIELD:
        raise Malformed("transactionID or senderNonce is empty or too long")
    if not transaction_id.isascii() or not transaction_id.isprintable():
        # The CertRep echoes it as a PrintableString, and logs quote it: printable ASCII only.
        raise Malformed("the transactionID is not printable ASCII text")
    content = signed_data["encap_content_info"]["content"]
    return PkiRequest(
        raw=der,
        message_type=_string(attrs[MESSAGE_TYPE]),
        transaction_id=transaction_id,
        sender_nonce=nonce,
        envelope=None if isinstance(content, core.Void) else bytes(content),
    )


def read_request(der: bytes) -> PkiRequest:
    """Read a request's SCEP fields; raises Malformed (and only that) for anything unreadable."""
    try:
        return _read(der)
    except Malformed:
        raise
    except Exception as exc:  # asn1crypto parses lazily: bad input surfaces as many exception types
        raise Malformed(f"not a readable PKCS#7 pkiMessage ({type(exc).__name__}: {exc})") from exc


def _attribute(oid: str, value: core.Asn1Value) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": oid, "values": [value]})


def cert_rep(
    *,
    ca_certificate: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    request: PkiRequest,
    status: PkiStatus,
    fail_info: FailInfo | None = None,
    fail_text: str | None = None,
    envelope: bytes | None = None,
) -> bytes:
    """The CertRep answering ``request``: SignedData by the CA with the SCEP attributes.

    On SUCCESS ``envelope`` (the issued certificate, encrypted to the requester) is the content.
    Otherwise the pkcsPKIEnvelope is omitted (RFC 8894 §3.3.2) but the content is an empty OCTET
    STRING rather than absent: OpenSSL-based clients (certmonger) refuse to verify a SignedData
    without content.
    """
    content = envelope or b""
    attrs = [
        cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
        cms.CMSAttribute({"type": "signing_time", "values": [cms.Time({"utc_time": datetime.now(UTC)})]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(content).digest()]}),
        _attribute(MESSAGE_TYPE, core.PrintableString(MessageType.CERT_REP.value)),
        _attribute(PKI_STATUS, core.PrintableString(status.value)),
        _attribute(TRANSACTION_ID, core.PrintableString(request.transaction_id)),
        _attribute(SENDER_NONCE, core.OctetString(os.urandom(16))),
        _attribute(RECIPIENT_NONCE, core.OctetString(request.sender_nonce)),
    ]
    if fail_info is not None:
        attrs.append(_attribute(FAIL_INFO, core.PrintableString(fail_info.value)))
    if fail_text:
        attrs.append(_attribute(FAIL_INFO_TEXT, core.UTF8String(fail_text[:500])))
    signed_attrs = cms.CMSAttributes(attrs)
    # The signature covers the attributes DER-encoded as a SET (RFC 5652 §5.4), which is what
    # CMSAttributes dumps; in the SignerInfo they travel re-tagged [0] with the same contents.
    signature = ca_key.sign(signed_attrs.dump(), padding.PKCS1v15(), hashes.SHA256())
    ca_der = ca_certificate.public_bytes(serialization.Encoding.DER)
    ca_asn1 = asn1_x509.Certificate.load(ca_der)
    signed_data = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [ca_asn1],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        name="issuer_and_serial_number",
                        value={"issuer": ca_asn1.issuer, "serial_number": ca_asn1.serial_number},
                    ),
                    "digest_algorithm": {"algorithm": "sha256"},
                    "signed_attrs": signed_attrs,
                    "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                    "signature": signature,
                }
            ],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
