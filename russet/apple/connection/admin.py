"""What a feature's connection service answers alike: the name rule, the gateway's refusals as
the family's errors, refusing an expired token before Apple is asked, summaries read against
one read of the registry, and the ISO times of JSON answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from russet.apple.connection.errors import AppleConnectionError, AppleUnreachable, ConnectionConflict
from russet.apple.connection.tokens import ConnectionRows
from russet.apple.connections import ConnectionRefused, ConnectionRegistry, Disconnected
from russet.apple.gateway import AppleGateway, AppleUnavailable
from russet.kernel.tasks import PeriodicTask

StoreT = TypeVar("StoreT", bound=ConnectionRows)
# A connection name: it appears in URLs, CLI arguments and messages.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


def check_name(name: str, what: str) -> None:
    """Refuse a name that cannot be a connection's (`what`: "connection", "location")."""
    if not NAME.match(name):
        raise AppleConnectionError(
            f"a {what} name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )


@contextmanager
def apple_errors(not_connected: str, name: str) -> Iterator[None]:
    """The gateway's and the registry's refusals, as errors people can act on.

    `not_connected` is the feature's hint, with `{name}` for the connection's name (quoted)."""
    try:
        yield
    except Disconnected:
        raise ConnectionConflict(not_connected.format(name=repr(name))) from None
    except ConnectionRefused as exc:
        raise ConnectionConflict(str(exc)) from None
    except AppleUnavailable as exc:
        raise AppleUnreachable(f"Apple could not be reached: {exc}") from None


def refuse_expired(expiry: datetime, error: Callable[[str], Exception], message: str) -> None:
    """Refuse before Apple is asked: with an expired token Apple answers only 401."""
    if expiry <= datetime.now(UTC):
        raise error(message.replace("{expiry}", expiry.isoformat()))  # not format: names are in it


def iso(value: datetime | None) -> str | None:
    """A timestamp as JSON answers carry it (None stays None)."""
    return None if value is None else value.isoformat()


def jsonable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored row with its timestamps as ISO strings."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in row.items()}


def registry_index(registry: ConnectionRegistry) -> dict[tuple[str, str], dict[str, Any]]:
    """The registry's rows by (service, name), so a listing reads the registry once."""
    return {(c["service"], c["name"]): c for c in registry.all()}


def registry_state(
    index: Mapping[tuple[str, str], Mapping[str, Any]], service: str, name: str, *, absent: str
) -> dict[str, Any]:
    """A connection's `status` and `busy_with` as the registry has them (`absent`: no row yet)."""
    row = index.get((service, name))
    return {"status": row["status"] if row else absent, "busy_with": row["busy_with"] if row else None}


def summaries(
    registry: ConnectionRegistry,
    names: list[str],
    summary: Callable[[str, dict[tuple[str, str], dict[str, Any]]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every connection of a feature, summarised against one read of the registry."""
    index = registry_index(registry)
    return [summary(name, index) for name in names]


@dataclass(frozen=True)
class ConnectionConfig:
    """What the settings say about a feature's connections, the same three facts for each one."""

    base_url: str  # Apple's API for the feature (RUSSET_ABM_URL, RUSSET_VPP_URL)
    public_url: str  # Russet's own address (profiles, notification URLs)
    sync_every: timedelta  # how often the server syncs each connection (RUSSET_*_SYNC_MINUTES)

    @classmethod
    def of(cls, base_url: str, public_url: str, *, sync_minutes: int) -> ConnectionConfig:
        return cls(base_url, public_url, timedelta(minutes=sync_minutes))


class ConnectionService(Generic[StoreT]):
    """The part of a feature's service that is about its connections: what it was handed, and
    its listing against one read of the registry (the feature writes `_summary`)."""

    def __init__(
        self, store: StoreT, gateway: AppleGateway, connections: ConnectionRegistry, config: ConnectionConfig
    ) -> None:
        self.store = store
        self.config = config
        self._gateway = gateway
        self._connections = connections
        self._base_url = config.base_url
        self._public_url = config.public_url

    @staticmethod
    def connection_task(
        name: str, every_seconds: float, work: Callable[[], Any], description: str
    ) -> PeriodicTask:
        """The feature's periodic work over its connections: once across the nodes sharing the
        database (Apple sees one client), and first one interval after start (a server starting,
        or several, does not call Apple at once)."""
        return PeriodicTask(
            name,
            every_seconds,
            work,
            once_across_nodes=True,
            first_delay=every_seconds,
            description=description,
        )

    def _summary(self, name: str, registry: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def token_expiries(self) -> dict[str, datetime | None]:
        """When each connection's token expires (for the metrics' expiry gauges)."""
        return self.store.token_expiries()

    def _summaries(self, names: list[str]) -> list[dict[str, Any]]:
        return summaries(self._connections, names, self._summary)

    def _shown(self, name: str) -> dict[str, Any]:
        """One connection's summary, the start of what `show` answers."""
        return self._summary(name, registry_index(self._connections))
