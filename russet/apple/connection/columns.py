"""The column every table of an Apple connection's feature has: the connection's name.

A connection's own row is keyed by it (`abm_servers.name`, `vpp_locations.name`), and each row
obtained from or tied to a connection names it (`abm_devices.connection`, `vpp_assets.location`),
which is how purge finds what belongs to a connection. Declared once, so the feature tables agree
on its type with `apple_connections.name`. Imports only SQLAlchemy: tables modules import it
(`tests/test_tables.py` allows exactly this module).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, String


def connection_name(column: str, *, primary_key: bool = True) -> Column[Any]:
    """The column holding the name of the Apple connection a row is (or belongs to)."""
    if primary_key:
        return Column(column, String(100), primary_key=True)
    return Column(column, String(100), nullable=False)
