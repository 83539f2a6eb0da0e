"""Admin API keys, stored as SHA-256 hashes only.

Keys are 256 random bits, so a plain SHA-256 (no slow KDF) is enough to make a stolen table
useless, and lets a request be authenticated with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from russet.kernel.errors import Conflict, Invalid
from russet.storage.db import HotRead, as_utc, reading, utcnow
from russet.storage.tables import api_keys

KEY_PREFIX = "rus_"
_HOLDER = HotRead(
    select(api_keys.c.name, api_keys.c.role).where(
        api_keys.c.key_hash == bindparam("hashed"), api_keys.c.revoked_at.is_(None)
    )
)


class ApiKeyError(Invalid, ValueError):
    """The key name is unusable.

    Still a ValueError too, for callers that catch one.
    """


@dataclass(frozen=True)
class ApiKey:
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    role: str = "admin"


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_hash(key: str) -> str:
    """What the table stores for `key`; the web console keeps this, not the key, in its session."""
    return _hash(key)


class ApiKeyStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, name: str, role: str = "admin") -> str:
        """Store a new key with `role` and return it; this is the only time the clear key exists."""
        name = name.strip()
        if not name or len(name) > 100:
            raise ApiKeyError("an API key name must be 1 to 100 characters")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with self._engine.begin() as conn:
                conn.execute(
                    insert(api_keys).values(
                        name=name, key_hash=_hash(key), prefix=key[:10], created_at=utcnow(), role=role
                    )
                )
        except IntegrityError:
            raise Conflict(f"an API key named {name!r} already exists") from None
        return key

    def authenticate(self, key: str) -> str | None:
        """The name of the live key matching `key`, or None."""
        found = self.holder_of_hash(_hash(key))
        return None if found is None else found[0]

    def authenticate_hash(self, hashed: str) -> str | None:
        """The name of the live key whose hash is `hashed`, or None (so revoking ends sessions)."""
        found = self.holder_of_hash(hashed)
        return None if found is None else found[0]

    def holder_of_hash(self, hashed: str) -> tuple[str, str] | None:
        """The name and role of the live key whose hash is `hashed`, or None. Every admin API
        request asks, so it is one indexed read on a pooled cursor (HotRead), not cached: a
        revoked key stops working at once, on every node."""
        row = _HOLDER.first(self._engine, {"hashed": hashed})
        return None if row is None else (row.name, row.role)

    def revoke(self, name: str) -> bool:
        with self._engine.begin() as conn:
            res = conn.execute(
                update(api_keys)
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        return res.rowcount > 0

    def list(self) -> list[ApiKey]:
        with reading(self._engine) as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.name)).all()
        return [
            ApiKey(
                r.name,
                r.prefix,
                as_utc(r.created_at),  # type: ignore[arg-type]
                as_utc(r.last_used_at),
                as_utc(r.revoked_at),
                r.role,
            )
            for r in rows
        ]
