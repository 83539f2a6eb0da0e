"""Fuzzing uploaded files: the ABM/ASM server token (S/MIME .p7m) and the APNs push certificate.

Whatever the admin uploads, the answer is the feature's own error (TokenError,
ApnsCertificateError: one CLI line, a 4xx in the API), and nothing installed is touched.
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from hypothesis import given
from hypothesis import strategies as st

from russet.abm.errors import TokenError
from russet.abm.token import MAX_TOKEN_BYTES, decrypt_server_token, make_key_pair
from russet.apns.certificate import MAX_CERTIFICATE_BYTES, ApnsCertificateError, import_push_certificate
from russet.runtime import Russet
from simulators.dep import Credentials, make_server_token
from tests.fuzz_support import FUZZ, damaged

KEY, CERT = make_key_pair("fuzz")
TOKEN = make_server_token(CERT, Credentials.new())


@FUZZ
@given(damaged(TOKEN))
def test_fuzz_abm_server_token(data: bytes) -> None:
    try:
        token = decrypt_server_token(data, CERT, KEY)
    except TokenError:
        return
    assert token.consumer_key


def test_oversized_abm_server_token_is_refused_before_parsing() -> None:
    with pytest.raises(TokenError, match="bytes"):
        decrypt_server_token(b"\x30" + b"\x00" * MAX_TOKEN_BYTES, CERT, KEY)


PUSH_CERT_PEM = CERT.public_bytes(serialization.Encoding.PEM)
PUSH_CERT_DER = CERT.public_bytes(serialization.Encoding.DER)


@FUZZ
@given(st.one_of(damaged(PUSH_CERT_PEM), damaged(PUSH_CERT_DER)))
def test_fuzz_apns_certificate_import(russet: Russet, data: bytes) -> None:
    with pytest.raises(ApnsCertificateError):  # no pending key: even a readable certificate is refused
        import_push_certificate(russet.storage, data)


def test_oversized_apns_certificate_is_refused_before_parsing(russet: Russet) -> None:
    with pytest.raises(ApnsCertificateError, match="bytes"):
        import_push_certificate(
            russet.storage, PUSH_CERT_PEM * (MAX_CERTIFICATE_BYTES // len(PUSH_CERT_PEM) + 1)
        )


def test_a_certificate_whose_subject_cannot_be_parsed_is_refused_not_a_traceback(russet: Russet) -> None:
    """cryptography parses names lazily: a certificate that loads can still fail on its subject.
    Found by the fuzzer above: the tag of an attribute's value inside the subject turned into 13."""
    subject = CERT.subject.public_bytes()  # 30 len 31 len 30 len 06 len OID, value ...
    assert subject[6] == 0x06  # the first attribute's OID
    value = 6 + 2 + subject[7]  # the tag of that attribute's value, after its OID
    at = PUSH_CERT_DER.rindex(subject)  # the subject follows the issuer in the TBSCertificate
    broken = PUSH_CERT_DER[: at + value] + b"\x0d" + PUSH_CERT_DER[at + value + 1 :]
    x509.load_der_x509_certificate(broken)  # it loads: only reading its subject fails
    with pytest.raises(ApnsCertificateError, match="not an X.509 certificate"):
        import_push_certificate(russet.storage, broken)
