"""The device side of Automated Device Enrollment: an Apple-issued device identity that signs the
MachineInfo a device POSTs to its ABM/ASM profile's `url` (Apple §c.3, §e.10).

`TestAppleCA` stands in for Apple's PKI with the same shape as the real one: a root, then an
"Apple iPhone Device CA" that is RSA-1024, signs with SHA-1 and expired in 2014 (as Apple's does,
and as devices still present it), then one certificate per device. Its `pem_bundle()` is what
RUSSET_ADE_CA_FILE takes. The CMS is built here with asn1crypto, sharing no code with Russet's
verifier, and in the shapes devices use: macOS embeds only the device certificate and the device
CA, iOS the whole chain.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from simulators.device import Enrollment, SimDevice
from simulators.scep_client import ScepHttp

PKCS7_CONTENT_TYPE = "application/pkcs7-signature"
PROFILE_CONTENT_TYPE = "application/x-apple-aspen-config"
_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}


class HttpPost(Protocol):
    def post(self, url: str, *, content: bytes, headers: dict[str, str]) -> Any: ...


def _name(common_name: str, unit: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Apple Inc."),
    ]
    if unit:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _ca_extensions(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=True,
        encipher_only=False,
        decipher_only=False,
    )
    return builder.add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True
    ).add_extension(usage, critical=True)


def sha1_signed(builder: x509.CertificateBuilder, issuer_key: rsa.RSAPrivateKey) -> x509.Certificate:
    """Sign with sha1WithRSAEncryption, as Apple's device CA does (``cryptography`` no longer
    signs with SHA-1, so its certificate is re-signed over a rewritten to-be-signed part)."""
    draft = asn1_x509.Certificate.load(
        builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    )
    algorithm = asn1_x509.SignedDigestAlgorithm({"algorithm": "sha1_rsa", "parameters": None})
    tbs = draft["tbs_certificate"].copy()
    tbs["signature"] = algorithm
    signature = issuer_key.sign(tbs.dump(force=True), padding.PKCS1v15(), hashes.SHA1())
    cert = asn1_x509.Certificate(
        {"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(cert.dump())


@dataclass
class TestAppleCA:
    """A root and an expired, SHA-1, RSA-1024 "Apple iPhone Device CA" under it."""

    __test__ = False  # not a pytest test class

    root: x509.Certificate
    root_key: rsa.RSAPrivateKey
    device_ca: x509.Certificate
    device_ca_key: rsa.RSAPrivateKey

    @classmethod
    def create(cls, common_name: str = "Apple iPhone Device CA") -> TestAppleCA:
        root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        root_name = _name("Test Apple Root CA", "Apple Certification Authority")
        now = datetime.now(UTC)
        root = _ca_extensions(
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(root_key.public_key())
            .serial_number(2)
            .not_valid_before(now - timedelta(days=3650))
            .not_valid_after(now + timedelta(days=3650))
        ).sign(root_key, hashes.SHA256())
        device_ca_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        device_ca = sha1_signed(
            _ca_extensions(
                x509.CertificateBuilder()
                .subject_name(_name(common_name, "Apple iPhone"))
                .issuer_name(root_name)
                .public_key(device_ca_key.public_key())
                .serial_number(1)
                .not_valid_before(datetime(2007, 4, 16, tzinfo=UTC))
                .not_valid_after(datetime(2014, 4, 16, tzinfo=UTC))  # expired, like Apple's
            ),
            root_key,
        )
        return cls(root, root_key, device_ca, device_ca_key)

    def pem_bundle(self) -> bytes:
        """The device CA first, then its root: the layout RUSSET_ADE_CA_FILE expects."""
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (self.device_ca, self.root))

    def issue_device(self, udid: str) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
        """A device identity as Apple issues it at activation: SHA-1 signed by the device CA."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        now = datetime.now(UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, udid)]))
            .issuer_name(self.device_ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        )
        return sha1_signed(builder, self.device_ca_key), key


def sign_machine_info(
    content: bytes,
    cert: x509.Certificate,
    key: rsa.RSAPrivateKey,
    chain: list[x509.Certificate],
    *,
    digest: Literal["sha1", "sha256"] = "sha256",
    signed_attributes: bool = True,
) -> bytes:
    """DER CMS SignedData with ``content`` attached, signed by ``key``, carrying ``chain``."""
    hash_algorithm = _HASHES[digest]()
    signer = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    info: dict[str, Any] = {
        "version": "v1",
        "sid": cms.SignerIdentifier(
            name="issuer_and_serial_number",
            value={"issuer": signer.issuer, "serial_number": signer.serial_number},
        ),
        "digest_algorithm": {"algorithm": digest},
        "signature_algorithm": {"algorithm": "rsassa_pkcs1v15"},
    }
    if signed_attributes:
        attrs = cms.CMSAttributes(
            [
                cms.CMSAttribute({"type": "content_type", "values": ["data"]}),
                cms.CMSAttribute(
                    {"type": "message_digest", "values": [hashlib.new(digest, content).digest()]}
                ),
            ]
        )
        info["signed_attrs"] = attrs
        info["signature"] = key.sign(attrs.dump(), padding.PKCS1v15(), hash_algorithm)
    else:
        info["signature"] = key.sign(content, padding.PKCS1v15(), hash_algorithm)
    signed = cms.SignedData(
        {
            "version": "v1",
            "digest_algorithms": [{"algorithm": digest}],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [
                asn1_x509.Certificate.load(c.public_bytes(serialization.Encoding.DER)) for c in [cert, *chain]
            ],
            "signer_infos": [info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed}).dump()


@dataclass
class AdeDevice:
    """A device out of the box, assigned to Russet in ABM: Apple identity, MachineInfo, enrollment."""

    ca: TestAppleCA
    udid: str = field(default_factory=lambda: str(uuid.uuid4()).upper())
    serial: str = field(default_factory=lambda: "C02" + os.urandom(5).hex().upper()[:9])
    product: str = "iPhone15,2"
    version: str = "22B83"
    os_version: str = "18.1"
    style: Literal["ios", "macos"] = "ios"  # which certificates the CMS carries (see module doc)
    path_only: bool = True  # post to the URL path (ASGI test clients with a base URL)
    certificate: x509.Certificate = field(init=False)
    key: rsa.RSAPrivateKey = field(init=False)

    def __post_init__(self) -> None:
        self.certificate, self.key = self.ca.issue_device(self.udid)

    def machine_info(self) -> dict[str, Any]:
        return {
            "UDID": self.udid,
            "SERIAL": self.serial,
            "PRODUCT": self.product,
            "VERSION": self.version,
            "OS_VERSION": self.os_version,
            "LANGUAGE": "en",
            "IMEI": "35 000000 000000 0",
            "MDM_CAN_REQUEST_SOFTWARE_UPDATE": True,
        }

    def signed_request(self, info: dict[str, Any] | None = None, **signing: Any) -> bytes:
        content = plistlib.dumps(self.machine_info() if info is None else info)
        chain = [self.ca.device_ca] if self.style == "macos" else [self.ca.device_ca, self.ca.root]
        return sign_machine_info(content, self.certificate, self.key, chain, **signing)

    def post(self, client: HttpPost, url: str, body: bytes) -> Any:
        if self.path_only:
            url = "/" + url.split("://", 1)[-1].split("/", 1)[1]
        return client.post(url, content=body, headers={"Content-Type": PKCS7_CONTENT_TYPE})

    def fetch_profile(self, client: HttpPost, url: str) -> bytes:
        """POST the signed MachineInfo to the ADE profile's url; the enrollment profile it answers."""
        response = self.post(client, url, self.signed_request())
        if response.status_code != 200:
            raise RuntimeError(f"enrollment refused: {response.status_code} {response.text}")
        if not response.headers["content-type"].startswith(PROFILE_CONTENT_TYPE):
            raise RuntimeError(f"the profile came as {response.headers['content-type']}")
        return bytes(response.content)

    def enroll(self, client: Any, url: str, scep_client: ScepHttp | None = None) -> SimDevice:
        """Fetch the profile and install it (SCEP), then Authenticate and TokenUpdate as this device."""
        enrollment = Enrollment.from_profile(self.fetch_profile(client, url), scep_client or client)
        device = SimDevice(enrollment, udid=self.udid, serial=self.serial, path_only=self.path_only)
        device.enroll(client)
        return device
