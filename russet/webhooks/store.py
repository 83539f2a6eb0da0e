"""Every query on the webhooks tables: endpoints, the outbox (enqueue, the due heads per device,
conditional claims, outcomes) and the delivery log."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Engine

from russet.storage.secretbox import SecretBox
from russet.webhooks.tables import webhook_deliveries, webhook_endpoints, webhook_outbox


def secret_purpose(endpoint_id: int) -> str:
    return f"webhook-secret:{endpoint_id}"


def body_purpose(endpoint_id: int, event_id: str) -> str:
    return f"webhook:{endpoint_id}:{event_id}"


@dataclass(frozen=True)
class Endpoint:
    id: int
    url: str
    events: tuple[str, ...]  # empty: every event
    format: str
    created_at: datetime

    def wants(self, event_type: str) -> bool:
        return not self.events or event_type in self.events

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "events": list(self.events) or ["*"],
            "format": self.format,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Due:
    """An outbox row whose turn it is: the oldest pending row of its endpoint and device."""

    id: int
    endpoint_id: int
    event_id: str
    event_type: str
    attempts: int
    body: bytes


@dataclass(frozen=True)
class Queued:
    endpoint_id: int
    event_id: str
    event_type: str
    order_key: str
    body: bytes


def _endpoint(row: Any) -> Endpoint:
    events = tuple(e for e in row.events.split(",") if e and e != "*")
    return Endpoint(row.id, row.url, events, row.format, row.created_at)


class WebhookStore:
    def __init__(self, engine: Engine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    # -- endpoints ------------------------------------------------------------------------------

    def add_endpoint(self, url: str, events: tuple[str, ...], fmt: str, secret: bytes, now: datetime) -> int:
        """Insert the endpoint, then seal its secret under its id (the purpose names the row)."""
        with self._engine.begin() as conn:
            endpoint_id = conn.execute(
                insert(webhook_endpoints).values(
                    url=url, events=",".join(events) or "*", format=fmt, sealed_secret=b"", created_at=now
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            sealed = self._box.seal(secret, secret_purpose(int(endpoint_id)))
            conn.execute(
                update(webhook_endpoints)
                .where(webhook_endpoints.c.id == endpoint_id)
                .values(sealed_secret=sealed)
            )
        return int(endpoint_id)

    def endpoints(self) -> list[Endpoint]:
        with self._engine.connect() as conn:
            rows = conn.execute(select(webhook_endpoints).order_by(webhook_endpoints.c.id)).all()
        return [_endpoint(r) for r in rows]

    def endpoint(self, endpoint_id: int) -> Endpoint | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).first()
        return None if row is None else _endpoint(row)

    def secret(self, endpoint_id: int) -> bytes | None:
        with self._engine.connect() as conn:
            sealed = conn.execute(
                select(webhook_endpoints.c.sealed_secret).where(webhook_endpoints.c.id == endpoint_id)
            ).scalar()
        return None if sealed is None else self._box.open(sealed, secret_purpose(endpoint_id))

    def remove_endpoint(self, endpoint_id: int) -> bool:
        """Remove the endpoint and what it still had to receive; its delivery log stays."""
        with self._engine.begin() as conn:
            conn.execute(delete(webhook_outbox).where(webhook_outbox.c.endpoint_id == endpoint_id))
            gone = conn.execute(delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id))
        return gone.rowcount == 1

    # -- the outbox -----------------------------------------------------------------------------

    def enqueue(self, rows: list[Queued], now: datetime, *, once: bool = False) -> int:
        """Write the rows; `once`: leave out those whose endpoint already has the event (ids that
        are derived, not random: expiry warnings). Returns how many were written."""
        if once and rows:
            o = webhook_outbox
            with self._engine.connect() as conn:
                have = {
                    (r.endpoint_id, r.event_id)
                    for r in conn.execute(
                        select(o.c.endpoint_id, o.c.event_id).where(
                            o.c.event_id.in_({q.event_id for q in rows})
                        )
                    )
                }
            rows = [q for q in rows if (q.endpoint_id, q.event_id) not in have]
        if not rows:
            return 0
        values = [
            {
                "endpoint_id": q.endpoint_id,
                "event_id": q.event_id,
                "event_type": q.event_type,
                "order_key": q.order_key,
                "sealed_body": self._box.seal(q.body, body_purpose(q.endpoint_id, q.event_id)),
                "state": "pending",
                "attempts": 0,
                "created_at": now,
                "next_attempt_at": now,
            }
            for q in rows
        ]
        with self._engine.begin() as conn:
            conn.execute(insert(webhook_outbox), values)
        return len(values)

    def due(self, now: datetime, limit: int, *, skip: Collection[int] = ()) -> list[Due]:
        """Pending rows due now and not held by a sender, each the oldest pending row of its
        endpoint and device: a later event waits for the earlier one, however it fares. `skip`:
        endpoints left out (those that failed in this run)."""
        o = webhook_outbox
        earlier = o.alias("earlier")
        blocked = exists().where(
            earlier.c.endpoint_id == o.c.endpoint_id,
            earlier.c.order_key == o.c.order_key,
            earlier.c.state == "pending",
            earlier.c.id < o.c.id,
        )
        query = (
            select(o.c.id, o.c.endpoint_id, o.c.event_id, o.c.event_type, o.c.attempts, o.c.sealed_body)
            .where(
                o.c.state == "pending",
                o.c.next_attempt_at <= now,
                or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
                ~blocked,
                *([o.c.endpoint_id.not_in(list(skip))] if skip else []),
            )
            .order_by(o.c.id)
            .limit(limit)
        )
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Due(
                r.id,
                r.endpoint_id,
                r.event_id,
                r.event_type,
                r.attempts,
                self._box.open(r.sealed_body, body_purpose(r.endpoint_id, r.event_id)),
            )
            for r in rows
        ]

    def claim(self, outbox_id: int, now: datetime, until: datetime) -> bool:
        """Hold a due row until `until`; of two senders, one wins (the WHERE is re-checked
        against the committed row)."""
        o = webhook_outbox
        with self._engine.begin() as conn:
            done = conn.execute(
                update(o)
                .where(
                    o.c.id == outbox_id,
                    o.c.state == "pending",
                    or_(o.c.claimed_until.is_(None), o.c.claimed_until < now),
                )
                .values(claimed_until=until)
            )
        return done.rowcount == 1

    def record(
        self,
        due: Due,
        *,
        outcome: str,
        status: int | None,
        error: str,
        now: datetime,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """One attempt's outcome: the row delivered, failed for good, or due again later; and the
        delivery log's line, in the same transaction."""
        o = webhook_outbox
        values: dict[str, Any] = {"attempts": due.attempts + 1, "claimed_until": None}
        if outcome == "delivered":
            values |= {"state": "delivered", "delivered_at": now}
        elif outcome == "failed":
            values |= {"state": "failed"}
        else:
            values |= {"next_attempt_at": next_attempt_at}
        with self._engine.begin() as conn:
            conn.execute(update(o).where(o.c.id == due.id).values(**values))
            conn.execute(
                insert(webhook_deliveries).values(
                    endpoint_id=due.endpoint_id,
                    event_id=due.event_id,
                    event_type=due.event_type,
                    attempt=due.attempts + 1,
                    at=now,
                    status=status,
                    outcome=outcome,
                    error=error[:500],
                )
            )

    def pending(self) -> dict[int, int]:
        """Pending outbox rows per endpoint."""
        o = webhook_outbox
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(o.c.endpoint_id, func.count()).where(o.c.state == "pending").group_by(o.c.endpoint_id)
            ).all()
        return {int(r[0]): int(r[1]) for r in rows}

    def prune_delivered(self, before: datetime, *, kept_longer: str, longer_before: datetime) -> int:
        """Outbox rows delivered (or given up) before `before`, those of type `kept_longer` before
        `longer_before`: the delivery log keeps their story."""
        o = webhook_outbox
        old = or_(
            and_(o.c.event_type != kept_longer, o.c.created_at < before),
            and_(o.c.event_type == kept_longer, o.c.created_at < longer_before),
        )
        with self._engine.begin() as conn:
            gone = conn.execute(delete(o).where(o.c.state != "pending", old))
        return gone.rowcount

    # -- the delivery log -----------------------------------------------------------------------

    def deliveries(self, endpoint_id: int | None, limit: int) -> list[dict[str, Any]]:
        d = webhook_deliveries
        query = select(d).order_by(d.c.id.desc()).limit(limit)
        if endpoint_id is not None:
            query = query.where(d.c.endpoint_id == endpoint_id)
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
