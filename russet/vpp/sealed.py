"""What Apps and Books seals at rest, for key rotation (`russet.storage.rotation`): each location's token."""

from __future__ import annotations

from russet.storage.rotation import SealedColumn
from russet.vpp.tables import vpp_locations

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(vpp_locations, "sealed_token", lambda r: f"vpp-token:{r.name}"),
)
