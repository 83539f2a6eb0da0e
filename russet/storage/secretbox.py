"""Encryption at rest for secrets (CA keys, unlock tokens, push tokens, Apple credentials...).

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

from russet.kernel.errors import Conflict, Invalid

_VERSION = b"\x01"
KEY_FILE = "master.key"
# Written by `russet secrets rotate` before its transaction; it replaces KEY_FILE once committed.
NEW_KEY_FILE = "master.key.new"


class DataDirError(Invalid):
    """The data directory cannot be created or written: the message names it and why."""


class SecretError(Conflict):
    """A secret could not be decrypted: wrong master key or tampered data (a state no input fixes)."""


def private_dir(path: Path) -> None:
    """Create `path` (and parents) for Russet's data, readable by its owner only (0700). A path
    that cannot be made (a file in the way, a read-only disk, no permission) is a DataDirError."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as exc:
        raise DataDirError(f"cannot use the data directory {str(path)!r}: {exc.strerror or exc}") from None


def write_private(path: Path, data: bytes, *, exclusive: bool = True) -> None:
    """Write a file that only its owner can read (0600), durably: created with that mode, so it
    is never readable by others even for an instant, whatever the umask."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)  # an existing file (exclusive=False) keeps its old mode otherwise
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def new_key() -> bytes:
    return os.urandom(32)


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


def is_sealed(blob: bytes) -> bool:
    """Whether a column that may hold either form holds a sealed value.

    Only for columns whose clear form is a property list (command bodies and results): XML
    plists start with `<` or whitespace, binary ones with `bplist`, never with the version byte.
    """
    return blob[:1] == _VERSION


class SecretBox:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise SecretError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    @classmethod
    def load(cls, data_dir: Path, env_key: str | None) -> SecretBox:
        """Use the configured key, else the data directory's key file (created if absent)."""
        if env_key:
            return cls(decode_key(env_key, "RUSSET_MASTER_KEY"))
        path = data_dir / KEY_FILE
        if not path.exists():
            private_dir(data_dir)
            # Written whole under a name of its own, then linked into place: a process starting
            # at the same moment never reads a half-written key, and the first link wins.
            draft = data_dir / f".{KEY_FILE}.{os.getpid()}.{os.urandom(4).hex()}"
            write_private(draft, base64.b64encode(new_key()))
            try:
                os.link(draft, path)
            except FileExistsError:
                pass
            finally:
                draft.unlink()
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)  # a copy restored with a loose mode
        return cls(decode_key(path.read_bytes(), str(path)))

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


def decode_key(raw: str | bytes, source: str) -> bytes:
    """A base64 32-byte key, or a SecretError naming where it came from."""
    try:
        key = base64.b64decode(raw.strip(), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise SecretError(f"{source} must hold a 32-byte key in base64")
    return key
