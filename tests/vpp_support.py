"""Shared set-up for the Apps and Books tests: a simulator on 127.0.0.1 and a Russet that trusts it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from sqlalchemy import func, select

from russet.apple.tables import ledger
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import reading
from russet.vpp import notify
from simulators.tls import make_server_tls
from simulators.vpp import Asset, VppSimulator

T = TypeVar("T")
PAGES = "361309726"  # an app with 5 licences
KEYNOTE = "361285480"  # an app with 2 licences
BOOK = "1108187098"  # a book: not device-assignable, not revocable


def default_assets() -> list[Asset]:
    return [
        Asset(PAGES, 5),
        Asset(KEYNOTE, 2),
        Asset(BOOK, 3, product_type="Book", device_assignable=False, revocable=False, platforms=("iOS",)),
    ]


@contextmanager
def simulated(
    tmp_path: Path, settings: Settings, *, assets: list[Asset] | None = None, page_size: int = 100
) -> Iterator[tuple[VppSimulator, Russet, str]]:
    """A running simulator with one location, its token, and a Russet configured for it."""
    tls = make_server_tls(tmp_path / "vpp-tls")
    with VppSimulator(tls, page_size=page_size) as sim:
        sim.limits["maxRequestPerSecond"] = 1000  # the rate limit has its own test
        token = sim.add_location(assets=default_assets() if assets is None else assets)
        configured = dataclasses.replace(settings, vpp_url=sim.url, apple_ca_file=str(tls.ca_file))
        # The gateway as Russet.open makes it, only with short backoff so retried 429/5xx are quick.
        russet = Russet.open(configured, apple_backoff=0.01)
        try:
            yield sim, russet, token
        finally:
            russet.close()


def run(russet: Russet, work: Awaitable[T]) -> T:
    return russet.run(work)


def add(russet: Russet, token: str, name: str = "main", **options: Any) -> dict[str, Any]:
    return run(russet, russet.vpp.add(name, token.encode(), **options))


def deliver(russet: Russet, sim: VppSimulator) -> list[tuple[int, dict[str, Any]]]:
    """Hand Apple's pending notifications to Russet (as the notify route does) and empty the outbox."""
    posted, sim.outbox[:] = list(sim.outbox), []
    out = []
    for note in posted:
        name = urlsplit(note.url).path.rsplit("/", 1)[-1]
        out.append(notify.receive(russet.vpp, name, note.auth_token, note.body))
    return out


def asset(russet: Russet, adam_id: str, name: str = "main") -> dict[str, Any]:
    return next(a for a in russet.vpp.assets(name)["assets"] if a["adam_id"] == adam_id)


def licences(russet: Russet, name: str = "main", **where: Any) -> list[dict[str, Any]]:
    return russet.vpp.list_licences(name, **where)["licences"]


def calls(sim: VppSimulator, endpoint: str) -> int:
    return sim.calls[endpoint]


def ledger_count(russet: Russet, **where: Any) -> int:
    russet.ledger.flush()
    query = select(func.count()).select_from(ledger)
    for column, value in where.items():
        query = query.where(ledger.c[column] == value)
    with reading(russet.storage.engine) as conn:
        return int(conn.execute(query).scalar_one())
