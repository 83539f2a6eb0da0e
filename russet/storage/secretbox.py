"""Encryption at rest for secrets (CA keys, unlock tokens, later Apple tokens).

AES-256-GCM under a master key that lives outside the database: `RUSSET_MASTER_KEY`
(base64, 32 bytes) or, by default, `<data dir>/master.key` created with mode 0600 on first
start. A database dump alone therefore reveals no secret. Each ciphertext is bound to a
purpose label (associated data) so one secret cannot be swapped in for another.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = b"\x01"


class SecretError(Exception):
    """A secret could not be decrypted: wrong master key or tampered data."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, data_dir: Path, env_key: str | None) -> SecretBox:
        """Use the configured key, else the data directory's key file (created if absent)."""
        if env_key:
            try:
                return cls(base64.b64decode(env_key, validate=True))
            except (binascii.Error, ValueError):
                raise SecretError("RUSSET_MASTER_KEY must be 32 bytes in base64") from None
        path = data_dir / "master.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64encode(os.urandom(32)))
        try:
            return cls(base64.b64decode(path.read_bytes().strip(), validate=True))
        except (binascii.Error, ValueError):
            raise SecretError(f"{path} does not hold a base64 32-byte key") from None

    def seal(self, plaintext: bytes, purpose: str) -> bytes:
        nonce = os.urandom(12)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, purpose.encode())

    def open(self, sealed: bytes, purpose: str) -> bytes:
        if len(sealed) < 29 or sealed[:1] != _VERSION:
            raise SecretError(f"stored secret for {purpose} is malformed")
        try:
            return self._aead.decrypt(sealed[1:13], sealed[13:], purpose.encode())
        except InvalidTag:
            raise SecretError(
                f"cannot decrypt the secret for {purpose}: wrong master key or tampered data"
            ) from None
