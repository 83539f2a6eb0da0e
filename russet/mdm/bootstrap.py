"""Bootstrap tokens that Macs escrow with their MDM server (SetBootstrapToken, Apple §a.4.5).

A bootstrap token grants a secure token to new accounts and authorises kernel extensions and
software updates on the Mac: a secret. It is kept only sealed (AES-GCM under the master key,
bound to its device), handed back only to the device itself (GetBootstrapToken), and shown to
administrators as present or absent, never as its value.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, Engine, delete, select

from russet.mdm.tables import bootstrap_tokens
from russet.storage.db import as_utc, reading, upsert, utcnow
from russet.storage.secretbox import SecretBox


def _purpose(device_id: str) -> str:
    return f"bootstrap-token:{device_id}"


def forget_bootstrap_token(conn: Connection, device_id: str) -> None:
    """Drop a device's escrowed token inside the caller's transaction (e.g. at CheckOut)."""
    conn.execute(delete(bootstrap_tokens).where(bootstrap_tokens.c.device_id == device_id))


class BootstrapTokenStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def escrow(self, device_id: str, token: bytes) -> None:
        """Keep `token` for the device, replacing any earlier one."""
        sealed = self._box.seal(token, _purpose(device_id))
        with self._engine.begin() as conn:
            upsert(
                conn,
                bootstrap_tokens,
                {"device_id": device_id, "sealed_token": sealed, "escrowed_at": utcnow()},
                ["device_id"],
                ["sealed_token", "escrowed_at"],
            )

    def forget(self, device_id: str) -> None:
        with self._engine.begin() as conn:
            forget_bootstrap_token(conn, device_id)

    def token(self, device_id: str) -> bytes | None:
        """The escrowed token, for the device that escrowed it only."""
        with reading(self._engine) as conn:
            sealed = conn.execute(
                select(bootstrap_tokens.c.sealed_token).where(bootstrap_tokens.c.device_id == device_id)
            ).scalar()
        return None if sealed is None else self._box.open(sealed, _purpose(device_id))

    def escrowed_at(self, device_id: str) -> datetime | None:
        """When the device escrowed its token, None when none is held (never the token itself)."""
        with reading(self._engine) as conn:
            return as_utc(
                conn.execute(
                    select(bootstrap_tokens.c.escrowed_at).where(bootstrap_tokens.c.device_id == device_id)
                ).scalar()
            )
