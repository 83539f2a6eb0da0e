"""Every table of Russet, gathered from the features that own them.

A feature declares its tables in its own `tables.py` on the shared `russet.infra.metadata`;
importing this module imports all of them, so that `metadata` is complete. Only the migrations'
environment (`storage/migrations/env.py`) and tests need the whole: a feature imports its own
`tables` module, never this one.
"""

from __future__ import annotations

from types import ModuleType

from russet.abm import tables as abm_tables
from russet.access import tables as access_tables
from russet.apns import tables as apns_tables
from russet.apple import tables as apple_tables
from russet.apps import tables as apps_tables
from russet.blueprints import tables as blueprint_tables
from russet.declarative import tables as declarative_tables
from russet.enrollment import tables as enrollment_tables
from russet.escrow import tables as escrow_tables
from russet.groups import tables as groups_tables
from russet.infra.metadata import metadata
from russet.library import tables as library_tables
from russet.mdm import tables as mdm_tables
from russet.scep import tables as scep_tables
from russet.storage import tables as storage_tables
from russet.vpp import tables as vpp_tables
from russet.webhooks import tables as webhook_tables

# The modules that declare tables, one per owner: each table is declared in exactly one of them.
TABLE_MODULES: tuple[ModuleType, ...] = (
    storage_tables,
    mdm_tables,
    enrollment_tables,
    scep_tables,
    apple_tables,
    apns_tables,
    abm_tables,
    vpp_tables,
    groups_tables,
    library_tables,
    apps_tables,
    blueprint_tables,
    declarative_tables,
    escrow_tables,
    access_tables,
    webhook_tables,
)

__all__ = ["TABLE_MODULES", "metadata"]
