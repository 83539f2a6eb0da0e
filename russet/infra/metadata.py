"""The one SQLAlchemy `MetaData` every feature declares its tables on, and the column types they share.

Each feature owns its tables in its own `tables.py` (`russet.mdm.tables`, `russet.abm.tables`, ...);
`russet.tables` imports them all, for Alembic and for the test that compares the migrations with
the declared schema. Core rather than the ORM: the device hot path runs a couple of hand-shaped
statements per request and should not pay for identity maps.

The naming convention fixes the names of indexes and constraints, so that a table declared here
and the same table created by a migration agree name for name.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, MetaData

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# A BIGINT primary key that SQLite still treats as its rowid alias (autoincrement).
BigId = BigInteger().with_variant(Integer(), "sqlite")
