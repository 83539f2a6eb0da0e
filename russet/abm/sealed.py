"""What ABM seals at rest, for key rotation (`russet.storage.rotation`): each server's key and token."""

from __future__ import annotations

from russet.abm.tables import abm_servers
from russet.storage.rotation import SealedColumn

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(abm_servers, "sealed_key", lambda r: f"abm-key:{r.name}"),
    SealedColumn(abm_servers, "sealed_token", lambda r: f"abm-token:{r.name}"),
)
