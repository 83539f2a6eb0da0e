"""The Apple-connection kit: what ABM and Apps and Books (and the next Apple service) configure
rather than copy.

`russet.apple.connections` is the registry (state, disconnect, purge); this module holds the
pieces each feature's admin layer used to repeat: opening its sealed store, refusing an expired
token before Apple is asked (Apple would only answer 401), turning the gateway's and the
registry's refusals into the feature's own error kinds, wiping a connection's sealed
credentials, and the ISO helpers of the JSON answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Engine

from russet.apple.connections import ConnectionRefused, Disconnected
from russet.apple.gateway import AppleUnavailable
from russet.storage.secretbox import SecretBox

if TYPE_CHECKING:  # the runtime imports the features' hooks while it is itself being imported
    from russet.runtime import Russet

StoreT = TypeVar("StoreT")
# A connection name: it appears in URLs, CLI arguments and messages.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


@dataclass(frozen=True)
class AppleErrors:
    """How one feature names the gateway's refusals: its error classes and its hint for people."""

    conflict: Callable[[str], Exception]  # not connected, or the registry refused (a Conflict kind)
    upstream: Callable[[str], Exception]  # Apple could not be reached (an UpstreamFailed kind)
    not_connected: str  # with {name!r}-style formatting: str.format(name=repr(name))

    @contextmanager
    def translate(self, name: str) -> Iterator[None]:
        """The gateway's and the registry's refusals, as errors people can act on."""
        try:
            yield
        except Disconnected:
            raise self.conflict(self.not_connected.format(name=repr(name))) from None
        except ConnectionRefused as exc:
            raise self.conflict(str(exc)) from None
        except AppleUnavailable as exc:
            raise self.upstream(f"Apple could not be reached: {exc}") from None


def open_sealed(russet: Russet, store: Callable[[Engine, SecretBox], StoreT]) -> StoreT:
    """A feature's store over the server's database, with the box that seals its secrets."""
    return store(russet.storage.engine, SecretBox.load(russet.settings.data_dir, russet.settings.master_key))


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


def registry_index(russet: Russet) -> dict[tuple[str, str], dict[str, Any]]:
    """The registry's rows by (service, name), so a listing reads the registry once."""
    return {(c["service"], c["name"]): c for c in russet.connections.all()}


def registry_state(
    index: Mapping[tuple[str, str], Mapping[str, Any]], service: str, name: str, *, absent: str
) -> dict[str, Any]:
    """A connection's `status` and `busy_with` as the registry has them (`absent`: no row yet)."""
    row = index.get((service, name))
    return {"status": row["status"] if row else absent, "busy_with": row["busy_with"] if row else None}


def summaries(
    russet: Russet,
    store: StoreT,
    names: Callable[[StoreT], list[str]],
    summary: Callable[[StoreT, str, dict[tuple[str, str], dict[str, Any]]], dict[str, Any]],
) -> list[dict[str, Any]]:
    """Every connection of a feature, summarised against one read of the registry."""
    index = registry_index(russet)
    return [summary(store, name, index) for name in names(store)]
