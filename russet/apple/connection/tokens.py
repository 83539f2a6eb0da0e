"""A connection's row of sealed credentials, and the warning before its token expires.

ABM keeps its connections in `abm_servers`, Apps and Books in `vpp_locations`; both rows are
named by the connection (`name`), hold a sealed token (`sealed_token`) and are "active" when the
registry (`apple_connections`) says so. `ConnectionRows` is what a feature's store inherits for
that part, so the join with the registry and the sealing labels are written once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, Table, select

from russet.apple.tables import apple_connections
from russet.storage.db import as_utc, reading
from russet.storage.secretbox import SecretBox


class ConnectionRows:
    """The part of a feature's store that is about its connections' rows and sealed secrets."""

    service: str  # "abm" | "vpp": the registry's name for the feature
    table: Table  # the feature's connection table, keyed by `name`, with `sealed_token`
    expiry_column: str  # the column holding when the token (as Apple said) expires

    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    def names(self) -> list[str]:
        with reading(self._engine) as conn:
            return list(conn.execute(select(self.table.c.name).order_by(self.table.c.name)).scalars())

    def active_names(self) -> list[str]:
        """Connections with a token that the registry lists as active: the ones periodic work visits."""
        t, r = self.table.c, apple_connections.c
        query = (
            select(t.name)
            .join(apple_connections, (r.service == self.service) & (r.name == t.name))
            .where(r.status == "active", t.sealed_token.is_not(None))
            .order_by(t.name)
        )
        with reading(self._engine) as conn:
            return list(conn.execute(query).scalars())

    def token_expiries(self) -> dict[str, datetime | None]:
        """When each connection's token expires (None: not said), for connections holding one: one
        query over the connection table, cheap enough for every metrics scrape."""
        t = self.table.c
        query = select(t.name, t[self.expiry_column]).where(t.sealed_token.is_not(None)).order_by(t.name)
        with reading(self._engine) as conn:
            return {name: as_utc(expiry) for name, expiry in conn.execute(query)}

    def registry_status(self, conn: Connection, name: str) -> str | None:
        """The registry's status of the connection, read in the caller's transaction."""
        r = apple_connections.c
        return conn.execute(select(r.status).where(r.service == self.service, r.name == name)).scalar()

    # The labels bind each sealed value to its connection: "abm-token:north", "vpp-token:main".
    def seal(self, kind: str, name: str, plaintext: bytes) -> bytes:
        return self._box.seal(plaintext, f"{self.service}-{kind}:{name}")

    def unseal(self, kind: str, name: str, sealed: bytes) -> bytes:
        return self._box.open(sealed, f"{self.service}-{kind}:{name}")


@dataclass(frozen=True)
class ExpiryWarning:
    """The sentence an admin gets from `days` before a token expires, and after."""

    token: str  # what the token is called: "server token", "content token"
    expired: str  # what to do once it expired
    soon: str  # what to do before it expires
    days: int = 30

    def __call__(self, expiry: datetime | None, now: datetime | None = None) -> str | None:
        if expiry is None:
            return None
        left = expiry - (now or datetime.now(UTC))
        if left <= timedelta(0):
            return f"the {self.token} expired on {expiry.isoformat()}; {self.expired}"
        if left <= timedelta(days=self.days):
            return f"the {self.token} expires in {left.days} days ({expiry.isoformat()}); {self.soon}"
        return None
