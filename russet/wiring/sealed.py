"""Every sealed column, gathered from its owners for key rotation (`russet.storage.rotation.rotate`).

A feature that seals a new column declares it in its `sealed.py` and is added here;
`tests/test_secrets.py` checks that every `sealed_*` column of the schema is listed.
"""

from __future__ import annotations

from russet.abm import sealed as abm
from russet.escrow import sealed as escrow
from russet.library import sealed as library
from russet.mdm import sealed as mdm
from russet.storage.rotation import INFRASTRUCTURE_SEALED, SealedColumn
from russet.vpp import sealed as vpp
from russet.webhooks import sealed as webhooks

SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    *INFRASTRUCTURE_SEALED,
    *mdm.SEALED_COLUMNS,
    *abm.SEALED_COLUMNS,
    *vpp.SEALED_COLUMNS,
    *escrow.SEALED_COLUMNS,
    *library.SEALED_COLUMNS,
    *webhooks.SEALED_COLUMNS,
)
