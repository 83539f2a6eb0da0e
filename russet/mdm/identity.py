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
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cryptography import x509

from russet.mdm.errors import Forbidden, Unauthenticated
from russet.pki import CertificateRejected, SignatureError, fingerprint, validate_issued, verify_detached

log = logging.getLogger("russet.mdm")


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


class SignatureLog(Protocol):
    def first_use(self, digest: bytes, expires_at: datetime) -> bool:
        """Record the digest; False if it was recorded before (by any worker or node)."""


class ReplayGuard:
    """Refuses signatures made outside the window and, for state-changing messages, repeats.

    Signing times have one-second resolution and RSA signatures are deterministic, so a device
    sending the same Idle report twice within a second produces identical bytes: repeats are
    therefore refused only for check-in messages (Authenticate, TokenUpdate, CheckOut), which a
    device never legitimately sends twice in the same second. Command reports are idempotent in
    the queue instead. Signatures without a signing time are not checked.

    Seen signatures live in the database (`SignatureLog`), so a replay sent to another worker or
    node is refused too; a digest is kept only as long as its signing time is inside the window.
    """

    def __init__(self, seen: SignatureLog, window_seconds: int = 600) -> None:
        self._seen = seen
        self._window = window_seconds

    def check(self, presented: Presented, unique: bool) -> None:
        signed_at = presented.signed_at
        if signed_at is None or presented.signature is None:
            return
        skew = time.time() - signed_at.timestamp()
        if abs(skew) > self._window:
            # Logged with the skew: a device whose clock is off shows up here, not as a mystery.
            log.warning(
                "signature refused: signing time %s is %+.0f s from the server's clock (window %d s, "
                "RUSSET_SIGNING_WINDOW_SECONDS)",
                signed_at.isoformat(),
                skew,
                self._window,
            )
            raise Forbidden(
                f"the signature's signing time {signed_at.isoformat()} is {abs(skew):.0f} s "
                f"{'behind' if skew > 0 else 'ahead of'} the server's clock, outside the accepted "
                f"{self._window} s window"
            )
        if not unique:
            return
        digest = hashlib.sha256(presented.signature).digest()
        if not self._seen.first_use(digest, signed_at + timedelta(seconds=self._window)):
            raise Forbidden("replayed request: this signature was already used")


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
