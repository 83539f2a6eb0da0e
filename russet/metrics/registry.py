"""The server's metrics: one registry per app, the counters its observers feed, the scrape.

Counters live in this process. With several server workers (`russet serve --workers N`, or
uvicorn's), a scrape reaches one worker and shows that worker's counters, unless
PROMETHEUS_MULTIPROC_DIR names an empty directory, writable by every worker, when they start:
then each worker writes its counters there and any scrape sums them all (prometheus_client's
multiprocess mode). The fleet gauges are read from the database and so are the same whichever
worker answers.
"""

from __future__ import annotations

import os
from collections import Counter as Tally
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from russet.metrics.fleet import FleetCollector, FleetSources
from russet.metrics.requests import ASGIApp, RequestMetrics

if TYPE_CHECKING:
    from russet.runtime import Russet

# Seconds: a device request is served in about a millisecond, an admin page in tens.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
NO_ANSWER = "none"  # the status label of an attempt Apple never answered (connection failed)


class Metrics:
    def __init__(self, sources: FleetSources) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "russet_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "russet_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.apple_calls = Counter(
            "russet_apple_calls",
            "Attempts at calls to Apple by service and Apple's HTTP status ('none': no answer)",
            ["service", "status"],
            registry=self.registry,
        )
        self.pushes = Counter(
            "russet_apns_pushes",
            "APNs pushes by result (delivered, token_dead, retrying, failed, stopped, no_token, ...)",
            ["result"],
            registry=self.registry,
        )
        self.fleet = FleetCollector(sources)
        self.registry.register(self.fleet)

    @classmethod
    def for_russet(cls, russet: Russet) -> Metrics:
        """Metrics of this server: gauges read through its services, counters fed by its gateway's
        and pusher's observers."""
        metrics = cls(FleetSources(fleet=russet.devices.fleet_counts, expiries=russet.credential_expiries))
        russet.gateway.observe(metrics.apple_call)
        russet.pusher.observe(metrics.push_outcomes)
        return metrics

    def middleware(self, app: ASGIApp) -> RequestMetrics:
        return RequestMetrics(app, self.requests, self.latency)

    def apple_call(self, service: str, status: int | None) -> None:
        self.apple_calls.labels(service, NO_ANSWER if status is None else str(status)).inc()

    def push_outcomes(self, outcomes: Sequence[Any]) -> None:
        for result, count in Tally(o.outcome for o in outcomes).items():
            self.pushes.labels(result).inc(count)

    def render(self) -> tuple[bytes, str]:
        """The scrape's body and content type: this process's counters, or with
        PROMETHEUS_MULTIPROC_DIR every worker's, and the fleet gauges once."""
        directory = os.environ.get(MULTIPROC_ENV)
        if not directory:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=directory)
        merged.register(self.fleet)
        return generate_latest(merged), CONTENT_TYPE_LATEST
