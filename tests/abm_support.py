"""Shared set-up for the ABM tests: a DEP simulator on 127.0.0.1 and a Russet that trusts it."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from cryptography import x509
from sqlalchemy import func, select

from russet.abm.tables import abm_devices
from russet.apple.tables import ledger
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import reading
from simulators.dep import DepSimulator
from simulators.tls import make_server_tls

T = TypeVar("T")


@contextmanager
def simulated(tmp_path: Path, settings: Settings, devices: int = 0) -> Iterator[tuple[DepSimulator, Russet]]:
    """A running simulator and a Russet configured for it (RUSSET_ABM_URL, RUSSET_APPLE_CA_FILE)."""
    tls = make_server_tls(tmp_path / "dep-tls")
    with DepSimulator(tls) as sim:
        if devices:
            sim.add_devices(devices)
        configured = dataclasses.replace(settings, abm_url=sim.url, apple_ca_file=str(tls.ca_file))
        # The gateway as Russet.open makes it, only with short backoff so retried 5xx are quick.
        russet = Russet.open(configured, apple_backoff=0.01)
        try:
            yield sim, russet
        finally:
            russet.close()


def run(russet: Russet, work: Awaitable[T]) -> T:
    return russet.run(work)


def connect(russet: Russet, sim: DepSimulator, name: str = "main") -> dict[str, Any]:
    """`russet abm create` then `russet abm token` with a token the simulator issued for the key."""
    created = russet.abm.create(name)
    cert = x509.load_pem_x509_certificate(created["certificate_pem"].encode())
    return run(russet, russet.abm.load_token(name, sim.token_for(cert)))


def device_count(russet: Russet, name: str = "main") -> int:
    with reading(russet.storage.engine) as conn:
        return conn.execute(select(func.count()).where(abm_devices.c.connection == name)).scalar_one()


def ledger_rows(russet: Russet, **where: str) -> list[dict[str, Any]]:
    russet.ledger.flush()
    query = select(ledger).order_by(ledger.c.id)
    for column, value in where.items():
        query = query.where(ledger.c[column] == value)
    with reading(russet.storage.engine) as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def bodies(sim: DepSimulator, endpoint: str) -> list[dict[str, Any]]:
    import json

    method, path = endpoint.split(" ", 1)
    return [
        json.loads(r.body or b"{}")
        for r in sim.requests
        if r.method == method and r.path.split("?")[0] == path
    ]
