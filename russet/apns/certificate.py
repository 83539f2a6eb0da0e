"""The MDM push certificate: key and CSR, vendor signing, import, expiry (protocol doc §d.1–§d.2).

Why it is shaped like this:

* The push key is made here and never leaves Russet (§d.1). Until Apple's certificate comes back
  it is sealed in the settings store under ``apns.pending_key``: the certificate store files keys
  under a certificate, and there is none yet. On import the key moves, still sealed, into the
  certificate store next to its certificate (kind ``apns_push``) and the pending copy is deleted.
* The installed certificate is the one record of the topic and the expiry: both are read from it
  (its row also keeps ``not_after``), so no second copy can disagree with it. The newest
  ``apns_push`` row with a key is the installed one; older rows stay as history.
* Vendor signing touches no database: an MDM vendor may run it on its own machine.
"""

from __future__ import annotations

import base64
import logging
import math
import plistlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.x509.oid import NameOID
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from russet.apns.ports import PushStores
from russet.kernel.errors import Conflict, RussetError
from russet.storage.tables import settings as settings_table

PUSH_KIND = "apns_push"
PENDING_KEY = "apns.pending_key"
TOPIC_PREFIX = "com.apple.mgmt."
WARN_DAYS = 30
KEY_BITS = 2048  # §d.2 step 1
MAX_CERTIFICATE_BYTES = 64 * 1024  # a push certificate with Apple's chain is a few KB
DEFAULT_CSR_NAME = "Russet APNs"
PORTAL = "https://identity.apple.com/pushcert"
_RENEW = (
    f"renew it at {PORTAL} with the same Apple Account (Renew keeps the topic), then run `russet apns import`"
)

log = logging.getLogger("russet.apns")


class ApnsCertificateError(RussetError):
    """A push-certificate operation that cannot be done; ``str()`` says why and what to do.

    Bad input (`Invalid`, the kindless fallback) unless a subclass says otherwise."""


class ApnsCertificateConflict(ApnsCertificateError, Conflict):
    """The certificate is usable but would change the topic or shorten the expiry: needs force."""


class PushIdentity(NamedTuple):
    """What the pusher presents to APNs (TLS client identity) and the topic it sends."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey
    topic: str


@dataclass(frozen=True)
class VendorRequest:
    """A signed push certificate request: the base64 text to upload, and what looked wrong."""

    text: str
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImportResult:
    """What `import_push_certificate` installed (or found already installed)."""

    topic: str
    not_after: datetime
    fingerprint: str
    previous_topic: str | None  # topic of the certificate it replaced; None on a first install
    unchanged: bool  # this very certificate was already the installed one
    warnings: list[str] = field(default_factory=list)


# -- reading certificates, CSRs and keys -------------------------------------------------------


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _is_pem(data: bytes) -> bool:
    return b"-----BEGIN" in data


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM (one or more) or DER data; anything else is an error."""
    try:
        if _is_pem(data):
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
        for cert in certs:  # parsed lazily: read the names and extensions now, not mid-import
            cert.subject, cert.issuer, cert.extensions  # noqa: B018
    except ValueError:
        raise ApnsCertificateError("not an X.509 certificate (expected PEM or DER)") from None
    return certs


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if _is_pem(data):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError:
        raise ApnsCertificateError("not a certificate signing request (expected PEM or DER)") from None


def _load_private_key(data: bytes, password: bytes | None) -> PrivateKeyTypes:
    load = serialization.load_pem_private_key if _is_pem(data) else serialization.load_der_private_key
    try:
        return load(data, password)
    except TypeError:
        if password is None:
            raise ApnsCertificateError("the vendor key is encrypted: give its password") from None
        raise ApnsCertificateError("the vendor key is not encrypted: give no password") from None
    except (ValueError, UnsupportedAlgorithm):
        raise ApnsCertificateError(
            "the vendor key is not a readable private key (expected PEM or DER), or its password is wrong"
        ) from None


def certificate_topic(cert: x509.Certificate) -> str | None:
    """The subject UID (OID 0.9.2342.19200300.100.1.1), which APNs calls the topic (§d.1)."""
    for attribute in cert.subject.get_attributes_for_oid(NameOID.USER_ID):
        if isinstance(attribute.value, str):
            return attribute.value
    return None


def push_topic(cert: x509.Certificate) -> str:
    """The topic of an MDM push certificate; raises if the certificate is not one."""
    topic = certificate_topic(cert)
    if topic is None:
        raise ApnsCertificateError(
            f"not an MDM push certificate: its subject ({cert.subject.rfc4514_string()}) has no UID, "
            "the attribute that names the push topic"
        )
    if not topic.startswith(TOPIC_PREFIX):
        raise ApnsCertificateError(
            f"not an MDM push certificate: its topic {topic!r} does not start with {TOPIC_PREFIX} "
            "(an app's push certificate cannot wake managed devices)"
        )
    return topic


# -- the pending key and the CSR (§d.2 step 1) -------------------------------------------------


def _stored_pending_key(storage: PushStores) -> rsa.RSAPrivateKey | None:
    raw = storage.settings.get_secret(PENDING_KEY)
    if raw is None:
        return None
    key = serialization.load_der_private_key(raw, None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ApnsCertificateError(
            f"the stored {PENDING_KEY} is not an RSA key; run `russet apns csr --force`"
        )
    return key


def pending_key(storage: PushStores) -> rsa.RSAPrivateKey | None:
    """The push key waiting for Apple's certificate, if any.

    A stored pending key that already belongs to the installed certificate (an import stopped
    between its two writes) is not pending any more.
    """
    key = _stored_pending_key(storage)
    if key is None:
        return None
    current = push_identity(storage)
    if current is not None and _spki(current.key.public_key()) == _spki(key.public_key()):
        return None
    return key


def _forget_pending_key(storage: PushStores) -> None:
    # SettingsStore has no delete; this is the one row this module owns in the settings table.
    with storage.engine.begin() as conn:
        conn.execute(delete(settings_table).where(settings_table.c.key == PENDING_KEY))


def create_push_csr(
    storage: PushStores, out: Path, *, force: bool = False, common_name: str = DEFAULT_CSR_NAME
) -> x509.CertificateSigningRequest:
    """Make a new push key (sealed at rest) and write its CSR as PEM to ``out``.

    The CSR is written before the key is stored, so a failed write leaves no pending key that
    would make the next attempt need --force.
    """
    if not force and pending_key(storage) is not None:
        raise ApnsCertificateError(
            "a push key is already waiting for its certificate from Apple (from an earlier "
            "`russet apns csr`); replacing it means a certificate issued for that CSR can no longer "
            "be imported. Pass --force to replace it"
        )
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    try:
        out.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    except OSError as exc:
        raise ApnsCertificateError(f"cannot write {out}: {exc.strerror}") from None
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    storage.settings.set_secret(PENDING_KEY, pkcs8)
    return csr


# -- vendor signing (§d.2 steps 2–3) -----------------------------------------------------------


def _vendor_warnings(vendor: x509.Certificate) -> list[str]:
    """What §d.2 says a vendor certificate is; no OID is documented, so names are all we check."""
    warnings = []
    names = [a.value for a in vendor.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if not any(isinstance(n, str) and "mdm vendor" in n.lower() for n in names):
        warnings.append(
            f"the vendor certificate ({vendor.subject.rfc4514_string()}) does not name itself an MDM "
            'Vendor certificate; Apple only accepts requests signed with the "MDM Vendor CSR Signing" '
            "certificate from the Apple Developer Program"
        )
    if "apple" not in vendor.issuer.rfc4514_string().lower():
        warnings.append(
            f"the vendor certificate is issued by {vendor.issuer.rfc4514_string()}, not Apple; the MDM "
            "vendor certificate is chained to Apple WWDR"
        )
    return warnings


def _pem_chain(certs: Sequence[x509.Certificate]) -> str:
    # cryptography writes PEM with 64-character lines, as the portal expects.
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def vendor_sign(
    csr_data: bytes,
    vendor_cert_data: bytes,
    vendor_key_data: bytes,
    chain: Sequence[bytes] = (),
    *,
    vendor_key_password: bytes | None = None,
    now: datetime | None = None,
) -> VendorRequest:
    """Sign a customer's push CSR as the MDM vendor; returns the base64 plist to upload.

    ``vendor_cert_data`` may be a bundle: certificates after the first join the chain, before
    those from ``chain`` (Apple's WWDR intermediate and root).
    """
    csr = _load_csr(csr_data)
    if not csr.is_signature_valid:
        raise ApnsCertificateError("the CSR's own signature does not verify: it is corrupt or was altered")
    csr_key = csr.public_key()
    if not isinstance(csr_key, rsa.RSAPublicKey):
        raise ApnsCertificateError("the CSR's key is not RSA; APNs push keys are RSA 2048")
    warnings = []
    if csr_key.key_size < KEY_BITS:
        warnings.append(f"the CSR's key has {csr_key.key_size} bits; push keys are RSA {KEY_BITS}")

    try:
        vendor, *extra = load_certificates(vendor_cert_data)
    except ApnsCertificateError as exc:
        raise ApnsCertificateError(f"vendor certificate: {exc}") from None
    vendor_key = _load_private_key(vendor_key_data, vendor_key_password)
    if not isinstance(vendor_key, rsa.RSAPrivateKey):
        raise ApnsCertificateError("the vendor key is not RSA; the vendor signature is SHA256withRSA")
    if _spki(vendor_key.public_key()) != _spki(vendor.public_key()):
        raise ApnsCertificateError(
            f"the vendor key does not belong to the vendor certificate ({vendor.subject.rfc4514_string()})"
        )
    moment = _utc(now)
    if moment > vendor.not_valid_after_utc:
        raise ApnsCertificateError(
            f"the vendor certificate expired on {_when(vendor.not_valid_after_utc)}; "
            "renew it in the Apple Developer Program"
        )
    if moment < vendor.not_valid_before_utc:
        raise ApnsCertificateError(
            f"the vendor certificate is not valid before {_when(vendor.not_valid_before_utc)}"
        )
    warnings.extend(_vendor_warnings(vendor))

    chain_certs: list[x509.Certificate] = []
    seen = {vendor.fingerprint(hashes.SHA256())}
    for data in chain:
        try:
            loaded = load_certificates(data)
        except ApnsCertificateError as exc:
            raise ApnsCertificateError(f"chain: {exc}") from None
        extra.extend(loaded)
    for cert in extra:
        fp = cert.fingerprint(hashes.SHA256())
        if fp not in seen:
            seen.add(fp)
            chain_certs.append(cert)
    if not chain_certs:
        warnings.append(
            "no chain given: the request carries only the vendor certificate; Apple documents the "
            "chain as vendor certificate, Apple WWDR intermediate, Apple Root CA (give them with --chain)"
        )
    elif chain_certs[0].subject != vendor.issuer:
        warnings.append(
            f"the first chain certificate ({chain_certs[0].subject.rfc4514_string()}) is not the vendor "
            f"certificate's issuer ({vendor.issuer.rfc4514_string()}); the order should be vendor, "
            "intermediate, root"
        )

    csr_der = csr.public_bytes(serialization.Encoding.DER)
    signature = vendor_key.sign(csr_der, padding.PKCS1v15(), hashes.SHA256())
    plist = plistlib.dumps(
        {
            "PushCertRequestCSR": base64.b64encode(csr_der).decode("ascii"),
            "PushCertCertificateChain": _pem_chain([vendor, *chain_certs]),
            "PushCertSignature": base64.b64encode(signature).decode("ascii"),
        },
        fmt=plistlib.FMT_XML,
    )
    return VendorRequest(base64.b64encode(plist).decode("ascii"), warnings)


# -- import, the installed identity, expiry (§d.1, §d.2 step 5) ---------------------------------


def push_identity(storage: PushStores) -> PushIdentity | None:
    """The installed push certificate, its key and topic; None when none is installed.

    An expired certificate is still returned (see `expiry_warning`). This decrypts the key, so a
    pusher should keep the result rather than call it for every push.
    """
    found = storage.certificates.identity(PUSH_KIND)
    if found is None:
        return None
    cert, key = found
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ApnsCertificateError("the installed push certificate's key is not RSA; import it again")
    return PushIdentity(cert, key, push_topic(cert))


def _pick_leaf(certs: list[x509.Certificate]) -> x509.Certificate:
    """The push certificate in a file that may also hold Apple's intermediates."""
    for cert in certs:
        topic = certificate_topic(cert)
        if topic is not None and topic.startswith(TOPIC_PREFIX):
            return cert
    return certs[0]


def import_push_certificate(
    storage: PushStores, data: bytes, *, force: bool = False, now: datetime | None = None
) -> ImportResult:
    """Install the certificate Apple issued, paired with the pending key or (renewal) the current one.

    Every check runs before anything is written, so a refused import leaves the installed
    certificate as it was. ``force`` allows a topic change and a certificate that expires
    before the installed one.
    """
    moment = _utc(now)
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise ApnsCertificateError(f"a push certificate file is a few KB; this one is {len(data)} bytes")
    cert = _pick_leaf(load_certificates(data))
    topic = push_topic(cert)
    if moment > cert.not_valid_after_utc:
        raise ApnsCertificateError(
            f"the certificate expired on {_when(cert.not_valid_after_utc)}; "
            f"download a current one at {PORTAL}"
        )
    warnings: list[str] = []
    if moment < cert.not_valid_before_utc:
        warnings.append(f"the certificate is not valid before {_when(cert.not_valid_before_utc)}")

    current = push_identity(storage)
    pending = _stored_pending_key(storage)
    spki = _spki(cert.public_key())
    if pending is not None and _spki(pending.public_key()) == spki:
        key, from_pending = pending, True
    elif current is not None and _spki(current.key.public_key()) == spki:
        key, from_pending = current.key, False
    elif pending is None and current is None:
        raise ApnsCertificateError(
            "there is no push key to pair the certificate with: run `russet apns csr` first and import "
            "the certificate Apple issues for that CSR"
        )
    else:
        raise ApnsCertificateError(
            "the certificate's key matches neither the pending push key (from `russet apns csr`) nor "
            "the installed certificate's key: it was issued for another CSR"
        )

    fingerprint = cert.fingerprint(hashes.SHA256()).hex()
    previous_topic = current.topic if current is not None else None
    if current is not None and current.certificate.fingerprint(hashes.SHA256()).hex() == fingerprint:
        if from_pending:
            _forget_pending_key(storage)
        return ImportResult(topic, cert.not_valid_after_utc, fingerprint, previous_topic, True, warnings)
    if current is not None and topic != current.topic:
        if not force:
            raise ApnsCertificateConflict(
                f"the certificate's topic {topic} differs from the installed {current.topic}: every "
                "enrolled device listens on the old topic and would never be pushed again (each would "
                "have to re-enroll). Renew with the same Apple Account to keep the topic, or pass "
                "--force to switch anyway"
            )
        warnings.append(
            f"the push topic changed from {current.topic} to {topic}: devices enrolled under the old "
            "topic get no pushes until they re-enroll"
        )
    if current is not None and cert.not_valid_after_utc < current.certificate.not_valid_after_utc:
        if not force:
            raise ApnsCertificateConflict(
                f"the certificate expires on {_when(cert.not_valid_after_utc)}, before the installed one "
                f"({_when(current.certificate.not_valid_after_utc)}); pass --force to install it anyway"
            )
    try:
        storage.certificates.add(PUSH_KIND, cert, key)
    except IntegrityError:
        raise ApnsCertificateError(
            "this certificate was installed before and has since been replaced; import the newest one"
        ) from None
    if from_pending:
        _forget_pending_key(storage)
    expiry = expiry_warning(cert, moment)
    if expiry is not None:
        warnings.append(expiry)
    return ImportResult(topic, cert.not_valid_after_utc, fingerprint, previous_topic, False, warnings)


def expiry_warning(cert: x509.Certificate, now: datetime | None = None) -> str | None:
    """A warning from `WARN_DAYS` days before expiry on (and once expired), else None."""
    moment = _utc(now)
    end = cert.not_valid_after_utc
    topic = certificate_topic(cert) or cert.subject.rfc4514_string()
    if moment >= end:
        return (
            f"the APNs push certificate for {topic} expired on {_when(end)}: APNs refuses it and "
            f"devices get no pushes; {_RENEW}"
        )
    left = end - moment
    if left > timedelta(days=WARN_DAYS):
        return None
    days = left.days
    within = "in less than a day" if days == 0 else f"in {days} day{'s' if days != 1 else ''}"
    return f"the APNs push certificate for {topic} expires {within} ({_when(end)}); {_RENEW}"


def push_status(storage: PushStores, now: datetime | None = None) -> dict[str, Any]:
    """The installed certificate's topic, expiry and days left, for `russet apns status`."""
    moment = _utc(now)
    has_pending = pending_key(storage) is not None
    identity = push_identity(storage)
    if identity is None:
        return {"installed": False, "pending_key": has_pending}
    cert = identity.certificate
    end = cert.not_valid_after_utc
    return {
        "installed": True,
        "topic": identity.topic,
        "not_after": end.isoformat(),
        "days_left": math.floor((end - moment) / timedelta(days=1)),
        "expired": moment >= end,
        "warning": expiry_warning(cert, moment),
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "fingerprint": cert.fingerprint(hashes.SHA256()).hex(),
        "pending_key": has_pending,
    }


def effective_push_topic(storage: PushStores, configured: str | None) -> str | None:
    """The installed certificate's topic if there is one, else the configured RUSSET_PUSH_TOPIC.

    A broken stored certificate is logged and skipped rather than raised, so Russet still opens
    and `russet apns import` can replace it.
    """
    try:
        identity = push_identity(storage)
    except ApnsCertificateError as exc:
        log.warning("ignoring the installed APNs push certificate: %s", exc)
        return configured
    if identity is None:
        return configured
    if configured is not None and configured != identity.topic:
        log.warning(
            "RUSSET_PUSH_TOPIC %s differs from the installed push certificate's topic %s; using the "
            "certificate's",
            configured,
            identity.topic,
        )
    return identity.topic
