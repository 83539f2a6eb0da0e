"""What a reconcile pass costs: a scope change over a fleet, and an idle pass with nothing to do.

For each backend, on a fresh database:

1. **Scope change.** A blueprint of K profiles is in sync on the first half of N devices (records
   and ProfileList reports say so; set up untimed). Its scope then moves to the second half: every
   one of the N devices has K items to plan, the first half's to remove, the second half's to
   install, at most `--in-flight` commands per device. Timed: the whole pass (plan, queue, record).
2. **Idle pass.** All N devices in sync with the K profiles, verified by ProfileList: a pass
   must queue nothing. Timed twice: the first pass reads every record (no device is marked
   settled yet, as after an upgrade or a blueprint change touching everyone); the second is the
   idle pass proper, which skips settled devices without reading their records.

The groups, the profile library and the MDM core's queue are the in-memory ports of
`simulators/blueprint_ports.py` (their own services are on other branches): the figures are the
reconciler's own work and its database, not the signing of profiles or the queue's inserts.

`--apps A` adds A catalogue apps (in-memory, no licences needed) to the blueprint, in sync and
verified by ManagedApplicationList like the profiles by ProfileList.

    python bench/reconcile.py [--backend sqlite|postgres|both] [--devices N] [--items K] [--apps A]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from _measure import fresh_database  # noqa: E402
from sqlalchemy import text  # noqa: E402

from russet.blueprints.ports import DeviceReport  # noqa: E402
from russet.blueprints.service import AppRef, BlueprintService, BlueprintSpec, ProfileRef  # noqa: E402
from russet.storage.db import make_engine, migrate  # noqa: E402
from simulators.blueprint_ports import (  # noqa: E402
    MemoryApps,
    MemoryGroups,
    MemoryLibrary,
    MemoryReports,
    MemorySender,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
SETUP_BATCH = 2000


def _app_rows(apps: MemoryApps, devices: list[str]) -> list[dict[str, Any]]:
    rows = []
    for app in apps.apps.values():
        target = hashlib.sha256(f"{app.content_hash}|".encode()).hexdigest()  # as BlueprintService._desired
        rows += [
            {
                "device_id": d,
                "kind": "app",
                "ident": app.bundle_id,
                "blueprint_id": 1,
                "state": "in_sync",
                "action": "install_application",
                "installed": True,
                "ref": app.ref,
                "content_hash": target,
                "queued_at": T0,
                "acked_at": T0,
            }
            for d in devices
        ]
    return rows


def _in_sync(
    service: BlueprintService, library: MemoryLibrary, refs: list[str], devices: list[str], apps: MemoryApps
) -> None:
    """Records saying the blueprint's profiles (and apps) were installed on `devices` and
    acknowledged (untimed)."""
    versions = [library.latest(r) for r in refs]
    for start in range(0, len(devices), SETUP_BATCH):
        rows = _app_rows(apps, devices[start : start + SETUP_BATCH])
        rows += [
            {
                "device_id": d,
                "kind": "profile",
                "ident": pv.payload_identifier,
                "blueprint_id": 1,
                "state": "in_sync",
                "action": "install_profile",
                "installed": True,
                "ref": pv.ref,
                "version": pv.version,
                "payload_uuid": pv.payload_uuid,
                "content_hash": pv.content_hash,
                "queued_at": T0,
                "acked_at": T0,
            }
            for d in devices[start : start + SETUP_BATCH]
            for pv in versions
        ]
        service.items.write(upserts=rows, forget=[], adopt=[], rechecks={}, reconciled=[], now=T0)


def _reports(
    reports: MemoryReports, library: MemoryLibrary, refs: list[str], devices: list[str], apps: MemoryApps
) -> None:
    profiles = {library.latest(r).payload_identifier: library.latest(r).payload_uuid for r in refs}
    listed = {a.bundle_id: "Managed" for a in apps.apps.values()}
    shared = DeviceReport(  # one object for all
        profiles=profiles,
        profiles_at=T0 + timedelta(minutes=5),
        apps=listed,
        apps_at=T0 + timedelta(minutes=5) if listed else None,
    )
    for d in devices:
        reports.reports[d] = shared


def _world(url: str, n: int, k: int, in_flight: int, a: int = 0) -> tuple[BlueprintService, dict[str, Any]]:
    engine = make_engine(url)
    migrate(engine)
    devices = [f"DEVICE-{i:08d}" for i in range(n)]
    half = n // 2
    groups = MemoryGroups({1: devices, 2: devices[:half], 3: devices[half:]})
    library = MemoryLibrary()
    refs = [f"profile-{j}" for j in range(k)]
    for r in refs:
        library.add(r)
    sender = MemorySender(keep=False)
    reports = MemoryReports()
    apps = MemoryApps()
    for j in range(a):
        apps.add(f"app-{j}")
    service = BlueprintService(
        engine,
        groups,
        library,
        sender,
        reports,
        max_in_flight=in_flight,
        clock=lambda: T0 + timedelta(hours=1),
        apps=apps,
    )
    parts = {
        "devices": devices,
        "half": half,
        "refs": refs,
        "library": library,
        "apps": apps,
        "app_refs": tuple(AppRef(r) for r in apps.apps),
        "sender": sender,
        "reports": reports,
        "engine": engine,
    }
    return service, parts


def _analyze(engine: Any) -> None:
    """On PostgreSQL, what autovacuum does within a minute of a bulk load: without statistics the
    planner takes the fresh million-row table for a small one and reads each batch's records with
    a full scan instead of the primary key (measured: the first pass twice as long)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE blueprint_device_items"))
            conn.execute(text("ANALYZE blueprint_devices"))


def measure(backend: str, n: int, k: int, in_flight: int, a: int = 0) -> dict[str, float]:
    out: dict[str, float] = {}
    with fresh_database(backend) as url:
        service, w = _world(url, n, k, in_flight, a)
        profiles = tuple(ProfileRef(r) for r in w["refs"])
        spec = BlueprintSpec("Fleet", profiles=profiles, apps=w["app_refs"], include=(2,))
        service.create(spec, created_by="bench")
        first_half = w["devices"][: w["half"]]
        setup = time.perf_counter()
        _in_sync(service, w["library"], w["refs"], first_half, w["apps"])
        _reports(w["reports"], w["library"], w["refs"], first_half, w["apps"])
        _analyze(w["engine"])
        out["setup_s"] = time.perf_counter() - setup
        service.update(
            "Fleet", BlueprintSpec("Fleet", profiles=spec.profiles, apps=spec.apps, include=(3,))
        )  # the scope change
        start, cpu = time.perf_counter(), time.process_time()
        result = service.reconcile()
        out["change_s"] = time.perf_counter() - start
        out["change_cpu_s"] = time.process_time() - cpu
        out["change_devices"] = result["devices"]
        out["change_queued"] = result["commands_total"]
        out["change_removes"] = result["commands"].get("remove_profile", 0)
        out["change_installs"] = result["commands"].get("install_profile", 0)
        out["change_app_removes"] = result["commands"].get("remove_application", 0)
        out["change_app_installs"] = result["commands"].get("install_application", 0)
        out["change_deferred"] = result["deferred"]
        w["engine"].dispose()
    with fresh_database(backend) as url:
        service, w = _world(url, n, k, in_flight, a)
        profiles = tuple(ProfileRef(r) for r in w["refs"])
        spec = BlueprintSpec("Fleet", profiles=profiles, apps=w["app_refs"], include=(1,))
        service.create(spec, created_by="bench")
        _in_sync(service, w["library"], w["refs"], w["devices"], w["apps"])
        _reports(w["reports"], w["library"], w["refs"], w["devices"], w["apps"])
        _analyze(w["engine"])
        start, cpu = time.perf_counter(), time.process_time()
        result = service.reconcile()  # reads every record: no device is marked settled yet
        out["full_s"] = time.perf_counter() - start
        out["full_cpu_s"] = time.process_time() - cpu
        out["full_queued"] = result["commands_total"]
        start, cpu = time.perf_counter(), time.process_time()
        result = service.reconcile()
        out["idle_s"] = time.perf_counter() - start
        out["idle_cpu_s"] = time.process_time() - cpu
        out["idle_queued"] = result["commands_total"]
        out["idle_items"] = sum(result["states"].values())
        out["idle_skipped"] = result["devices_settled_skipped"]
        w["engine"].dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=10, help="profiles in the blueprint")
    parser.add_argument("--in-flight", type=int, default=5, help="commands in flight per device")
    parser.add_argument("--apps", type=int, default=0, help="catalogue apps in the blueprint, too")
    args = parser.parse_args()
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    failed = False
    for backend in backends:
        r = measure(backend, args.devices, args.items, args.in_flight, args.apps)
        apps = f" + {args.apps} apps" if args.apps else ""
        print(
            f"{backend}: {args.devices} devices x {args.items} profiles{apps}, "
            f"at most {args.in_flight} in flight"
        )
        print(
            f"  scope change: {r['change_s']:.1f} s ({r['change_cpu_s']:.1f} s CPU) "
            f"for {r['change_devices']:.0f} devices: {r['change_queued']:.0f} commands queued "
            f"({r['change_removes']:.0f} RemoveProfile, {r['change_installs']:.0f} InstallProfile"
            + (
                f", {r['change_app_removes']:.0f} RemoveApplication, "
                f"{r['change_app_installs']:.0f} InstallApplication"
                if args.apps
                else ""
            )
            + "), "
            f"{r['change_deferred']:.0f} left for later passes [setup {r['setup_s']:.1f} s, untimed]"
        )
        print(
            f"  first pass over the fleet in sync: {r['full_s']:.1f} s ({r['full_cpu_s']:.1f} s CPU), "
            f"every record read: {r['full_queued']:.0f} commands queued"
        )
        print(
            f"  idle pass:    {r['idle_s']:.1f} s ({r['idle_cpu_s']:.1f} s CPU) "
            f"over {r['idle_items']:.0f} items in sync ({r['idle_skipped']:.0f} settled devices skipped): "
            f"{r['idle_queued']:.0f} commands queued"
        )
        expected = args.devices * min(args.items + args.apps, args.in_flight)
        if r["change_queued"] != expected or r["idle_queued"] != 0 or r["full_queued"] != 0:
            print(f"!!! expected {expected} commands after the change and none when idle", file=sys.stderr)
            failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
