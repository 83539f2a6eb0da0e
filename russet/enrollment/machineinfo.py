"""The ADE enrollment request: a MachineInfo plist CMS-signed by the device's Apple identity (§c.3).

A device in Automated Device Enrollment POSTs it to the ``url`` of its ABM/ASM profile. It is
trusted only when the signature verifies and the signing certificate was issued by the device CA:
by default Apple's "Apple iPhone Device CA" (shipped in ``apple_ca/``, with its chain to the Apple
Root CA, which every device kind uses), or the first certificate of ``RUSSET_ADE_CA_FILE``. Only
that CA's direct signature counts: other Apple CAs under the same root issue developer and web
certificates, which must not be able to ask for an enrollment profile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from russet import plists
from russet.config import ConfigError
from russet.pki.chain import ChainError, check_chain, is_ca, issued_by
from russet.pki.cms import MalformedSignature, SignatureError, verify_attached

APPLE_DEVICE_CA_CHAIN = Path(__file__).with_name("apple_ca") / "apple_device_ca_chain.pem"
REQUIRED_KEYS = ("UDID", "SERIAL", "PRODUCT", "VERSION")  # OS_VERSION only from iOS 17 / macOS 14
OPTIONAL_KEYS = ("OS_VERSION", "LANGUAGE")
# Longest value accepted per key (the columns of enrollment_requests); real ones are far shorter.
MAX_CHARS = {"UDID": 255, "SERIAL": 64, "PRODUCT": 100, "VERSION": 50, "OS_VERSION": 50, "LANGUAGE": 50}


class MachineInfoRejected(Exception):
    """The request is not a MachineInfo Russet may answer; ``status`` and ``reason`` go to the device."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class MachineInfo:
    """What a verified request says about the device (IMEI, MEID and the rest are not kept)."""

    udid: str
    serial: str
    product: str
    version: str
    os_version: str | None
    language: str | None
    signer: x509.Certificate
    # MDM_CAN_REQUEST_SOFTWARE_UPDATE: the device can act on a software update required answer.
    can_request_software_update: bool = False


@dataclass(frozen=True)
class DeviceCA:
    """The CA whose certificates may sign MachineInfo, and its chain (checked when loaded)."""

    issuer: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    source: str

    @classmethod
    def load(cls, path: str | None = None) -> DeviceCA:
        """The CA in ``path`` (RUSSET_ADE_CA_FILE), or Apple's shipped one; ConfigError if unusable."""
        source = path or str(APPLE_DEVICE_CA_CHAIN)
        where = f"RUSSET_ADE_CA_FILE ({path})" if path else f"the shipped Apple device CA ({source})"
        try:
            certs = x509.load_pem_x509_certificates(Path(source).read_bytes())
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigError(f"{where}: not a PEM certificate bundle ({exc})") from None
        if not is_ca(certs[0]):
            first = certs[0].subject.rfc4514_string()
            raise ConfigError(f"{where}: the first certificate, {first}, is not a CA")
        try:
            check_chain(certs)
        except ChainError as exc:
            raise ConfigError(
                f"{where}: the certificates must run from the device CA up to its root: {exc}"
            ) from None
        return cls(certs[0], tuple(certs), source)

    def verify(self, body: bytes) -> MachineInfo:
        """The device's MachineInfo, or MachineInfoRejected: 400 unreadable, 403 not trusted."""
        if not body:
            raise MachineInfoRejected(400, "empty body: expected the device's CMS-signed MachineInfo")
        if body.lstrip()[:6] in (b"<?xml ", b"<plist", b"bplist"):
            raise MachineInfoRejected(
                403, "the MachineInfo is not signed: a CMS signature by the device is required"
            )
        try:
            signed = verify_attached(body)
        except MalformedSignature as exc:
            raise MachineInfoRejected(400, f"the body is not a CMS SignedData MachineInfo: {exc}") from None
        except SignatureError as exc:
            raise MachineInfoRejected(403, f"the MachineInfo signature is not valid: {exc}") from None
        signer = signed.certificate
        try:
            issued_by(signer, self.issuer)
        except ChainError as exc:
            raise MachineInfoRejected(
                403, f"the signing certificate is not a device certificate from the device CA: {exc}"
            ) from None
        if is_ca(signer):
            raise MachineInfoRejected(403, "the signing certificate is a CA certificate, not a device's")
        return _parse(signed.content, signer)


def _parse(content: bytes, signer: x509.Certificate) -> MachineInfo:
    try:
        info: Any = plists.loads(content)  # bounded: signed by a device is still outside input
    except plists.PlistRejected as exc:
        raise MachineInfoRejected(400, f"the signed content is not a property list ({exc})") from None
    if not isinstance(info, dict):
        raise MachineInfoRejected(400, "the MachineInfo property list is not a dictionary")
    values: dict[str, str | None] = {}
    for key in REQUIRED_KEYS + OPTIONAL_KEYS:
        value = info.get(key)
        if value is None and key in OPTIONAL_KEYS:
            values[key] = None
            continue
        if not isinstance(value, str) or not value.strip():
            what = "missing" if value is None else f"not text ({type(value).__name__})"
            raise MachineInfoRejected(400, f"MachineInfo {key} is {what}")
        if len(value.strip()) > MAX_CHARS[key]:
            raise MachineInfoRejected(400, f"MachineInfo {key} is longer than {MAX_CHARS[key]} characters")
        if "\x00" in value:  # PostgreSQL text refuses NUL: the same answer on every database
            raise MachineInfoRejected(400, f"MachineInfo {key} contains a NUL character")
        values[key] = value.strip()
    return MachineInfo(
        udid=str(values["UDID"]),
        serial=str(values["SERIAL"]),
        product=str(values["PRODUCT"]),
        version=str(values["VERSION"]),
        os_version=values["OS_VERSION"],
        language=values["LANGUAGE"],
        signer=signer,
        can_request_software_update=info.get("MDM_CAN_REQUEST_SOFTWARE_UPDATE") is True,
    )
