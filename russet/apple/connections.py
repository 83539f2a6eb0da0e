"""Connections to Apple's services, and disconnecting and purging them.

Each configured connection (the APNs push certificate, an ABM server token, an Apps and Books
location) has a row here. Disconnecting one stops the gateway from sending anything for it at
once, destroys its credentials and, with purge, deletes every datum Russet holds that came from
or is tied to it — in one transaction, with a receipt. What each service holds is known to the
service itself, which registers `ServiceHooks`.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, delete, event, func, insert, select, update

from russet.apple.catalogue import SERVICE_NAMES
from russet.apple.receipts import ReceiptRefused, ReceiptSeal
from russet.apple.tables import apple_connections, ledger, ledger_counts, purge_receipts
from russet.kernel.errors import Conflict
from russet.kernel.events import ConnectionDisconnected, EventBus
from russet.storage.db import as_utc, reading, upsert, utcnow
from russet.storage.leases import take


class ConnectionRefused(Conflict):
    """A connection operation the connection's state forbids; the message says why."""


class Disconnected(ConnectionRefused):
    """The gateway refuses traffic for a connection that is disconnected or unknown."""


@dataclass(frozen=True)
class Removal:
    """What a purge step removed: ids per table (or per kind of datum)."""

    ids: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class ServiceHooks:
    """What a service knows about its own data, so that disconnect and purge can be generic."""

    service: str
    # Destroys the stored credentials of a connection; returns what was destroyed (kind -> ids).
    destroy_credentials: Callable[[Connection, str], dict[str, list[str]]]
    # Deletes every datum obtained from or tied to the connection; returns what (table -> ids).
    purge: Callable[[Connection, str], dict[str, list[str]]]
    # What the admin still has to do on Apple's side.
    apple_side: Callable[[str], list[str]]
    # Counts the rows tied to the connection in each table that may hold them (the receipt shows
    # them before and after; a purge that would leave any is refused and rolled back).
    traces: Callable[[Connection, str], dict[str, int]]


def delete_owned(
    conn: Connection, name: str, owned: tuple[tuple[Table, ColumnElement[Any], ColumnElement[Any]], ...]
) -> dict[str, list[str]]:
    """A purge step: delete each table's rows whose owner column is `name`, in the order given
    (children first), returning the deleted rows' keys per table for the receipt."""
    removed: dict[str, list[str]] = {}
    for table, owner, key in owned:
        ids = [str(i) for i in conn.execute(select(key).where(owner == name)).scalars()]
        if ids:
            conn.execute(delete(table).where(owner == name))
            removed[table.name] = ids
    return removed


def count_owned(
    conn: Connection, name: str, owned: tuple[tuple[Table, ColumnElement[Any], ColumnElement[Any]], ...]
) -> dict[str, int]:
    """A traces step: how many rows of each table `name` owns (every table, zeros included)."""
    return {
        table.name: conn.execute(select(func.count()).select_from(table).where(owner == name)).scalar_one()
        for table, owner, _ in owned
    }


def _registry_rows(
    service: str, name: str
) -> tuple[tuple[Table, ColumnElement[bool], ColumnElement[Any]], ...]:
    """The registry's own rows of a connection: the ledger's detail and counts (fingerprints and
    dates of what was exchanged), then the connection's row itself."""
    return (
        (ledger, (ledger.c.service == service) & (ledger.c.connection == name), ledger.c.id),
        (
            ledger_counts,
            (ledger_counts.c.service == service) & (ledger_counts.c.connection == name),
            ledger_counts.c.id,
        ),
        (
            apple_connections,
            (apple_connections.c.service == service) & (apple_connections.c.name == name),
            apple_connections.c.id,
        ),
    )


@dataclass
class _Pin:
    """A change this process made to a connection's state; `settled` is when its transaction
    ended (infinity while it runs)."""

    active: bool
    settled: float = math.inf


class ConnectionRegistry:
    # Other processes learn of a disconnect within this many seconds; this one at once.
    REFRESH_SECONDS = 1.0
    # Another process may write a purged connection's ledger rows after the purge: rows it still
    # had buffered (flushed every half second, kept and retried when a write fails), or an
    # exchange that was in flight. The sweep deletes those written this long before or after it.
    LATE_BEFORE = timedelta(minutes=10)
    LATE_AFTER = timedelta(minutes=2)
    SWEEP_SECONDS = 60.0

    def __init__(
        self,
        engine: Engine,
        hooks: list[ServiceHooks],
        *,
        seal: ReceiptSeal | None = None,
        flush_ledger: Callable[[], object] | None = None,
        events: EventBus | None = None,
    ) -> None:
        """`seal` signs receipts (the runtime always passes one; benches that never disconnect
        need none); `flush_ledger` writes buffered ledger rows, so a purge finds them all;
        `events` is told of each disconnection once committed (ConnectionDisconnected)."""
        self._engine = engine
        self._hooks = {h.service: h for h in hooks}
        self._seal = seal
        self._flush_ledger = flush_ledger
        self._events = events or EventBus()
        self._active: set[tuple[str, str]] = set()
        self._loaded_at = 0.0
        self._pins: dict[tuple[str, str], _Pin] = {}
        self._lock = threading.Lock()

    # -- state the gateway checks -----------------------------------------------------------

    def _refresh(self) -> None:
        started = time.monotonic()
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(apple_connections.c.service, apple_connections.c.name).where(
                    apple_connections.c.status == "active"
                )
            ).all()
        with self._lock:
            active = {(r.service, r.name) for r in rows}
            for key, pin in list(self._pins.items()):
                if (key in active) == pin.active or pin.settled < started:
                    del self._pins[key]  # what was read shows it, or was read after it settled
                else:
                    (active.add if pin.active else active.discard)(key)
            self._active = active
            self._loaded_at = started

    def _pin(self, key: tuple[str, str], active: bool, conn: Connection | None = None) -> _Pin:
        """Apply this process's own change at once, and keep it over refreshes that read before it
        committed: a refresh on another thread may read the old row and would undo it. With `conn`
        the change settles when that transaction ends (rolled back: it is dropped and re-read);
        without, the caller settles it."""
        pin = _Pin(active)
        with self._lock:
            (self._active.add if active else self._active.discard)(key)
            self._pins[key] = pin
        if conn is not None:
            event.listen(conn, "commit", lambda _conn: self._settle(key, pin), once=True)
            event.listen(conn, "rollback", lambda _conn: self._settle(key, pin, undone=True), once=True)
        return pin

    def _settle(self, key: tuple[str, str], pin: _Pin, *, undone: bool = False) -> None:
        with self._lock:
            if self._pins.get(key) is not pin:
                return  # a later change of this process replaced it
            if undone:
                del self._pins[key]
                self._loaded_at = 0.0  # the change never happened: read what is there
            else:
                pin.settled = time.monotonic()

    def is_active(self, service: str, name: str) -> bool:
        if time.monotonic() - self._loaded_at > self.REFRESH_SECONDS:
            self._refresh()
        return (service, name) in self._active

    def require_active(self, service: str, name: str) -> None:
        if not self.is_active(service, name):
            raise Disconnected(f"{SERVICE_NAMES.get(service, service)} connection {name!r} is not connected")

    # -- lifecycle --------------------------------------------------------------------------

    def connect(self, conn: Connection, service: str, name: str) -> None:
        """Mark a connection active (called inside the transaction that stores its credentials)."""
        upsert(
            conn,
            apple_connections,
            {
                "service": service,
                "name": name,
                "status": "active",
                "created_at": utcnow(),
                "disconnected_at": None,
            },
            ["service", "name"],
            ["status", "disconnected_at"],
        )
        self._pin((service, name), True, conn)

    def withdraw(self, conn: Connection, service: str, name: str, previous: str | None) -> None:
        """Undo `connect` inside the caller's transaction when setting a connection up failed:
        back to its `previous` status, or no row at all when there was none."""
        where = (apple_connections.c.service == service, apple_connections.c.name == name)
        if previous is None:
            conn.execute(delete(apple_connections).where(*where))
        else:
            conn.execute(update(apple_connections).where(*where).values(status=previous))
        self._pin((service, name), previous == "active", conn)

    def all(self) -> list[dict[str, Any]]:
        with reading(self._engine) as conn:
            rows = conn.execute(
                select(apple_connections).order_by(apple_connections.c.service, apple_connections.c.name)
            )
            return [
                {
                    "service": r.service,
                    "name": r.name,
                    "status": r.status,
                    "created_at": as_utc(r.created_at),
                    "disconnected_at": as_utc(r.disconnected_at),
                    "busy_with": r.busy_with if r.busy_until and as_utc(r.busy_until) > utcnow() else None,  # type: ignore[operator]
                }
                for r in rows
            ]

    @contextmanager
    def lease(
        self, service: str, name: str, operation: str, ttl: timedelta = timedelta(minutes=30)
    ) -> Iterator[None]:
        """Hold the connection for a long operation; purge is refused meanwhile (and vice versa)."""
        now = utcnow()
        with self._engine.begin() as conn:
            taken = take(
                conn,
                apple_connections,
                {"service": service, "name": name},
                apple_connections.c.busy_until,
                now,
                {"busy_with": operation, "busy_until": now + ttl},
            )
            if not taken:
                row = conn.execute(
                    select(apple_connections.c.busy_with, apple_connections.c.busy_until).where(
                        apple_connections.c.service == service, apple_connections.c.name == name
                    )
                ).first()
                if row is None:
                    raise ConnectionRefused(
                        f"no {SERVICE_NAMES.get(service, service)} connection named {name!r}"
                    )
                raise ConnectionRefused(
                    f"{service} {name!r} is busy with {row.busy_with} "
                    f"(until {as_utc(row.busy_until)}); try again later"
                )
        try:
            yield
        finally:
            with self._engine.begin() as conn:
                conn.execute(
                    update(apple_connections)
                    .where(apple_connections.c.service == service, apple_connections.c.name == name)
                    .values(busy_with=None, busy_until=None)
                )

    def disconnect(self, service: str, name: str, *, purge: bool) -> dict[str, Any]:
        """Stop traffic, destroy credentials and (with purge) the data; returns the receipt."""
        hooks = self._hooks.get(service)
        if hooks is None:
            raise ConnectionRefused(
                f"unknown service {service!r}; expected one of {', '.join(sorted(self._hooks))}"
            )
        with self.lease(service, name, "disconnect"):
            # Block the gateway before anything else, so no request starts while we work; a
            # refresh must not bring it back before the disconnect commits, however long a purge.
            pin = self._pin((service, name), False)
            try:
                return self._disconnect(service, name, hooks, purge=purge)
            finally:
                self._settle((service, name), pin)
                self._loaded_at = 0.0  # what committed (or was rolled back) is read afresh

    def _disconnect(self, service: str, name: str, hooks: ServiceHooks, *, purge: bool) -> dict[str, Any]:
        """`disconnect`'s work, with the gateway already blocked."""
        if purge and self._flush_ledger is not None:
            self._flush_ledger()
        now = utcnow()
        with self._engine.begin() as conn:
            conn.execute(
                update(apple_connections)
                .where(apple_connections.c.service == service, apple_connections.c.name == name)
                .values(status="disconnected", disconnected_at=now)
            )
            before = self._traces(conn, hooks, name)
            destroyed = hooks.destroy_credentials(conn, name)
            removed = {**hooks.purge(conn, name), **self._purge_own(conn, service, name)} if purge else {}
            after = self._traces(conn, hooks, name)
            left = {table: n for table, n in after.items() if n}
            if purge and left:
                # Raising rolls the whole transaction back: nothing is half purged, and the
                # connection is as it was (this process re-reads which ones are active).
                raise ConnectionRefused(
                    f"purge of {service} {name!r} would leave rows in "
                    + ", ".join(f"{t} ({n})" for t, n in sorted(left.items()))
                    + "; nothing was deleted"
                )
            receipt = _receipt(service, name, now, destroyed, removed, purge, hooks.apple_side(name))
            receipt["tables"] = {t: {"before": before[t], "after": after[t]} for t in sorted(before)}
            if self._seal is not None:
                receipt = self._seal.sign(receipt)
            conn.execute(
                insert(purge_receipts).values(
                    service=service, connection=name, at=now, receipt=json.dumps(receipt, sort_keys=True)
                )
            )
        self._events.publish(ConnectionDisconnected(service, name, purge, receipt))
        return receipt

    @staticmethod
    def _traces(conn: Connection, hooks: ServiceHooks, name: str) -> dict[str, int]:
        counts = dict(hooks.traces(conn, name))
        for table, where, _ in _registry_rows(hooks.service, name):
            counts[table.name] = conn.execute(
                select(func.count()).select_from(table).where(where)
            ).scalar_one()
        return counts

    @staticmethod
    def _purge_own(conn: Connection, service: str, name: str) -> dict[str, list[str]]:
        removed: dict[str, list[str]] = {}
        for table, where, key in _registry_rows(service, name):
            ids = [str(i) for i in conn.execute(select(key).where(where)).scalars()]
            if ids:
                conn.execute(delete(table).where(where))
                removed[table.name] = ids
        return removed

    def sweep_after_purge(self, now: datetime | None = None) -> int:
        """Delete the ledger rows other processes wrote for a purged connection after its purge
        (see LATE_BEFORE); skipped for a connection set up again under the same name. Returns
        how many. The `apple.purge_sweep` task runs it every minute."""
        now = now or utcnow()
        since = now - self.LATE_BEFORE - self.LATE_AFTER - timedelta(seconds=self.SWEEP_SECONDS * 5)
        removed = 0
        with self._engine.begin() as conn:
            recent = conn.execute(
                select(purge_receipts.c.service, purge_receipts.c.connection, purge_receipts.c.at).where(
                    purge_receipts.c.at >= since,
                    purge_receipts.c.receipt.like('%"purged": true%'),
                )
            ).all()
            for service, name, at in recent:
                again = conn.execute(
                    select(apple_connections.c.id).where(
                        apple_connections.c.service == service, apple_connections.c.name == name
                    )
                ).first()
                if again is not None:
                    continue
                purged_at = as_utc(at)
                if purged_at is None:
                    continue
                removed += conn.execute(
                    delete(ledger).where(
                        ledger.c.at >= purged_at - self.LATE_BEFORE,
                        ledger.c.at <= purged_at + self.LATE_AFTER,
                        ledger.c.service == service,
                        ledger.c.connection == name,
                    )
                ).rowcount
        return removed

    def verify_receipt(self, receipt: Any) -> dict[str, Any]:
        """The receipt if it is intact and was signed under this Russet's CA; ReceiptRefused
        (with the reason in one line) otherwise."""
        if self._seal is None:
            raise ReceiptRefused("this Russet has no CA to verify receipts with")
        return self._seal.verify(receipt)

    def receipts(self) -> list[dict[str, Any]]:
        with reading(self._engine) as conn:
            return [
                json.loads(r.receipt)
                for r in conn.execute(select(purge_receipts).order_by(purge_receipts.c.id))
            ]


def _receipt(
    service: str,
    name: str,
    at: datetime,
    destroyed: dict[str, list[str]],
    removed: dict[str, list[str]],
    purged: bool,
    apple_side: list[str],
) -> dict[str, Any]:
    everything = sorted(
        f"{kind}:{i}" for part in (destroyed, removed) for kind, ids in part.items() for i in ids
    )
    return {
        "service": service,
        "connection": name,
        "at": at.isoformat(),
        "purged": purged,
        "credentials_destroyed": {kind: len(ids) for kind, ids in destroyed.items()},
        "data_deleted": {table: len(ids) for table, ids in removed.items()},
        # Proves what was deleted without keeping it: the SHA-256 of the sorted "table:id" list.
        "deleted_ids_sha256": hashlib.sha256("\n".join(everything).encode()).hexdigest(),
        "remaining_on_apple_side": apple_side,
        # Not the connection's data but the record of who did what: hash-chained, never edited.
        "kept": "the audit log keeps admins' actions on the connection, with their targets as typed",
        "ledger": (
            "the connection's ledger rows (fingerprints and counts) are deleted with it; this receipt "
            "keeps only counts"
            if purged
            else "ledger rows are kept until purge: they hold fingerprints only"
        ),
    }


def destroy_sealed(
    conn: Connection, table: Table, name: str, kinds: Mapping[str, str], *, also_clear: tuple[str, ...] = ()
) -> dict[str, list[str]]:
    """Wipe a connection's sealed columns (`kinds`: column -> what the receipt calls it), and the
    columns derived from them (`also_clear`); say which secrets there were to destroy."""
    row = conn.execute(select(*(table.c[col] for col in kinds)).where(table.c.name == name)).first()
    if row is None:
        return {}
    conn.execute(
        update(table).where(table.c.name == name).values({col: None for col in (*kinds, *also_clear)})
    )
    return {kind: [name] for col, kind in kinds.items() if row._mapping[col] is not None}
