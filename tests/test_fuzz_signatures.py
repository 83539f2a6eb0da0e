"""Fuzzing device identity: Mdm-Signature (CMS detached), the proxy's client-certificate header,
and the ADE MachineInfo CMS.

Each must give a result or its own refusal (SignatureError; Forbidden, a 403 and never a 401;
UnreadableCertificate; MachineInfoRejected with a 4xx), whatever the bytes. Embedded certificates
are not covered by a CMS signature, so one strategy swaps in a damaged copy of the signer's
certificate: the signature still verifies and the damage reaches the certificate checks.
"""

from __future__ import annotations

import base64
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from russet.enrollment.machineinfo import DeviceCA, MachineInfoRejected
from russet.mdm.errors import DeviceRequestError
from russet.mdm.identity import IdentityVerifier, MdmSignatureSource, ReplayGuard
from russet.mdm.proxy_cert import ProxyClientCertSource, UnreadableCertificate, parse_client_cert
from russet.pki import SignatureError, issue_device_identity, sign_detached, verify_detached
from russet.pki import cms as cms_module
from russet.pki.ca import create_ca
from russet.pki.cms import MalformedSignature
from simulators.ade import AdeDevice, TestAppleCA
from simulators.scep_client import self_signed
from tests.fuzz_support import FUZZ, damaged, mutated


def with_certificate(signed_der: bytes, cert_der: bytes) -> bytes:
    """``signed_der`` with its embedded certificates replaced by ``cert_der`` (kept byte for byte)."""
    try:
        info = cms.ContentInfo.load(signed_der)
        signed = info["content"]
        signed["certificates"] = cms.CertificateSet(
            [cms.CertificateChoices(name="certificate", value=asn1_x509.Certificate.load(cert_der))]
        )
        return info.dump()
    except Exception:  # the damaged certificate is not even a TLV: nothing to embed
        return signed_der


# -- seeds --------------------------------------------------------------------------------------------

CA_CERT, CA_KEY = create_ca("Fuzz CA", "Russet")
DEVICE_CERT, DEVICE_KEY = issue_device_identity(CA_CERT, CA_KEY, "fuzz-device")
DEVICE_DER = DEVICE_CERT.public_bytes(serialization.Encoding.DER)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
EC_CERT = self_signed(EC_KEY, x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "ec")]))  # type: ignore[arg-type]
BODY = (
    b'<?xml version="1.0"?><plist version="1.0"><dict><key>Status</key><string>Idle</string></dict></plist>'
)
SIGNATURE = sign_detached(BODY, DEVICE_CERT, DEVICE_KEY)
EC_SIGNATURE = sign_detached(BODY, EC_CERT, EC_KEY)


def signatures() -> st.SearchStrategy[bytes]:
    return st.one_of(
        damaged(SIGNATURE),
        damaged(EC_SIGNATURE),
        mutated(DEVICE_DER).map(lambda cert: with_certificate(SIGNATURE, cert)),
    )


# -- Mdm-Signature ------------------------------------------------------------------------------------


@FUZZ
@given(signatures(), st.one_of(st.just(BODY), mutated(BODY)))
def test_fuzz_verify_detached(signature: bytes, body: bytes) -> None:
    try:
        signed = verify_detached(signature, body)
    except SignatureError:
        return
    assert signed.content == body


def _outcome(verify: object, signature: bytes, body: bytes) -> object:
    try:
        signed = verify(signature, body)  # type: ignore[operator]
    except SignatureError as exc:
        return type(exc)
    return (signed.content, signed.certificate, signed.signing_time)


@FUZZ
@given(signatures(), st.one_of(st.just(BODY), mutated(BODY)))
def test_fuzz_the_fast_reader_agrees_with_the_full_parse(signature: bytes, body: bytes) -> None:
    """The device path's DER reader (`_verify_detached_fast`) either steps aside or gives what
    the full asn1crypto parse gives: the same signer, content and time, or a refusal of the same
    kind (SignatureError or its MalformedSignature) for the same bytes."""
    full = _outcome(lambda sig, data: cms_module._guarded_verify(sig, data, fast=False), signature, body)
    assert _outcome(verify_detached, signature, body) == full


def test_the_fast_reader_reads_what_devices_send() -> None:
    """RSA and EC signatures from the signer as devices make them are read without the full parse
    (it would step aside on them otherwise, and the speed-up would be lost unnoticed)."""
    for signature, cert in ((SIGNATURE, DEVICE_CERT), (EC_SIGNATURE, EC_CERT)):
        assert cms_module._verify_detached_fast(signature, BODY).certificate == cert
    with pytest.raises(cms_module._Unusual):  # an attached signature is not its shape
        cms_module._verify_detached_fast(cms_module.sign_attached(BODY, DEVICE_CERT, DEVICE_KEY, []), BODY)


def test_the_fast_reader_steps_aside_for_ber_and_truncation() -> None:
    """Shapes the offset reader does not take (an indefinite length, bytes cut short) go to the
    full parse, which decides: here it reads the BER one and refuses the truncated one."""
    _, contents, end = cms_module._element(SIGNATURE, 0, len(SIGNATURE))
    ber = b"\x30\x80" + SIGNATURE[contents:end] + b"\x00\x00"  # ContentInfo, indefinite length
    truncated = SIGNATURE[:-1]
    for signature in (ber, truncated):
        with pytest.raises(cms_module._Unusual):
            cms_module._verify_detached_fast(signature, BODY)
        full = _outcome(lambda sig, data: cms_module._guarded_verify(sig, data, fast=False), signature, BODY)
        assert _outcome(verify_detached, signature, BODY) == full
    assert _outcome(verify_detached, ber, BODY)[1] == DEVICE_CERT  # type: ignore[index]
    assert _outcome(verify_detached, truncated, BODY) is MalformedSignature


class MemorySignatureLog:
    """The replay guard's log kept in memory: these tests fuzz parsing, not the database."""

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def first_use(self, digest: bytes, expires_at: datetime) -> bool:
        first = digest not in self._seen
        self._seen.add(digest)
        return first


VERIFIER = IdentityVerifier(CA_CERT, [MdmSignatureSource()], ReplayGuard(MemorySignatureLog()))


def _header(signature: bytes, text: str, which: int) -> str:
    encoded = base64.b64encode(signature).decode()
    return [encoded, text, encoded[: len(encoded) // 2] + text + encoded[len(encoded) // 2 :]][which]


@FUZZ
@given(signatures(), st.text(max_size=20), st.integers(0, 2), st.booleans())
def test_fuzz_mdm_signature_identity(signature: bytes, text: str, which: int, unique: bool) -> None:
    headers = {"mdm-signature": _header(signature, text, which)}
    try:
        identity = VERIFIER.identify(headers, BODY, unique=unique)
    except DeviceRequestError as exc:
        # Never 401: a device unenrolls on it (an empty header is no identity at all: a 400).
        assert exc.status in (400, 403), exc
        return
    assert identity.certificate.public_bytes(serialization.Encoding.DER) == DEVICE_DER


# -- the proxy's client-certificate header --------------------------------------------------------------

PEM = DEVICE_CERT.public_bytes(serialization.Encoding.PEM).decode()
RFC9440 = ":" + base64.b64encode(DEVICE_DER).decode() + ":"
NGINX = quote(PEM, safe="")


def header_values() -> st.SearchStrategy[str]:
    as_text = st.sampled_from([RFC9440, NGINX, PEM]).flatmap(lambda v: mutated(v.encode()))
    return st.one_of(
        as_text.map(lambda b: b.decode("latin-1")),
        mutated(DEVICE_DER).map(lambda der: ":" + base64.b64encode(der).decode() + ":"),
        mutated(PEM.encode()).map(lambda pem: quote(pem.decode("latin-1"), safe="")),
        st.text(max_size=100).map(lambda t: "%2D" + t),
        st.text(max_size=100).map(lambda t: ":" + t + ":"),
        st.text(max_size=100),
    )


@FUZZ
@given(header_values(), st.sampled_from(["auto", "rfc9440", "nginx"]))
def test_fuzz_proxy_client_cert(value: str, cert_format: str) -> None:
    try:
        parse_client_cert(value, cert_format)  # type: ignore[arg-type]
    except UnreadableCertificate:
        pass
    source = ProxyClientCertSource("Client-Cert", cert_format)  # type: ignore[arg-type]
    verifier = IdentityVerifier(CA_CERT, [source], ReplayGuard(MemorySignatureLog()))
    try:
        verifier.identify({"client-cert": value}, b"", unique=False)
    except DeviceRequestError as exc:
        assert exc.status in (400, 403), exc


def test_nginx_value_escaping_invalid_utf8_is_unreadable() -> None:
    # unquote(errors="strict") raised UnicodeDecodeError, which escaped as a 500.
    with pytest.raises(UnreadableCertificate, match="URL-escaped"):
        parse_client_cert("%2D%2D%2D%2D%2DBEGIN%20CERTIFICATE%ff")


# -- ADE MachineInfo ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ade(tmp_path_factory: pytest.TempPathFactory) -> tuple[DeviceCA, AdeDevice, bytes]:
    apple = TestAppleCA.create()
    bundle = Path(tmp_path_factory.mktemp("ade")) / "ca.pem"
    bundle.write_bytes(apple.pem_bundle())
    device = AdeDevice(apple)
    return DeviceCA.load(str(bundle)), device, device.signed_request()


def _check_machine_info(ca: DeviceCA, body: bytes) -> None:
    try:
        ca.verify(body)
    except MachineInfoRejected as exc:
        assert exc.status in (400, 403), exc


@FUZZ
@given(data=st.data())
def test_fuzz_machine_info(ade: tuple[DeviceCA, AdeDevice, bytes], data: st.DataObject) -> None:
    ca, device, request = ade
    device_der = device.certificate.public_bytes(serialization.Encoding.DER)
    body = data.draw(
        st.one_of(damaged(request), mutated(device_der).map(lambda cert: with_certificate(request, cert)))
    )
    _check_machine_info(ca, body)


def test_machine_info_signed_by_a_certificate_with_unreadable_extensions_is_refused(
    ade: tuple[DeviceCA, AdeDevice, bytes],
) -> None:
    ca, device, request = ade
    # Two basicConstraints extensions: the certificate loads, reading its extensions raises ValueError.
    der = device.certificate.public_bytes(serialization.Encoding.DER)
    broken = _duplicate_extension(der)
    x509.load_der_x509_certificate(broken)  # still loads
    with pytest.raises(x509.DuplicateExtension):
        x509.load_der_x509_certificate(broken).extensions  # noqa: B018
    with pytest.raises(MachineInfoRejected) as refused:
        ca.verify(with_certificate(request, broken))
    assert refused.value.status in (400, 403)


def _duplicate_extension(cert_der: bytes) -> bytes:
    cert = asn1_x509.Certificate.load(cert_der)
    tbs = cert["tbs_certificate"]
    extensions = list(tbs["extensions"])
    tbs["extensions"] = asn1_x509.Extensions([*extensions, extensions[0]])
    return cert.dump(force=True)
