"""Fuzzing SCEP: pkiMessage and pkcsPKIEnvelope parsing, the responder, and the /scep endpoint.

A readable request gets a CertRep, anything else Malformed (400) or Refused inside a CertRep;
the endpoint never answers 5xx, whatever the query or body.
"""

from __future__ import annotations

import base64
import hashlib
import os

import pytest
from asn1crypto import cms, core
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from russet.runtime import Russet
from russet.scep import Malformed, ScepResponder
from russet.scep.challenges import ChallengeStore
from russet.scep.envelope import open_envelope
from russet.scep.message import FailInfo, Refused, read_request
from simulators.scep_client import PKCS_REQ, envelope_for, make_csr, pki_message, self_signed
from tests.fuzz_support import FUZZ, damaged

SUBJECT = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fuzz device")])
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SIGNER = self_signed(KEY, SUBJECT)


@pytest.fixture
def seeds(russet: Russet) -> tuple[bytes, bytes]:
    """A valid PKCSReq (with a live challenge) and its pkcsPKIEnvelope."""
    challenge = ChallengeStore(russet.storage.engine).create()
    csr = make_csr(KEY, SUBJECT, challenge)
    ca = russet.authority.ca_certificate
    request = pki_message(PKCS_REQ, csr, ca, SIGNER, KEY)
    return request.der, envelope_for(ca, csr.public_bytes(serialization.Encoding.DER))


@FUZZ
@given(data=st.data())
def test_fuzz_pki_message(russet: Russet, seeds: tuple[bytes, bytes], data: st.DataObject) -> None:
    der = data.draw(damaged(seeds[0]))
    try:
        read_request(der)
    except Malformed:
        pass
    responder = ScepResponder(russet.authority, ChallengeStore(russet.storage.engine))
    try:
        outcome = responder.pki_operation(der)
    except Malformed:
        return
    assert outcome.body[:1] == b"\x30"


@FUZZ
@given(data=st.data())
def test_fuzz_pkcs_pki_envelope(russet: Russet, seeds: tuple[bytes, bytes], data: st.DataObject) -> None:
    envelope = data.draw(damaged(seeds[1]))
    try:
        content, cipher = open_envelope(envelope, russet.authority.ca_certificate, russet.authority.ca_key)
    except Refused as refused:
        assert isinstance(refused.fail_info, FailInfo)
        return
    assert cipher.startswith("aes")


@FUZZ
@given(
    data=st.data(),
    operation=st.sampled_from(["PKIOperation", "PKIOperation", "GetCACaps", "GetCACert", "", "x\x00"]),
    method=st.sampled_from(["GET", "POST"]),
)
def test_fuzz_scep_endpoint(
    client: TestClient, seeds: tuple[bytes, bytes], data: st.DataObject, operation: str, method: str
) -> None:
    der = data.draw(damaged(seeds[0]))
    if method == "POST":
        response = client.post("/scep", params={"operation": operation}, content=der)
    else:
        message = data.draw(
            st.one_of(st.just(base64.b64encode(der).decode()), st.text(max_size=200), st.just(""))
        )
        response = client.get("/scep", params={"operation": operation, "message": message})
    assert response.status_code in (200, 400, 413), (response.status_code, response.text)


def signed_with_transaction_id(russet: Russet, transaction_id: core.Asn1Value) -> bytes:
    """A PKCSReq whose transactionID is ``transaction_id`` (any ASN.1 string type)."""
    envelope = envelope_for(russet.authority.ca_certificate, b"not a csr")
    attrs = cms.CMSAttributes(
        [
            cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(envelope).digest()]}),
            cms.CMSAttribute({"type": "2.16.840.1.113733.1.9.2", "values": [core.PrintableString(PKCS_REQ)]}),
            cms.CMSAttribute({"type": "2.16.840.1.113733.1.9.7", "values": [transaction_id]}),
            cms.CMSAttribute(
                {"type": "2.16.840.1.113733.1.9.5", "values": [core.OctetString(os.urandom(16))]}
            ),
        ]
    )
    signer = asn1_x509.Certificate.load(SIGNER.public_bytes(serialization.Encoding.DER))
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": "sha256"}],
            "encap_content_info": {"content_type": "data", "content": envelope},
            "certificates": [signer],
            "signer_infos": [
                {
                    "version": "v1",
                    "sid": cms.SignerIdentifier(
                        name="issuer_and_serial_number",
                        value={"issuer": signer.issuer, "serial_number": signer.serial_number},
                    ),
                    "digest_algorithm": {"algorithm": "sha256"},
                    "signed_attrs": attrs,
                    "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
                    "signature": KEY.sign(attrs.dump(), padding.PKCS1v15(), hashes.SHA256()),
                }
            ],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


@pytest.mark.parametrize("transaction_id", ["🍏", "line\nbreak", "nul\x00"])
def test_transaction_id_that_a_certrep_cannot_echo_is_a_400(
    russet: Russet, client: TestClient, transaction_id: str
) -> None:
    # An emoji in a UTF8String transactionID made building the CertRep's PrintableString raise
    # UnicodeEncodeError: a 500. Control characters would have gone into the log line as they are.
    der = signed_with_transaction_id(russet, core.UTF8String(transaction_id))
    response = client.post("/scep", params={"operation": "PKIOperation"}, content=der)
    assert response.status_code == 400, response.text
    assert "transactionID" in response.text


def test_printable_transaction_id_still_gets_a_certrep(russet: Russet, client: TestClient) -> None:
    der = signed_with_transaction_id(russet, core.UTF8String("0123abcdef+/="))
    response = client.post("/scep", params={"operation": "PKIOperation"}, content=der)
    assert response.status_code == 200 and response.content[:1] == b"\x30"
