"""Memory of a `russet serve --workers N`: resident memory (VmRSS) of the parent and of each
worker (and the part of it no other process shares), on a fleet of enrolled devices, before and
after serving device requests and the API.

Issue #18's target is under 100 MB per worker with 100,000 enrolled devices. The fleet is
inserted straight into the database (bench/console.py's seed); a few real devices enroll over
HTTP and drain commands (signed requests, as bench/roundtrips.py sends them), and the admin API
walks every device several times (the list by keyset pages, and one device page per 50 devices).
RSS is read after start, after the device traffic, and after each API walk: a worker whose
caches grow with the fleet shows it from one walk to the next.

    python bench/memory.py [--backend sqlite|postgres|both] [--devices N] [--workers N] [--walks N]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from _measure import load_average, process_tree  # noqa: I001  # the bench directory's own module
from console import device_id, seed
from roundtrips import (
    TOPIC,
    Phase,
    database,
    drain,
    enroll,
    for_each_device,
    free_port,
    make_devices,
    new_client,
    pool,
    presign_checkins,
    presign_reports,
    queue_commands,
    running_server,
)

from russet.config import Settings
from russet.runtime import Russet


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` in MiB (VmRSS), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def private_mib(pid: int) -> float:
    """Memory only `pid` holds, in MiB (Private_Clean + Private_Dirty of /proc/PID/smaps_rollup):
    what one more worker costs. The rest of its RSS is pages shared with the other workers (the
    shared libraries' code: SQLAlchemy's, pydantic's and cryptography's compiled modules...)."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return 0.0
    return sum(int(line.split()[1]) for line in lines if line.startswith("Private_")) / 1024


def _is_tracker(pid: int) -> bool:
    """multiprocessing's resource tracker, which spawning uvicorn's workers starts beside them."""
    try:
        return b"resource_tracker" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def snapshot(label: str, parent: int) -> None:
    """One line: the parent's RSS, each worker's (with its private part), and multiprocessing's
    resource tracker's."""
    children = sorted(p for p in process_tree(parent) if p != parent)
    workers = ", ".join(
        f"{rss_mib(p):.0f} ({private_mib(p):.0f} private)" for p in children if not _is_tracker(p)
    )
    tracker = sum(rss_mib(p) for p in children if _is_tracker(p))
    print(f"  {label:<30} parent {rss_mib(parent):4.0f} MB; workers {workers} MB; tracker {tracker:.0f} MB")


async def api_walk(base_url: str, api_key: str, devices: int) -> int:
    """Every device by keyset pages of 1,000, and the page of one device in 50; requests made."""
    headers = {"Authorization": f"Bearer {api_key}"}
    requests = 0
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, timeout=120.0, trust_env=False
    ) as client:
        after: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": 1000, **({"after": after} if after else {})}
            page = (await client.get("/api/v1/devices", params=params)).raise_for_status().json()
            requests += 1
            after = page.get("next")
            if not after:
                break
        for i in range(0, devices, 50):
            (await client.get(f"/api/v1/devices/{device_id(i)}")).raise_for_status()
            requests += 1
    return requests


async def device_traffic(base_url: str, api_key: str, env: dict[str, str], count: int) -> int:
    """`count` real devices enroll, get two commands each and drain them; requests made."""
    with pool() as workers:
        devices = make_devices(workers, env, count)
        presign_checkins(workers, devices)
    phase = Phase()
    clients = [new_client(base_url) for _ in range(4)]
    try:
        await for_each_device(clients, devices, enroll, phase)
        async with new_client(base_url) as client:
            await queue_commands(client, api_key, devices, 2)
        with pool() as workers:
            presign_reports(workers, devices)
        await for_each_device(clients, devices, drain, phase)
    finally:
        for c in clients:
            await c.aclose()
    if phase.failures:
        raise RuntimeError(f"{len(phase.failures)} device failures: {phase.failures[0]}")
    return phase.requests


def run(backend: str, postgres_url: str, fleet: int, real: int, workers: int, walks: int) -> None:
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix=f"russet-memory-{backend}-") as tmp,
        database(backend, Path(tmp), postgres_url) as db,
    ):
        env = {
            "RUSSET_DATA_DIR": str(Path(tmp) / "data"),
            "RUSSET_DATABASE_URL": db.url,
            "RUSSET_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "RUSSET_PUSH_TOPIC": TOPIC,
        }
        russet = Russet.open(Settings.from_env(env))
        try:
            seeded = seed(russet, fleet)
            api_key = russet.storage.api_keys.create("bench")
        finally:
            russet.close()
        print(f"\n{backend}: {fleet:,} enrolled devices seeded in {seeded:.1f} s; {workers} worker(s)")
        base_url = f"http://127.0.0.1:{port}"
        with running_server(env, port, workers, "warning", Path(tmp) / "server.log") as pid:
            time.sleep(1.0)  # every worker up (health answered by one of them)
            snapshot("started", pid)
            sent = asyncio.run(device_traffic(base_url, api_key, env, real))
            snapshot(f"after {sent} device requests", pid)
            for walk in range(1, walks + 1):
                sent = asyncio.run(api_walk(base_url, api_key, fleet))
                snapshot(f"after API walk {walk} ({sent} req)", pid)
    print(f"  load average {load_average()}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", type=int, default=100_000, help="enrolled devices seeded")
    parser.add_argument(
        "--real-devices", type=int, default=50, help="devices that enroll and drain over HTTP"
    )
    parser.add_argument("--workers", type=int, default=2, help="russet serve --workers")
    parser.add_argument("--walks", type=int, default=3, help="times the API walks every device")
    parser.add_argument(
        "--postgres-url", default="postgresql://postgres@127.0.0.1:5432/test", help="PostgreSQL server"
    )
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        run(backend, args.postgres_url, args.devices, args.real_devices, args.workers, args.walks)


if __name__ == "__main__":
    main()
