"""SCEP enrollment challenges and identity renewals.

A challenge is a one-time password put in an enrollment profile's SCEP payload; the device
returns it in its CSR. Only its SHA-256 is stored (the challenge is 128 random bits, so a plain
hash makes a stolen table useless), it expires, and it is consumed in the same transaction that
records the certificate it bought, so two requests racing with one challenge get one certificate.

Renewals record which certificate a SCEP RenewalReq replaced, so the enrollment bound to the old
certificate can move to the new one (see `renews`).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Connection, Engine, delete, insert, select, update

from russet.scep.tables import scep_challenges, scep_renewals
from russet.storage.db import as_utc, reading, utcnow
from russet.storage.tables import certificates

DEFAULT_LIFETIME = timedelta(hours=1)
# Unused challenges are kept this long past expiry, so a late device's refusal can be explained.
EXPIRED_CHALLENGE_GRACE = timedelta(days=7)
# Renewals a device may have made without checking in between (each one is a RenewalReq signed by
# the certificate before it); more is not a real device.
MAX_RENEWAL_HOPS = 8


class ChallengeRejected(Exception):
    """The challenge cannot buy a certificate; ``str()`` says why. Nothing was stored."""


class RenewalRejected(Exception):
    """The certificate asking for renewal is not one Russet issued to a device; nothing stored."""


def _hash(challenge: str) -> str:
    return hashlib.sha256(challenge.encode()).hexdigest()


def _certificate_row(kind: str, cert: x509.Certificate) -> dict[str, object]:
    """A row for the certificates table (CertificateStore's layout), without a key."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return {
        "kind": kind,
        "fingerprint": hashlib.sha256(der).hexdigest(),
        "subject": cert.subject.rfc4514_string(),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc,
        "not_after": cert.not_valid_after_utc,
        "der": der,
        "sealed_key": None,
        "created_at": utcnow(),
    }


def renews(conn: Connection, new_fp: str, old_fp: str) -> bool:
    """Whether ``new_fp`` was issued by SCEP renewal(s) starting from ``old_fp``."""
    current: str | None = new_fp
    for _ in range(MAX_RENEWAL_HOPS):
        current = conn.execute(
            select(scep_renewals.c.old_fp).where(scep_renewals.c.new_fp == current)
        ).scalar()
        if current is None:
            return False
        if current == old_fp:
            return True
    return False


class ChallengeStore:
    def __init__(self, engine: Engine, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        self._engine = engine
        self._lifetime = lifetime

    def create(self, subject: x509.Name | None = None, lifetime: timedelta | None = None) -> str:
        """A fresh challenge, returned once; ``subject`` binds it to the CSR subject it must buy.

        Hex, because the CSR carries it as a PrintableString on many clients (no ``_``).
        """
        challenge = secrets.token_hex(16)
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                insert(scep_challenges).values(
                    challenge_hash=_hash(challenge),
                    subject=None if subject is None else subject.rfc4514_string(),
                    created_at=now,
                    expires_at=now + (lifetime or self._lifetime),
                )
            )
        return challenge

    def check(self, challenge: str, subject: x509.Name) -> None:
        """Raise ChallengeRejected unless ``challenge`` could buy a certificate for ``subject`` now.

        A cheap refusal before the certificate is signed; `redeem` decides for good.
        """
        with reading(self._engine) as conn:
            self._refuse(conn, challenge, subject)

    def redeem(self, challenge: str, subject: x509.Name, cert: x509.Certificate, kind: str) -> str:
        """Consume the challenge and record ``cert`` in one transaction; returns its fingerprint."""
        row = _certificate_row(kind, cert)
        now = utcnow()
        with self._engine.begin() as conn:
            self._refuse(conn, challenge, subject)
            conn.execute(insert(certificates).values(**row))
            consumed = conn.execute(
                update(scep_challenges)
                .where(
                    scep_challenges.c.challenge_hash == _hash(challenge),
                    scep_challenges.c.consumed_at.is_(None),
                    scep_challenges.c.expires_at > now,
                )
                .values(consumed_at=now, issued_fp=row["fingerprint"])
            )
            if consumed.rowcount != 1:  # another request redeemed it since the check above
                raise ChallengeRejected("the challenge was already used")
        return str(row["fingerprint"])

    def prune_expired(self, expired_before: datetime | None = None) -> int:
        """Delete challenges that expired unused before ``expired_before`` (by default, more than
        EXPIRED_CHALLENGE_GRACE ago); returns how many.

        Redeemed ones stay: they record which challenge bought which certificate.
        """
        if expired_before is None:
            expired_before = utcnow() - EXPIRED_CHALLENGE_GRACE
        with self._engine.begin() as conn:
            result = conn.execute(
                delete(scep_challenges).where(
                    scep_challenges.c.consumed_at.is_(None), scep_challenges.c.expires_at < expired_before
                )
            )
        return int(result.rowcount or 0)

    def record_renewal(self, old_fp: str, cert: x509.Certificate, kind: str) -> str:
        """Record ``cert`` as the renewal of the device identity ``old_fp``; returns its fingerprint."""
        row = _certificate_row(kind, cert)
        with self._engine.begin() as conn:
            old_kind = conn.execute(
                select(certificates.c.kind).where(certificates.c.fingerprint == old_fp)
            ).scalar()
            if old_kind != kind:
                raise RenewalRejected("the signing certificate is not a device identity Russet issued")
            conn.execute(insert(certificates).values(**row))
            conn.execute(
                insert(scep_renewals).values(new_fp=row["fingerprint"], old_fp=old_fp, renewed_at=utcnow())
            )
        return str(row["fingerprint"])

    def renewed_from(self, fp: str) -> str | None:
        """The certificate ``fp`` renewed, if it came from a SCEP RenewalReq."""
        with reading(self._engine) as conn:
            return conn.execute(select(scep_renewals.c.old_fp).where(scep_renewals.c.new_fp == fp)).scalar()

    def _refuse(self, conn: Connection, challenge: str, subject: x509.Name) -> None:
        row = conn.execute(
            select(
                scep_challenges.c.subject, scep_challenges.c.expires_at, scep_challenges.c.consumed_at
            ).where(scep_challenges.c.challenge_hash == _hash(challenge))
        ).first()
        if row is None:
            raise ChallengeRejected("unknown challenge")
        if row.consumed_at is not None:
            raise ChallengeRejected("the challenge was already used")
        expires_at: datetime = as_utc(row.expires_at)  # type: ignore[assignment]
        if expires_at <= utcnow():
            raise ChallengeRejected(f"the challenge expired at {expires_at.isoformat()}")
        if row.subject is not None and row.subject != subject.rfc4514_string():
            raise ChallengeRejected(
                f"the CSR subject {subject.rfc4514_string()!r} is not the one this challenge was "
                f"issued for ({row.subject!r})"
            )
