"""Pushes per second through the real pusher, gateway and ledger, to a local APNs simulator.

N enrollments with push tokens go into a fresh database; one transaction asks for a push to each
(as an enqueue for all of them would); then the pusher drains the requests: claim (UPDATE …
RETURNING), HTTP/2 over TLS with the push certificate to `python -m simulators.apns` running as a
separate process (record off), ledger rows for every push (Token, PushMagic, topic, apns-id),
outcomes written back. Printed: pushes per second, CPU per push, and where the time went, with
the ledger's share (recording on the push path plus the background writer's database time).

    python bench/apns.py [--devices 100000] [--backend sqlite|postgres] [--batch 5000] [--connections 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from russet.apns.certificate import create_push_csr  # noqa: E402
from russet.apns.pusher import PushPolicy  # noqa: E402
from russet.apns.state import request_pushes  # noqa: E402
from russet.apns.tables import apns_push  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.mdm.tables import enrollments  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from russet.storage.db import utcnow  # noqa: E402
from simulators.apns import FakeAppleCA  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _measure import Timer, fresh_database, load_average, machine_busy_cpu, postgres_cpu, process_cpu, spread  # noqa: E402

TOPIC = "com.apple.mgmt.External.00000000-bench-4000-8000-000000000000"


def start_simulator(tmp: Path, apple: FakeAppleCA) -> tuple[subprocess.Popen[str], str, Path]:
    ca = tmp / "apple-ca.pem"
    ca.write_bytes(apple.pem)
    server_ca = tmp / "server-ca.pem"
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.apns", "--ca", str(ca), "--server-ca-out", str(server_ca)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("https://"):
        proc.kill()
        raise SystemExit(f"the simulator did not start: {url!r}")
    return proc, url, server_ca


def stop_simulator(proc: subprocess.Popen[str]) -> dict[str, Any]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=30)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def add_devices(russet: Russet, count: int) -> list[str]:
    now = utcnow()
    ids = [f"BENCH-{i:08d}-{uuid.uuid4().hex[:8].upper()}" for i in range(count)]
    seal = russet.storage.enrollments.seal_push  # stored as TokenUpdate stores them: sealed
    rows = [
        {
            "id": eid,
            "device_id": eid,
            "channel": "device",
            "enrollment_type": "device",
            "enabled": True,
            "identity_fp": secrets.token_hex(32),
            "topic": TOPIC,
            "sealed_push": seal(eid, secrets.token_bytes(32), str(uuid.uuid4()).upper()),
            "awaiting_configuration": False,
            "token_updated_at": now,
            "created_at": now,
        }
        for eid in ids
    ]
    with russet.storage.engine.begin() as conn:
        for start in range(0, count, 10000):
            conn.execute(insert(enrollments), rows[start : start + 10000])
    return ids


async def drain(russet: Russet) -> int:
    try:
        return await russet.pusher.drain_all()
    finally:
        await russet.gateway.aclose()


def run(database_url: str, devices: int, policy: PushPolicy, *, ledger: bool = True) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="russet-apns-bench-") as tmpdir:
        tmp = Path(tmpdir)
        apple = FakeAppleCA()
        proc, url, server_ca = start_simulator(tmp, apple)
        try:
            settings = Settings.from_env(
                {
                    "RUSSET_DATA_DIR": str(tmp / "data"),
                    "RUSSET_DATABASE_URL": database_url,
                    "RUSSET_PUBLIC_URL": "https://mdm.example.test",
                }
            )
            settings = replace(settings, apple_ca_file=str(server_ca), apns_url=url)
            russet = Russet.open(settings)
            russet.pusher.policy = policy
            csr = create_push_csr(russet.storage, tmp / "push.csr")
            cert = apple.issue_push_certificate(csr.public_key(), TOPIC)
            russet.push.import_certificate(cert.public_bytes(serialization.Encoding.PEM))

            started = time.perf_counter()
            ids = add_devices(russet, devices)
            print(f"setup: {devices} enrolled devices with tokens in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            with russet.storage.engine.begin() as conn:
                request_pushes(conn, ids)
            requested = time.perf_counter() - started
            print(f"requests: {devices} push requests written in one transaction in {requested:.2f} s")

            # Where the time goes: wrap the stages (the wrappers cost well under 1 µs per push).
            record, write_ledger, claim, outcomes = Timer(), Timer(), Timer(), Timer()
            recording = "record_alike" if hasattr(russet.gateway, "record_alike") else "record_many"
            record.patch(russet.gateway, recording)  # (record_many: the code before record_alike)
            write_ledger.patch(russet.ledger, "_write")
            claim.patch(russet.pusher.state, "claim")
            outcomes.patch(russet.pusher.state, "write")
            if not ledger:  # for comparison only: Russet itself always records
                setattr(russet.gateway, recording, lambda *args: None)

            try:
                import uvloop

                runner: Callable[[Any], Any] = uvloop.run
            except ImportError:  # pragma: no cover
                runner = asyncio.run
            busy0, sim0, db0 = machine_busy_cpu(), process_cpu(proc.pid), postgres_cpu()
            cpu0, wall0 = time.process_time(), time.perf_counter()
            loop0 = time.thread_time()  # the event loop runs in this thread
            pushed = runner(drain(russet))
            loop_cpu = time.thread_time() - loop0
            drained = time.perf_counter() - wall0
            flush0 = time.perf_counter()
            russet.ledger.flush()  # everything recorded is durable
            final_flush = time.perf_counter() - flush0
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            sim_cpu = process_cpu(proc.pid) - sim0
            db_cpu = postgres_cpu() - db0 if "postgresql" in database_url else 0.0
            other = max(0.0, machine_busy_cpu() - busy0 - cpu - sim_cpu - db_cpu)

            with russet.storage.engine.connect() as conn:
                outcomes_by = dict(
                    conn.execute(
                        select(apns_push.c.outcome, text("count(*)")).group_by(apns_push.c.outcome)
                    ).all()
                )
                ledger_rows = conn.execute(
                    text("SELECT count(*) FROM ledger WHERE service = 'apns'")
                ).scalar()
            russet.close()
        finally:
            stats = stop_simulator(proc)

    per = 1e6 / pushed if pushed else 0.0
    ledger_cpu = record.cpu + write_ledger.cpu
    print(f"pushed: {pushed} (simulator saw {stats.get('requests')}, {stats.get('by_status')})")
    print(f"outcomes: {outcomes_by}; ledger rows: {ledger_rows}")
    print(
        f"pushes/s: {pushed / wall:,.0f} including the final ledger flush "
        f"({pushed / drained:,.0f} until drained)"
    )
    print(
        f"wall {wall:.2f} s; CPU: pusher process {cpu:.2f} s = {cpu * per:.0f} µs per push, "
        f"simulator {sim_cpu:.2f} s = {sim_cpu * per:.0f} µs per push; "
        + (f"PostgreSQL {db_cpu:.2f} s = {db_cpu * per:.0f} µs per push; " if db_cpu else "")
        + f"rest of the machine {other:.2f} s = {other / wall:.0%} of one core (load {load_average()})"
    )
    print(
        f"ledger {'ON' if ledger else 'OFF (comparison run)'}; "
        f"event loop thread {loop_cpu * per:.0f} µs per push"
    )
    print("per push inside each stage: CPU of the thread running it (wall, summed over threads)")
    for label, timer in (
        (f"claim requests (UPDATE … RETURNING + tokens, {claim.calls} batches)", claim),
        ("write outcomes", outcomes),
        ("ledger: record (push path)", record),
        ("ledger: write rows (background + final flush)", write_ledger),
    ):
        print(f"  {label:<62} {timer.cpu * per:6.1f} µs ({timer.seconds * per:6.1f} µs wall)")
    print(f"  {'ledger total':<62} {ledger_cpu * per:6.1f} µs")
    print(f"final flush after draining: {final_flush:.2f} s")
    return {
        "rate": pushed / wall,
        "cpu_us": cpu * per,
        "loop_us": loop_cpu * per,
        "sim_us": sim_cpu * per,
        "db_us": db_cpu * per,
        "other": other / wall,
    }


def _share(on: list[dict[str, float]], off: list[dict[str, float]]) -> None:
    def line(results: list[dict[str, float]], what: str) -> None:
        rates = [r["rate"] for r in results]
        cpus = [r["cpu_us"] for r in results]
        print(f"== {what}: pushes/s {spread(rates)}; pusher CPU µs per push {spread(cpus)}")
        print(f"   of which the event loop thread {spread([r['loop_us'] for r in results])} µs per push")
        print(
            f"   simulator CPU µs per push {spread([r['sim_us'] for r in results])}; "
            f"PostgreSQL {spread([r['db_us'] for r in results])}; rest of the machine "
            f"busy {spread([100 * r['other'] for r in results])} % of one core"
        )

    print()
    line(on, f"with the ledger ({len(on)} runs)")
    if off:
        line(off, f"without recording ({len(off)} runs)")
        best_on = statistics.median(r["cpu_us"] for r in on)
        best_off = statistics.median(r["cpu_us"] for r in off)
        print(f"== ledger's share of the pusher's CPU (medians): {1 - best_off / best_on:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=5000, help="requests claimed at once")
    parser.add_argument("--connections", type=int, default=2, help="HTTP/2 connections to the simulator")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind (min/median are printed)")
    parser.add_argument("--no-compare", action="store_true", help="skip the runs without ledger recording")
    args = parser.parse_args()
    policy = PushPolicy(batch=args.batch, connections=args.connections)
    print(
        f"APNs push benchmark: {args.devices} devices, backend {args.backend}, batch {args.batch}, "
        f"{os.cpu_count()} CPUs, load {load_average()}"
    )
    kinds = (True,) if args.no_compare else (True, False)
    results: dict[bool, list[dict[str, float]]] = {True: [], False: []}
    for _ in range(args.repeat):
        for ledger in kinds:
            print()
            with fresh_database(args.backend) as url:
                results[ledger].append(run(url, args.devices, policy, ledger=ledger))
    _share(results[True], results[False])


if __name__ == "__main__":
    main()
