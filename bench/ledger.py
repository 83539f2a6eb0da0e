"""What recording an exchange in the ledger costs.

For each backend: the time the caller pays to record one APNs-push-shaped exchange (three
fields: Token, PushMagic, topic), the background writer's time to store it, and the sum, per
exchange, next to the rows per second the writer sustains.

    python bench/ledger.py [--backend sqlite|postgres|both] [--exchanges N]
"""

from __future__ import annotations

import argparse
import os
import secrets
import time

from _measure import fresh_database

from russet.apple.connections import ConnectionRegistry
from russet.apple.gateway import AppleGateway, Call, Datum
from russet.apple.ledger import Fingerprinter, Ledger
from russet.storage.db import make_engine, migrate


def measure(url: str, exchanges: int) -> dict[str, float]:
    engine = make_engine(url)
    migrate(engine)
    ledger = Ledger(engine, Fingerprinter(os.urandom(32)))  # no background thread: flushes are timed here
    gateway = AppleGateway(ledger, ConnectionRegistry(engine, []))
    calls = [
        Call(
            "apns",
            "default",
            "POST /3/device/{token}",
            "wake the device for queued commands",
            [
                Datum("Token", secrets.token_bytes(32), subject=f"UDID-{i}"),
                Datum("PushMagic", secrets.token_hex(18), subject=f"UDID-{i}"),
                Datum("topic", "com.apple.mgmt.External.bench"),
            ],
        )
        for i in range(exchanges)
    ]
    start = time.perf_counter()
    for call in calls:
        gateway.record(call, 200, "apns-id")
    recorded = time.perf_counter() - start
    start = time.perf_counter()
    rows = 0
    while ledger.pending():
        rows += ledger.flush()
    flushed = time.perf_counter() - start
    engine.dispose()
    return {
        "record_us": recorded / exchanges * 1e6,
        "write_us": flushed / exchanges * 1e6,
        "rows_per_s": rows / flushed,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--exchanges", type=int, default=50_000)
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    for backend in backends:
        with fresh_database(backend) as url:
            figures = measure(url, args.exchanges)
        total = figures["record_us"] + figures["write_us"]
        print(
            f"{backend:8s} {args.exchanges} exchanges ({figures['rows']:.0f} rows): "
            f"record {figures['record_us']:.1f} us/exchange (caller), "
            f"write {figures['write_us']:.1f} us/exchange (background), total {total:.1f} us/exchange; "
            f"writer {figures['rows_per_s']:,.0f} rows/s; "
            f"ceiling {1e6 / total:,.0f} exchanges/s on one core"
        )


if __name__ == "__main__":
    main()
