"""WebhookService: receivers (add, list, remove), the outbox filled from the event bus right after
the change that made each event was committed, and the delivery task.

Delivery (`webhooks.deliver`, once across nodes, and each row claimed conditionally besides) sends
each due row, the oldest pending one of its endpoint and device; a failure is retried after an
exponential backoff (`retry_seconds` doubling, at most `max_retry_seconds`), and after
`max_attempts` the row is given up (`failed`, in the delivery log) so that the device's later
events are not held forever. An event published while the process dies between the commit and
the bus is not written (the bus is in-process); one written is delivered whatever happens next.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from russet.kernel.errors import Invalid, NotFound
from russet.kernel.events import (
    CommandReported,
    ConnectionDisconnected,
    DeviceCheckedIn,
    InventoryChanged,
    PushFailed,
)
from russet.kernel.tasks import PeriodicTask
from russet.storage.db import utcnow
from russet.webhooks.sender import Sender
from russet.webhooks.shapes import (
    APPLE_EXPIRING,
    EVENT_TYPES,
    FORMATS,
    NOT_IN_NANOMDM,
    Outgoing,
    expiring,
    from_check_in,
    from_disconnection,
    from_inventory,
    from_push_failure,
    from_report,
)
from russet.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, signature
from russet.webhooks.store import Due, Endpoint, Queued, WebhookStore

log = logging.getLogger("russet.webhooks")

DELIVER_SECONDS = 5.0
ENDPOINT_CACHE_SECONDS = 5.0  # another node's new endpoint gets events within this
CLAIM_SECONDS = 60.0  # a sender that died lets its row go after this
RUN_BUDGET_SECONDS = 30.0  # one run stops taking new rows after this
KEEP_DELIVERED = timedelta(days=7)  # delivered rows leave the outbox; the delivery log stays
# An expiry warning's row is its "already told" mark: kept past the longest threshold (30 days).
KEEP_EXPIRY_WARNINGS = timedelta(days=40)
MAX_ID = 2**63 - 1  # a BIGINT: a larger id names no webhook (rather than fail in the database)


def _check_url(url: str) -> str:
    url = url.strip()
    if not url.isprintable() or " " in url:
        raise Invalid("a webhook URL has no spaces or control characters")
    if len(url) > 2000:
        raise Invalid("a webhook URL is at most 2000 characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise Invalid(f"a webhook URL is http:// or https:// with a host, got {url[:200]!r}")
    host = parts.hostname.lower().rstrip(".")
    if host == "apple.com" or host.endswith(".apple.com"):
        raise Invalid("a webhook receiver is the organisation's own, never Apple's")
    return url


class WebhookService:
    def __init__(
        self,
        store: WebhookStore,
        *,
        sender: Sender | None = None,
        retry_seconds: float = 10.0,
        max_retry_seconds: float = 3600.0,
        max_attempts: int = 30,
    ) -> None:
        self._store = store
        self._sender = sender or Sender()
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = max_retry_seconds
        self.max_attempts = max_attempts
        self.batch = 100  # due rows read at once
        self._cache: tuple[float, list[Endpoint]] | None = None
        self._lock = threading.Lock()

    # -- receivers ------------------------------------------------------------------------------

    def add(self, url: str, events: list[str] | None = None, fmt: str = "russet") -> dict[str, Any]:
        """Register a receiver; the answer holds its secret, shown this once (sealed at rest)."""
        url = _check_url(url)
        if fmt not in FORMATS:
            raise Invalid(f"format is one of {', '.join(FORMATS)}, got {fmt[:50]!r}")
        chosen = tuple(dict.fromkeys(e.strip() for e in events or [] if e.strip() and e.strip() != "*"))
        unknown = [e for e in chosen if e not in EVENT_TYPES]
        if unknown:
            raise Invalid(f"unknown event {unknown[0][:50]!r}; events are: {', '.join(EVENT_TYPES)}")
        if fmt == "nanomdm" and NOT_IN_NANOMDM & set(chosen):
            raise Invalid(f"NanoMDM's format has no {', '.join(sorted(NOT_IN_NANOMDM & set(chosen)))} event")
        secret = secrets.token_urlsafe(32)
        endpoint_id = self._store.add_endpoint(url, chosen, fmt, secret.encode("ascii"), utcnow())
        self._forget_cache()
        endpoint = self._store.endpoint(endpoint_id)
        assert endpoint is not None
        return {**endpoint.public(), "secret": secret}

    def endpoints(self) -> list[dict[str, Any]]:
        pending = self._store.pending()
        return [{**e.public(), "pending": pending.get(e.id, 0)} for e in self._store.endpoints()]

    def remove(self, endpoint_id: int) -> dict[str, Any]:
        """Remove a receiver; the events it had still to receive go with it."""
        dropped = self._store.pending().get(endpoint_id, 0)
        if not 1 <= endpoint_id <= MAX_ID or not self._store.remove_endpoint(endpoint_id):
            raise NotFound(f"no webhook {endpoint_id}")
        self._forget_cache()
        return {"id": endpoint_id, "removed": True, "undelivered_dropped": dropped}

    def deliveries(self, endpoint_id: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """The delivery log, newest first; of one endpoint, removed or not (its log stays)."""
        if endpoint_id is not None and not 1 <= endpoint_id <= MAX_ID:
            return []
        return self._store.deliveries(endpoint_id, limit)

    def _endpoints(self) -> list[Endpoint]:
        with self._lock:
            if self._cache is not None and time.monotonic() - self._cache[0] < ENDPOINT_CACHE_SECONDS:
                return self._cache[1]
        endpoints = self._store.endpoints()
        with self._lock:
            self._cache = (time.monotonic(), endpoints)
        return endpoints

    def _forget_cache(self) -> None:
        with self._lock:
            self._cache = None

    # -- the outbox, from the event bus ---------------------------------------------------------

    def on_check_in(self, event: DeviceCheckedIn) -> None:
        self._enqueue(lambda at: from_check_in(event, at))

    def on_report(self, event: CommandReported) -> None:
        self._enqueue(lambda at: from_report(event, at))

    def on_inventory(self, event: InventoryChanged) -> None:
        self._enqueue(lambda at: from_inventory(event, at))

    def on_push_failed(self, event: PushFailed) -> None:
        self._enqueue(lambda at: from_push_failure(event, at))

    def on_disconnected(self, event: ConnectionDisconnected) -> None:
        self._enqueue(lambda at: from_disconnection(event, at))

    def _enqueue(self, make: Any) -> None:
        endpoints = self._endpoints()
        if not endpoints:
            return  # nobody listens: no work on the device's request
        now = utcnow()
        self._store.enqueue(self._rows(endpoints, make(now)), now)

    @staticmethod
    def _rows(endpoints: list[Endpoint], out: Outgoing) -> list[Queued]:
        rows = []
        for endpoint in endpoints:
            body = out.body(endpoint.format)
            if body is None or not endpoint.wants(out.event_type):
                continue
            data = json.dumps(body, separators=(",", ":"), default=str).encode()
            rows.append(Queued(endpoint.id, out.event_id, out.event_type, out.device_id, data))
        return rows

    def warn_expiring(self, credentials: list[tuple[str, str, datetime | None]]) -> int:
        """Queue `apple.expiring` for each (service, connection, expiry) past a threshold (30, 7,
        1 days, expired), once per threshold; the root's `webhooks.expiring` task gives the push
        certificate and the Apple tokens. Returns how many events were queued."""
        endpoints = [e for e in self._store.endpoints() if e.wants(APPLE_EXPIRING)]
        if not endpoints:
            return 0
        now = utcnow()
        rows: list[Queued] = []
        for service, connection, when in credentials:
            out = None if when is None else expiring(service, connection, when, now)
            if out is not None:
                rows += self._rows(endpoints, out)
        return self._store.enqueue(rows, now, once=True)

    # -- delivery -------------------------------------------------------------------------------

    def tasks(self) -> list[PeriodicTask]:
        return [
            PeriodicTask(
                "webhooks.deliver",
                DELIVER_SECONDS,
                self.deliver_due,
                once_across_nodes=True,
                first_delay=DELIVER_SECONDS,
                description="send due webhook events, oldest first per device, retrying with backoff",
            )
        ]

    def deliver_due(self) -> dict[str, int]:
        """Send what is due until nothing is or the run's budget is spent; an endpoint that fails
        is not tried again in this run (its other devices' events wait for their backoff too)."""
        started = time.monotonic()
        counts = {"delivered": 0, "retry": 0, "failed": 0}
        down: set[int] = set()
        urls = {e.id: e.url for e in self._store.endpoints()}
        while time.monotonic() - started < RUN_BUDGET_SECONDS:
            now = utcnow()
            due = self._store.due(now, self.batch, skip=down)
            if not due:
                break
            for row in due:
                if row.endpoint_id in down:
                    continue
                if not self._store.claim(row.id, now, now + timedelta(seconds=CLAIM_SECONDS)):
                    continue  # another sender has it
                outcome = self._send(row, urls.get(row.endpoint_id))
                counts[outcome] += 1
                if outcome != "delivered":
                    down.add(row.endpoint_id)
        if counts["delivered"]:
            now = utcnow()
            self._store.prune_delivered(
                now - KEEP_DELIVERED, kept_longer=APPLE_EXPIRING, longer_before=now - KEEP_EXPIRY_WARNINGS
            )
        return counts

    def _send(self, row: Due, url: str | None) -> str:
        secret = self._store.secret(row.endpoint_id)
        if url is None or secret is None:  # removed meanwhile: its outbox rows went with it
            return "failed"
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(secret, row.body),
            TIMESTAMP_HEADER: str(int(time.time())),
            "User-Agent": "Russet-Webhooks/1",
        }
        sent = self._sender.post(url, row.body, headers)
        now = utcnow()
        if sent.status is not None and 200 <= sent.status < 300:
            self._store.record(row, outcome="delivered", status=sent.status, error="", now=now)
            return "delivered"
        if row.attempts + 1 >= self.max_attempts:
            log.warning(
                "webhook %s: event %s given up after %d attempts",
                row.endpoint_id,
                row.event_id,
                row.attempts + 1,
            )
            self._store.record(row, outcome="failed", status=sent.status, error=sent.error, now=now)
            return "failed"
        wait = min(self.retry_seconds * 2**row.attempts, self.max_retry_seconds)
        self._store.record(
            row,
            outcome="retry",
            status=sent.status,
            error=sent.error,
            now=now,
            next_attempt_at=now + timedelta(seconds=wait),
        )
        return "retry"
