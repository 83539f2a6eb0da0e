"""Key/value settings, with sealed (encrypted) values for secrets."""

from __future__ import annotations

import os

from sqlalchemy import Engine, delete, select

from russet.storage.db import reading, upsert, utcnow
from russet.storage.secretbox import SecretBox
from russet.storage.tables import settings


class SettingsStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def get(self, key: str) -> str | None:
        with reading(self._engine) as conn:
            return conn.execute(select(settings.c.value).where(settings.c.key == key)).scalar()

    def set(self, key: str, value: str) -> None:
        with self._engine.begin() as conn:
            upsert(
                conn,
                settings,
                {"key": key, "value": value, "updated_at": utcnow()},
                ["key"],
                ["value", "updated_at"],
            )

    def with_prefix(self, prefix: str) -> dict[str, str]:
        """Every plain value whose key starts with `prefix`, by key (one query: a feature's group
        of settings, such as the minimum OS of each platform)."""
        pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(settings.c.key, settings.c.value).where(
                    settings.c.key.like(pattern, escape="\\"), settings.c.value.is_not(None)
                )
            ).all()
        return {key: value for key, value in rows}

    def delete(self, key: str) -> bool:
        """Forget `key`; whether it was there."""
        with self._engine.begin() as conn:
            return conn.execute(delete(settings).where(settings.c.key == key)).rowcount > 0

    def get_secret(self, key: str) -> bytes | None:
        with reading(self._engine) as conn:
            sealed = conn.execute(select(settings.c.sealed_value).where(settings.c.key == key)).scalar()
        return None if sealed is None else self._box.open(sealed, f"settings:{key}")

    def set_secret(self, key: str, secret: bytes) -> None:
        row = {"key": key, "sealed_value": self._box.seal(secret, f"settings:{key}"), "updated_at": utcnow()}
        with self._engine.begin() as conn:
            upsert(conn, settings, row, ["key"], ["sealed_value", "updated_at"])

    def random_key(self, key: str, size: int = 32) -> bytes:
        """The random key stored sealed under `key`, made on first use. Callers make it under the
        first-start lock (`runtime.set_up`), so processes starting together share one key."""
        found = self.get_secret(key)
        if found is None:
            found = os.urandom(size)
            self.set_secret(key, found)
        return found
