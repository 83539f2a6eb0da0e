"""Prometheus metrics for the server (issue #19 item 4), served at `/metrics` when RUSSET_METRICS=on.

- `requests.py`: ASGI middleware counting requests and timing them by route template and status;
- `fleet.py`: gauges read at scrape time through the services (devices, command deliveries by
  status, credential expiry per connection);
- `registry.py`: the counters (Apple calls, pushes) fed by the gateway's and the pusher's
  observers, and rendering the scrape (one worker, or every worker with PROMETHEUS_MULTIPROC_DIR).

It sits between the admin surfaces and the composition root: it reads `Russet`'s services, and
`russet/api/metrics.py` serves what it renders.
"""

from russet.metrics.registry import Metrics

__all__ = ["Metrics"]
