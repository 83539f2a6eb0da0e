"""Certificates Russet holds or has issued, with its own private keys sealed at rest."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from russet.storage.db import reading, utcnow
from russet.storage.secretbox import SecretBox
from russet.storage.tables import certificates, settings

#: The settings key naming the one certificate of a kind Russet keeps (`sole_identity`).
SOLE_CLAIM = "sole-certificate:"


def _fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


class CertificateStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def add(self, kind: str, cert: x509.Certificate, key: PrivateKeyTypes | None = None) -> str:
        """Record a certificate (and seal its key when Russet keeps it); returns the fingerprint."""
        row = self._row(kind, cert, key)
        with self._engine.begin() as conn:
            conn.execute(insert(certificates).values(**row))
        return str(row["fingerprint"])

    def _row(self, kind: str, cert: x509.Certificate, key: PrivateKeyTypes | None) -> dict[str, Any]:
        der = cert.public_bytes(serialization.Encoding.DER)
        fp = hashlib.sha256(der).hexdigest()
        sealed = None
        if key is not None:
            pkcs8 = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            sealed = self._box.seal(pkcs8, f"certificate-key:{fp}")
        return {
            "kind": kind,
            "fingerprint": fp,
            "subject": cert.subject.rfc4514_string(),
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc,
            "not_after": cert.not_valid_after_utc,
            "der": der,
            "sealed_key": sealed,
            "created_at": utcnow(),
        }

    def sole_identity(
        self, kind: str, make: Callable[[], tuple[x509.Certificate, PrivateKeyTypes]]
    ) -> tuple[x509.Certificate, PrivateKeyTypes]:
        """The one identity of `kind` Russet keeps, made by `make` on first use.

        Processes (or nodes) making it at the same instant end with one: each inserts its own
        certificate with a claim on `sole-certificate:<kind>` in the settings (the primary key:
        inserted only where none is, a concurrent insert waiting for the first to commit), re-reads
        the claim in the same transaction, and removes its own certificate when another won. An
        identity made before claims existed is claimed as it is.
        """
        claimed = self._claimed(kind)
        if claimed is not None:
            return claimed
        existing = self.identity(kind)
        cert, key = existing if existing is not None else make()
        fp = _fingerprint(cert)
        claim = SOLE_CLAIM + kind
        with self._engine.begin() as conn:
            if existing is None:
                conn.execute(insert(certificates).values(**self._row(kind, cert, key)))
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            conn.execute(
                dialect.insert(settings)
                .values(key=claim, value=fp, updated_at=utcnow())
                .on_conflict_do_nothing(index_elements=["key"])
            )
            winner = conn.execute(select(settings.c.value).where(settings.c.key == claim)).scalar_one()
            if winner != fp and existing is None:
                conn.execute(delete(certificates).where(certificates.c.fingerprint == fp))
        found = self._claimed(kind)
        if found is None:  # the claim names a certificate that is gone: a bug, not a race
            raise RuntimeError(f"the {kind} certificate claimed in the settings is missing")
        return found

    def _claimed(self, kind: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        with reading(self._engine) as conn:
            fp = conn.execute(select(settings.c.value).where(settings.c.key == SOLE_CLAIM + kind)).scalar()
            if fp is None:
                return None
            row = conn.execute(
                select(certificates.c.der, certificates.c.sealed_key, certificates.c.fingerprint).where(
                    certificates.c.fingerprint == fp, certificates.c.sealed_key.is_not(None)
                )
            ).first()
        return None if row is None else self._open(row)

    def _open(self, row: Any) -> tuple[x509.Certificate, PrivateKeyTypes]:
        key_der = self._box.open(row.sealed_key, f"certificate-key:{row.fingerprint}")
        return x509.load_der_x509_certificate(row.der), serialization.load_der_private_key(key_der, None)

    def identity(self, kind: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        """The newest certificate of `kind` that Russet holds the key for."""
        with reading(self._engine) as conn:
            row = conn.execute(
                select(certificates.c.der, certificates.c.sealed_key, certificates.c.fingerprint)
                .where(certificates.c.kind == kind, certificates.c.sealed_key.is_not(None))
                .order_by(certificates.c.id.desc())
                .limit(1)
            ).first()
        return None if row is None else self._open(row)

    def count(self, kind: str) -> int:
        with reading(self._engine) as conn:
            return conn.execute(select(func.count()).where(certificates.c.kind == kind)).scalar_one()
