"""Certificates Russet holds or has issued, with its own private keys sealed at rest."""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from sqlalchemy import Engine, func, insert, select

from russet.storage.db import reading, utcnow
from russet.storage.secretbox import SecretBox
from russet.storage.tables import certificates


class CertificateStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def add(self, kind: str, cert: x509.Certificate, key: PrivateKeyTypes | None = None) -> str:
        """Record a certificate (and seal its key when Russet keeps it); returns the fingerprint."""
        der = cert.public_bytes(serialization.Encoding.DER)
        fp = hashlib.sha256(der).hexdigest()
        sealed = None
        if key is not None:
            pkcs8 = key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            sealed = self._box.seal(pkcs8, f"certificate-key:{fp}")
        with self._engine.begin() as conn:
            conn.execute(
                insert(certificates).values(
                    kind=kind,
                    fingerprint=fp,
                    subject=cert.subject.rfc4514_string(),
                    serial=format(cert.serial_number, "x"),
                    not_before=cert.not_valid_before_utc,
                    not_after=cert.not_valid_after_utc,
                    der=der,
                    sealed_key=sealed,
                    created_at=utcnow(),
                )
            )
        return fp

    def identity(self, kind: str) -> tuple[x509.Certificate, PrivateKeyTypes] | None:
        """The newest certificate of `kind` that Russet holds the key for."""
        with reading(self._engine) as conn:
            row = conn.execute(
                select(certificates.c.der, certificates.c.sealed_key, certificates.c.fingerprint)
                .where(certificates.c.kind == kind, certificates.c.sealed_key.is_not(None))
                .order_by(certificates.c.id.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        key_der = self._box.open(row.sealed_key, f"certificate-key:{row.fingerprint}")
        return x509.load_der_x509_certificate(row.der), serialization.load_der_private_key(key_der, None)

    def count(self, kind: str) -> int:
        with reading(self._engine) as conn:
            return conn.execute(select(func.count()).where(certificates.c.kind == kind)).scalar_one()
