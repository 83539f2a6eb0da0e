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

from cryptography import x509
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this tree's package and simulators, whatever is installed

from russet.apple.gateway import AppleGateway  # noqa: E402
from russet.apple.ledger import Ledger  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from simulators.dep import Credentials, make_server_token  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Timer, fresh_database, load_average, machine_busy_cpu, postgres_cpu, process_cpu, spread  # noqa: E402


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
    database_url: str, workdir: Path, url: str, credentials: Credentials, sim_pid: int, *, ledger: bool
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
    cert = x509.load_pem_x509_certificate(russet.abm.create(name)["certificate_pem"].encode())
    russet.run(russet.abm.load_token(name, make_server_token(cert, credentials), fetch_account=True))
    russet.ledger.flush()
    received, writes = Timer(), Timer()
    restore = [received.patch(AppleGateway, "received"), writes.patch(Ledger, "_write")]
    if not ledger:  # rows dropped: for comparison only, Russet itself always records
        for method in ("add", "add_group"):
            if hasattr(Ledger, method):  # (the code before add_group has only add)
                restore.append(Timer().patch(Ledger, method))
                setattr(Ledger, method, lambda *args: None)
    busy0, sim0, cpu0, db0 = machine_busy_cpu(), process_cpu(sim_pid), time.process_time(), postgres_cpu()
    start = time.perf_counter()
    report = russet.run(russet.abm.sync_now(name, full=True))
    synced = time.perf_counter() - start
    pending = russet.ledger.pending()
    start = time.perf_counter()
    russet.ledger.flush()
    drained = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    sim_cpu = process_cpu(sim_pid) - sim0
    db_cpu = postgres_cpu() - db0 if "postgresql" in database_url else 0.0
    other = max(0.0, machine_busy_cpu() - busy0 - cpu - sim_cpu - db_cpu)
    for undo in restore:
        undo()
    with russet.storage.engine.connect() as conn:
        query = text("SELECT count(*) FROM ledger WHERE connection = :n")
        rows = conn.execute(query, {"n": name}).scalar_one()
    russet.close()
    return {
        "rows": rows,
        "devices": report["devices"],
        "synced": synced,
        "received": received.cpu,
        "writer": writes.cpu,
        "writer_wall": writes.seconds,
        "drain": drained,
        "pending": pending,
        "cpu": cpu,
        "sim_cpu": sim_cpu,
        "db_cpu": db_cpu,
        "other": other / (synced + drained),
    }


def measure(
    database_url: str, devices: int, compare: bool
) -> tuple[dict[str, float], dict[str, float] | None]:
    credentials = Credentials.new()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        proc, url = start_simulator(workdir, devices, credentials)
        try:
            with_ledger = one_run(database_url, workdir, url, credentials, proc.pid, ledger=True)
            without = (
                one_run(database_url, workdir, url, credentials, proc.pid, ledger=False) if compare else None
            )
        finally:
            proc.kill()
            proc.wait()
    n = with_ledger["devices"]
    total = with_ledger["synced"] + with_ledger["drain"]
    rows = with_ledger["rows"]
    synced = with_ledger["synced"]
    per = 1e6 / n if n else 0.0
    print(f"  devices in the database: {n:,} in {synced:.1f} s = {n / synced:,.0f} devices/s")
    print(
        f"  CPU: Russet {with_ledger['cpu']:.1f} s = {with_ledger['cpu'] * per:.0f} µs per device, "
        f"simulator {with_ledger['sim_cpu']:.1f} s"
        + (f", PostgreSQL {with_ledger['db_cpu'] * per:.0f} µs per device" if with_ledger["db_cpu"] else "")
        + "; rest of the machine busy "
        + f"{with_ledger['other']:.0%} of one core (load {load_average()})"
    )
    w = with_ledger
    print(
        f"  ledger ({rows:,} rows): recording in the sync {w['received'] * per:.0f} µs CPU per device, "
        f"writing them {w['writer'] * per:.0f} µs CPU per device ({w['writer_wall']:.1f} s wall), "
        f"left to write after the sync {w['pending']:,.0f} rows ({w['drain']:.1f} s); "
        f"everything durable after {total:.1f} s"
    )
    if without is not None:
        print(
            f"  without the ledger: {without['synced']:.1f} s = {n / without['synced']:,.0f} devices/s, "
            f"{without['cpu'] * per:.0f} µs CPU per device; the ledger's share of the sync: "
            f"{(synced - without['synced']) / synced:.0%} (of the time until durable: "
            f"{(total - without['synced']) / total:.0%})"
        )
    return with_ledger, without


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=1, help="runs per backend (min/median are printed)")
    parser.add_argument("--no-compare", action="store_true", help="skip the runs without the ledger")
    args = parser.parse_args()
    for backend in ["sqlite", "postgres"] if args.backend == "both" else [args.backend]:
        print(
            f"{backend}: full fetch of {args.devices:,} devices from the simulator "
            f"({os.cpu_count()} CPUs, load {load_average()})"
        )
        runs: list[dict[str, float]] = []
        for _ in range(args.repeat):
            with fresh_database(backend) as url:
                runs.append(measure(url, args.devices, not args.no_compare)[0])
        if len(runs) > 1:
            per = 1e6 / runs[0]["devices"]
            print(
                f"== {backend}, {len(runs)} runs: sync seconds {spread([r['synced'] for r in runs])}; "
                f"until durable {spread([r['synced'] + r['drain'] for r in runs])}"
            )
            print(
                f"   Russet CPU µs per device {spread([r['cpu'] * per for r in runs])}; rest of the machine "
                f"busy {spread([100 * r['other'] for r in runs])} % of one core"
            )


if __name__ == "__main__":
    main()
