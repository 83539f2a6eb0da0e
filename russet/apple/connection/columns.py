"""The column every table of an Apple connection's feature has: the connection's name.

A connection's own row is keyed by it (`abm_servers.name`, `vpp_locations.name`), and each row
obtained from or tied to a connection names it (`abm_devices.connection`, `vpp_assets.location`),
which is how purge finds what belongs to a connection. Declared once, so the feature tables agree
on its type with `apple_connections.name`. Imports only SQLAlchemy: tables modules import it
(`tests/test_tables.py` allows exactly this module).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, MetaData, String, Table
from sqlalchemy.schema import SchemaItem


def connection_name(column: str, *, primary_key: bool = True) -> Column[Any]:
    """The column holding the name of the Apple connection a row is (or belongs to)."""
    if primary_key:
        return Column(column, String(100), primary_key=True)
    return Column(column, String(100), nullable=False)


class OwnedTables:
    """A feature's tables whose rows belong to one of its connections, keyed by it first.

    The feature says once which column names the connection (`owner`: ABM's "connection", Apps and
    Books' "location"); each table declared here starts with that column, part of its primary
    key. Its disconnect and purge hooks name the same `owner`, so the two cannot disagree. The
    MetaData is handed in, so this module still imports only SQLAlchemy.
    """

    def __init__(self, metadata: MetaData, owner: str) -> None:
        self.metadata = metadata
        self.owner = owner

    def table(self, name: str, *items: SchemaItem) -> Table:
        """The table `name`: the owner column, then `items` (its other columns and indexes)."""
        return Table(name, self.metadata, connection_name(self.owner), *items)
