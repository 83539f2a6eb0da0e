"""Gauges computed when Prometheus scrapes: read through the services with a few aggregate
queries (no per-device rows), so every worker answers the same numbers from the database.

- `russet_devices_enrolled`: device channels enrolled now;
- `russet_commands{status}`: command deliveries by status (queued, sent, notnow, acknowledged,
  error, ...), and `russet_command_queue_depth`: those still to be answered (queued, sent, notnow);
- `russet_credential_expiry_days{service,connection}`: days until the APNs push certificate and
  each ABM/ASM and Apps and Books token expires (negative once expired); a connection whose
  token Apple did not date is left out. Labels are the connection names an admin chose.
- `russet_fleet_up`: 1, or 0 when the database could not be read (the rest is then missing).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger("russet.metrics")

PENDING = ("queued", "sent", "notnow")  # deliveries still waiting for the device's answer
# Always exposed (0 when none), so dashboards and alerts see a series for each.
STATUSES = (*PENDING, "acknowledged", "error", "format_error", "cancelled", "undeliverable")
DAY = timedelta(days=1)

# (service, connection, when its certificate or token expires; None: not known)
Expiry = tuple[str, str, datetime | None]


@dataclass(frozen=True)
class FleetSources:
    """What the gauges read, each a service's cheap aggregate (wired in `Metrics.for_russet`)."""

    fleet: Callable[[], tuple[int, dict[str, int]]]  # enrolled devices, deliveries by status
    expiries: Callable[[], list[Expiry]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class FleetCollector(Collector):
    def __init__(self, sources: FleetSources, now: Callable[[], datetime] = _utcnow) -> None:
        self._sources = sources
        self._now = now

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("russet_fleet_up", "1 when the fleet gauges could be read from the database")
        try:
            enrolled, by_status = self._sources.fleet()
            expiries = self._sources.expiries()
        except Exception:  # a scrape still shows the request and Apple counters, and this
            log.exception("metrics: the fleet gauges could not be read")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily("russet_devices_enrolled", "Devices enrolled now", value=enrolled)
        commands = GaugeMetricFamily("russet_commands", "Command deliveries by status", labels=["status"])
        for status in sorted({*STATUSES, *by_status}):
            commands.add_metric([status], by_status.get(status, 0))
        yield commands
        yield GaugeMetricFamily(
            "russet_command_queue_depth",
            "Command deliveries waiting for the device's answer (queued, sent, notnow)",
            value=sum(by_status.get(s, 0) for s in PENDING),
        )
        expiry = GaugeMetricFamily(
            "russet_credential_expiry_days",
            "Days until a push certificate or an Apple token expires (negative: expired)",
            labels=["service", "connection"],
        )
        now = self._now()
        for service, connection, when in expiries:
            if when is not None:
                expiry.add_metric([service, connection], round((when - now) / DAY, 3))
        yield expiry
