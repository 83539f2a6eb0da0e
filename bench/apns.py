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
from sqlalchemy import create_engine, insert, select, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from russet.apns.admin import import_certificate  # noqa: E402
from russet.apns.certificate import create_push_csr  # noqa: E402
from russet.apns.pusher import PushPolicy  # noqa: E402
from russet.apns.state import request_pushes  # noqa: E402
from russet.config import Settings  # noqa: E402
from russet.runtime import Russet  # noqa: E402
from russet.storage.db import utcnow  # noqa: E402
from russet.storage.schema import apns_push, enrollments  # noqa: E402
from simulators.apns import FakeAppleCA  # noqa: E402

TOPIC = "com.apple.mgmt.External.00000000-bench-4000-8000-000000000000"
PG_URL = os.environ.get("RUSSET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


class Timer:
    """Wall time spent inside a wrapped callable, summed over calls (and threads)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed


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
    rows = [
        {
            "id": eid,
            "device_id": eid,
            "channel": "device",
            "enrollment_type": "device",
            "enabled": True,
            "identity_fp": secrets.token_hex(32),
            "topic": TOPIC,
            "push_token": secrets.token_hex(32),
            "push_magic": str(uuid.uuid4()).upper(),
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
            import_certificate(russet, cert.public_bytes(serialization.Encoding.PEM))

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
            russet.gateway.record_many = record.wrap(russet.gateway.record_many)  # type: ignore[method-assign]
            russet.ledger._write = write_ledger.wrap(russet.ledger._write)  # type: ignore[method-assign]
            state = russet.pusher.state
            state.claim = claim.wrap(state.claim)  # type: ignore[method-assign]
            state.write = outcomes.wrap(state.write)  # type: ignore[method-assign]
            if not ledger:  # for comparison only: Russet itself always records
                russet.gateway.record_many = lambda entries: None  # type: ignore[method-assign]

            try:
                import uvloop

                runner: Callable[[Any], Any] = uvloop.run
            except ImportError:  # pragma: no cover
                runner = asyncio.run
            cpu0, wall0 = time.process_time(), time.perf_counter()
            pushed = runner(drain(russet))
            drained = time.perf_counter() - wall0
            flush0 = time.perf_counter()
            russet.ledger.flush()  # everything recorded is durable
            final_flush = time.perf_counter() - flush0
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0

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
    ledger_s = record.seconds + write_ledger.seconds
    print(f"pushed: {pushed} (simulator saw {stats.get('requests')}, {stats.get('by_status')})")
    print(f"outcomes: {outcomes_by}; ledger rows: {ledger_rows}")
    print(
        f"pushes/s: {pushed / wall:,.0f} including the final ledger flush "
        f"({pushed / drained:,.0f} until drained)"
    )
    print(f"wall {wall:.2f} s, pusher process CPU {cpu:.2f} s = {cpu * per:.0f} µs per push")
    print(f"ledger {'ON' if ledger else 'OFF (comparison run)'}")
    print("time per push inside each stage (wall, summed over threads; stages overlap):")
    print(
        f"  claim requests (UPDATE … RETURNING + tokens)  {claim.seconds * per:6.1f} µs "
        f"({claim.calls} batches)"
    )
    print(f"  write outcomes                                {outcomes.seconds * per:6.1f} µs")
    print(f"  ledger: record (push path)                    {record.seconds * per:6.1f} µs")
    print(f"  ledger: write rows (background + final flush) {write_ledger.seconds * per:6.1f} µs")
    print(f"  ledger total                                  {ledger_s * per:6.1f} µs")
    print(f"final flush after draining: {final_flush:.2f} s")
    return {"rate": pushed / wall, "cpu_us": cpu * per}


def _share(results: list[dict[str, float]]) -> None:
    print(
        f"\n== {results[0]['rate']:,.0f} pushes/s with the ledger, {results[0]['cpu_us']:.0f} µs CPU per push"
    )
    if len(results) == 2:
        on, off = results
        print(f"== {off['rate']:,.0f} pushes/s without recording, {off['cpu_us']:.0f} µs CPU per push")
        print(
            f"== ledger's share of the cost: {1 - off['cpu_us'] / on['cpu_us']:.0%} of the pusher's CPU, "
            f"{1 - on['rate'] / off['rate']:.0%} of the throughput"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--batch", type=int, default=5000, help="requests claimed at once")
    parser.add_argument("--connections", type=int, default=2, help="HTTP/2 connections to the simulator")
    parser.add_argument(
        "--no-compare", action="store_true", help="skip the second run without ledger recording"
    )
    args = parser.parse_args()
    policy = PushPolicy(batch=args.batch, connections=args.connections)
    print(f"APNs push benchmark: {args.devices} devices, backend {args.backend}, batch {args.batch}")
    if args.backend == "sqlite":
        results = []
        for ledger in (True,) if args.no_compare else (True, False):
            with tempfile.TemporaryDirectory() as tmp:
                results.append(
                    run(f"sqlite:///{Path(tmp) / 'bench.db'}", args.devices, policy, ledger=ledger)
                )
        _share(results)
        return
    schema = "bench_" + secrets.token_hex(4)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        results = [run(f"{PG_URL}?options=-csearch_path%3D{schema}", args.devices, policy)]
        if not args.no_compare:
            with admin.begin() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {schema}"))
            url = f"{PG_URL}?options=-csearch_path%3D{schema}"
            results.append(run(url, args.devices, policy, ledger=False))
        _share(results)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
