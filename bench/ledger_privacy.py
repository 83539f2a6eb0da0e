"""What the privacy officer's ledger views cost on a big ledger (issue #16).

Records N push exchanges (4 ledger rows each: Token, PushMagic, topic, apns-id) for D devices,
dates half of them 60 days back, then times: the Intune-shaped table (with its 30-day timeline),
one device's subject export, retention folding the old half into counts, the table again, and
erasing one device.

    python bench/ledger_privacy.py [--backend sqlite|postgres|both] [--exchanges N] [--devices D]
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta

from _measure import fresh_database
from sqlalchemy import update

from russet.apple.connections import ConnectionRegistry
from russet.apple.gateway import AppleGateway, Call, Datum
from russet.apple.ledger import Fingerprinter, Ledger
from russet.apple.privacy import LedgerPrivacy
from russet.apple.tables import ledger as ledger_table
from russet.storage.db import make_engine, migrate, utcnow


def timed(what: str, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    print(f"  {what}: {time.perf_counter() - start:.3f} s")
    return out


def measure(url: str, exchanges: int, devices: int) -> None:
    engine = make_engine(url)
    migrate(engine)
    ledger = Ledger(engine, Fingerprinter(os.urandom(32)))
    gateway = AppleGateway(ledger, ConnectionRegistry(engine, []))
    for i in range(exchanges):
        udid = f"UDID-{i % devices}"
        call = Call(
            "apns",
            "default",
            "POST /3/device/{token}",
            "wake the device",
            [
                Datum("Token", f"{i % devices:064x}", subject=udid),
                Datum("PushMagic", f"magic-{i % devices}", subject=udid),
                Datum("topic", "com.apple.mgmt.External.bench"),
            ],
        )
        gateway.record(call, 200, "apns-id", [Datum("apns-id", "apns-id", subject=udid)])
    while ledger.pending():
        ledger.flush()
    with engine.begin() as conn:
        conn.execute(
            update(ledger_table).where(ledger_table.c.id % 2 == 0).values(at=utcnow() - timedelta(days=60))
        )
    privacy = LedgerPrivacy(engine, ledger, [])
    print(f"  {exchanges * 4} ledger rows, {devices} devices")
    timed("table (json, 30-day timeline)", privacy.table)
    export = timed("subject export of one device", privacy.subject, "UDID-7")
    print(f"    {len(export['exchanges'])} exchanges")
    privacy.set_retention("apns", 30)
    folded = timed("retention: fold the old half into counts", privacy.apply_retention)
    print(f"    {folded['apns']} rows folded")
    timed("table again (detail + counts)", privacy.table)
    erased = timed("erase one device", privacy.erase, "UDID-8")
    print(f"    {erased['rows_folded_into_counts']} rows folded")
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--exchanges", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=5_000)
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        print(backend)
        with fresh_database(backend) as url:
            measure(url, args.exchanges, args.devices)


if __name__ == "__main__":
    main()
