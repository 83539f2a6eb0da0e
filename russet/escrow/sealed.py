"""What escrow seals at rest, for key rotation (`russet.storage.rotation`): every escrowed secret."""

from __future__ import annotations

from russet.escrow.tables import escrow_secrets
from russet.storage.rotation import SealedColumn

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(escrow_secrets, "sealed_secret", lambda r: f"escrow:{r.device_id}:{r.kind}"),
)
