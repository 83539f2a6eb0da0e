"""Full device fetch from the DEP simulator into the database: devices per second, and the ledger's share.

The simulator runs in its own process (as Apple would be elsewhere) holding N devices; Russet
creates a connection, loads a token the simulator issued, and runs one full sync: pages of 1000
over HTTPS through the gateway, each checked, upserted and recorded field by field in the
ledger (about 12 rows per device). Printed per backend:

* sync: wall time until every device is in the database, and devices/s;
* ledger: rows written, the time to record them (fingerprints and rows, inside the sync), the
  time spent writing them to the database (page by page during the sync, overlapping the next
  page), and the time still needed after the sync to make them durable;
* the same sync with the ledger switched off (rows discarded), for the difference.

    python bench/abm_sync.py [--devices 100000] [--backend sqlite|postgres|both]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cryptography import x509
from sqlalchemy import create_engine, text

from russet.abm import admin
from russet.apple.gateway import AppleGateway
from russet.apple.ledger import Ledger
from russet.config import Settings
from russet.runtime import Russet

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the simulator lives next to the package, not inside it
    sys.path.insert(0, str(ROOT))

from simulators.dep import Credentials, make_server_token  # noqa: E402

PG_URL = os.environ.get("RUSSET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Timer:
    """Wraps a method and adds up the time spent in it (from any thread)."""

    def __init__(self, owner: Any, name: str) -> None:
        self.seconds = 0.0
        self.calls = 0
        self._owner, self._name = owner, name
        self._real = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return self._real(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        setattr(owner, name, timed)

    def restore(self) -> None:
        setattr(self._owner, self._name, self._real)


def start_simulator(
    workdir: Path, devices: int, credentials: Credentials
) -> tuple[subprocess.Popen[str], str]:
    creds = workdir / "credentials.json"
    creds.write_text(json.dumps(asdict(credentials)))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.dep",
            "--devices",
            str(devices),
            "--tls-dir",
            str(workdir / "tls"),
            "--credentials",
            str(creds),
        ],  # fmt: skip
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("https://"):
        proc.kill()
        raise SystemExit(f"the simulator did not start: {url!r}")
    return proc, url


def one_run(
    database_url: str, workdir: Path, url: str, credentials: Credentials, *, ledger: bool
) -> dict[str, float]:
    settings = Settings.from_env(
        {
            "RUSSET_DATA_DIR": str(workdir / "data"),
            "RUSSET_DATABASE_URL": database_url,
            "RUSSET_PUBLIC_URL": "https://mdm.example.test",
            "RUSSET_ABM_URL": url,
            "RUSSET_APPLE_CA_FILE": str(workdir / "tls" / "ca.pem"),
        }
    )
    russet = Russet.open(settings)
    name = "bench-" + secrets.token_hex(3)
    cert = x509.load_pem_x509_certificate(admin.create(russet, name)["certificate_pem"].encode())
    admin.run(
        russet, admin.load_token(russet, name, make_server_token(cert, credentials), fetch_account=True)
    )
    russet.ledger.flush()
    received = Timer(AppleGateway, "received")
    writes = Timer(Ledger, "_write")
    keep = Ledger.add
    if not ledger:
        Ledger.add = lambda self, rows: None  # type: ignore[method-assign]  # rows dropped: no ledger
    start = time.perf_counter()
    report = admin.run(russet, admin.sync_now(russet, name, full=True))
    synced = time.perf_counter() - start
    pending = russet.ledger.pending()
    start = time.perf_counter()
    russet.ledger.flush()
    drained = time.perf_counter() - start
    received.restore()
    writes.restore()
    Ledger.add = keep  # type: ignore[method-assign]
    with russet.storage.engine.connect() as conn:
        query = text("SELECT count(*) FROM ledger WHERE connection = :n")
        rows = conn.execute(query, {"n": name}).scalar_one()
    russet.close()
    return {
        "rows": rows,
        "devices": report["devices"],
        "synced": synced,
        "received": received.seconds,
        "writer": writes.seconds,
        "drain": drained,
        "pending": pending,
    }


def measure(database_url: str, devices: int) -> None:
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, url = start_simulator(workdir, devices, credentials)
        try:
            with_ledger = one_run(database_url, workdir, url, credentials, ledger=True)
            without = one_run(database_url, workdir, url, credentials, ledger=False)
        finally:
            proc.kill()
            proc.wait()
    n = with_ledger["devices"]
    total = with_ledger["synced"] + with_ledger["drain"]
    rows = with_ledger["rows"]
    synced = with_ledger["synced"]
    print(f"  devices in the database: {n:,} in {synced:.1f} s = {n / synced:,.0f} devices/s")
    print(
        f"  ledger ({rows:,} rows): recording in the sync {with_ledger['received']:.1f} s, "
        f"writing them {with_ledger['writer']:.1f} s, left to write after the sync "
        f"{with_ledger['pending']:,.0f} rows ({with_ledger['drain']:.1f} s); "
        f"everything durable after {total:.1f} s"
    )
    print(
        f"  without the ledger: {without['synced']:.1f} s = {n / without['synced']:,.0f} devices/s; "
        f"the ledger's share of the sync: {(synced - without['synced']) / synced:.0%}"
        f" (of the time until durable: {(total - without['synced']) / total:.0%})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        print(f"{backend}: full fetch of {args.devices:,} devices from the simulator ({os.cpu_count()} CPUs)")
        if backend == "sqlite":
            with tempfile.TemporaryDirectory() as tmp:
                measure(f"sqlite:///{Path(tmp) / 'bench.db'}", args.devices)
            continue
        schema = "bench_" + secrets.token_hex(4)
        admin_engine = create_engine(PG_URL)
        with admin_engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        try:
            measure(f"{PG_URL}?options=-csearch_path%3D{schema}", args.devices)
        finally:
            with admin_engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            admin_engine.dispose()


if __name__ == "__main__":
    main()
