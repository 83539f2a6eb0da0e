"""Who is asking: the device identity certificate behind a request.

Identity comes from an `IdentitySource`: the `Mdm-Signature` header, or, behind a
TLS-terminating proxy, the client-certificate header it forwards (russet.mdm.proxy_cert,
RUSSET_CLIENT_CERT_HEADER). Whatever the source, the certificate must be issued by Russet's CA
and within its validity; the binding of that certificate to an enrollment is checked by the
check-in and connect handlers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from cryptography import x509

from russet.mdm.errors import Forbidden, Unauthenticated
from russet.pki import CertificateRejected, SignatureError, fingerprint, validate_issued, verify_detached


@dataclass(frozen=True, slots=True)
class Identity:
    fingerprint: str  # SHA-256 of the certificate DER, what enrollments are bound to
    certificate: x509.Certificate


@dataclass(frozen=True, slots=True)
class Presented:
    """A certificate as a source found it, with what replay checks need."""

    certificate: x509.Certificate
    signed_at: datetime | None = None  # when a signature says it was made
    signature: bytes | None = None  # the signature bytes, to recognise a replay


class IdentitySource(Protocol):
    def present(self, headers: Mapping[str, str], body: bytes) -> Presented | None:
        """The certificate this source finds in the request, None if it has none to offer.

        Raises Forbidden when it finds one that does not hold up (bad signature, forged header).
        """


class ReplayGuard:
    """Refuses signatures made outside the window and, for state-changing messages, repeats.

    Signing times have one-second resolution and RSA signatures are deterministic, so a device
    sending the same Idle report twice within a second produces identical bytes: repeats are
    therefore refused only for check-in messages (Authenticate, TokenUpdate, CheckOut), which a
    device never legitimately sends twice in the same second. Command reports are idempotent in
    the queue instead. Signatures without a signing time are not checked.
    """

    def __init__(self, window_seconds: int = 600, max_entries: int = 200_000) -> None:
        self._window = window_seconds
        self._max = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, presented: Presented, unique: bool) -> None:
        signed_at = presented.signed_at
        if signed_at is None or presented.signature is None:
            return
        now = time.time()
        if abs(now - signed_at.timestamp()) > self._window:
            raise Forbidden(
                f"the signature's signing time {signed_at.isoformat()} is outside the accepted window"
            )
        if not unique:
            return
        digest = hashlib.sha256(presented.signature).digest()
        with self._lock:
            while self._seen and (
                next(iter(self._seen.values())) < now - self._window or len(self._seen) > self._max
            ):
                self._seen.popitem(last=False)
            if digest in self._seen:
                raise Forbidden("replayed request: this signature was already used")
            self._seen[digest] = now


class MdmSignatureSource:
    """Apple's `Mdm-Signature` header: a detached CMS signature over the raw body (§c.2)."""

    def present(self, headers: Mapping[str, str], body: bytes) -> Presented | None:
        header = headers.get("mdm-signature")
        if not header:
            return None
        try:
            signature = base64.b64decode(header, validate=False)
        except (binascii.Error, ValueError):
            raise Forbidden("Mdm-Signature is not base64") from None
        try:
            signed = verify_detached(signature, body)
        except SignatureError as exc:
            raise Forbidden(f"Mdm-Signature does not verify: {exc}") from None
        return Presented(signed.certificate, signed.signing_time, signature)


class IdentityVerifier:
    """Finds and validates the request's identity; caches certificates already validated."""

    def __init__(
        self, ca_certificate: x509.Certificate, sources: Sequence[IdentitySource], replay_guard: ReplayGuard
    ) -> None:
        self._ca = ca_certificate
        self._sources = sources
        self._replay = replay_guard
        self._valid_until: dict[str, datetime] = {}

    def identify(self, headers: Mapping[str, str], body: bytes, *, unique: bool) -> Identity:
        """`unique`: the message changes state, so an exact repeat is refused as a replay."""
        for source in self._sources:
            presented = source.present(headers, body)
            if presented is not None:
                break
        else:
            raise Unauthenticated("no device identity: the request carries no Mdm-Signature header")
        self._replay.check(presented, unique)
        cert = presented.certificate
        fp = fingerprint(cert)
        now = datetime.now(UTC)
        until = self._valid_until.get(fp)
        if until is None or until < now:
            try:
                validate_issued(cert, self._ca, now)
            except CertificateRejected as exc:
                raise Forbidden(f"identity certificate refused: {exc}") from None
            if len(self._valid_until) > 500_000:
                self._valid_until.clear()
            self._valid_until[fp] = cert.not_valid_after_utc
        return Identity(fp, cert)
