"""How fast groups are with a large fleet: smart-group evaluation, reconcile, scopes, pages.

Seeds devices straight into the MDM core's tables (one bulk INSERT each for enrollments, their
DeviceInformation with IsSupervised, an ABM listing of a third of the serials, and for each an
identity bought with the SCEP challenge of a profile /mdm/enroll handed out: certificate,
challenge, enrollment request, a quarter ADE with sign-in), then times, through `russet.groups`:

* reading every device's facts (the `DeviceFacts` port) alone;
* one device's facts, and one device's view (`russet device show`), both of which look up how its
  identity was enrolled;
* creating a smart group (`os_version >= "17.4" and model ~ "iPad" and supervised = true`):
  facts read, query evaluated over every device, membership written;
* creating a second, nested one (`in_group(...) or abm_account = "School"`);
* changing the first one's query (re-evaluates it and the nested one, writing the difference);
* a reconcile pass over every smart group and every device with nothing to change;
* one device's facts changing (the `DeviceFactsChanged` path a check-in takes);
* a scope (include both, exclude a static group of 1,000) in full and as a 100-device page;
* a members page of a group deep into its membership, and a page of groups.

    python bench/groups.py [--backend sqlite|postgres|both] [--devices N]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from _measure import fresh_database
from sqlalchemy import insert, text

from russet.abm.tables import abm_devices
from russet.config import Settings
from russet.enrollment.tables import enrollment_requests
from russet.groups.service import Scope
from russet.kernel.events import DeviceFactsChanged
from russet.mdm.tables import enrollments, inventory
from russet.runtime import Russet
from russet.scep.tables import scep_challenges
from russet.storage.tables import certificates

T = TypeVar("T")
PRODUCTS = ("iPhone15,2", "iPad13,1", "Mac14,2", "iPad14,3", "AppleTV11,1")
VERSIONS = ("17.4", "17.10", "16.7.2", "17.5.1", "18.1", "17.3")


def udid(i: int) -> str:
    return f"{i:08X}-0000-4000-8000-{i:012X}"


def seed(russet: Russet, count: int) -> float:
    now = datetime.now(UTC)
    devices = [
        {
            "id": udid(i),
            "device_id": udid(i),
            "channel": "device",
            "enrollment_type": "device",
            "enabled": True,
            "awaiting_configuration": False,
            "serial_number": f"C02{i:07d}",
            "product_name": PRODUCTS[i % len(PRODUCTS)],
            "model": PRODUCTS[i % len(PRODUCTS)],
            "os_version": VERSIONS[i % len(VERSIONS)],
            "device_name": f"device {i}",
            "created_at": now,
            "last_seen_at": now - timedelta(hours=i % 500),
            "identity_fp": f"{i:064x}",
        }
        for i in range(count)
    ]
    identities = [
        {
            "kind": "device_identity",
            "fingerprint": f"{i:064x}",
            "subject": f"CN={udid(i)}",
            "serial": f"{i:x}",
            "not_before": now,
            "not_after": now + timedelta(days=365),
            "der": b"x",
            "created_at": now,
        }
        for i in range(count)
    ]
    challenges = [
        {
            "challenge_hash": f"c{i:063x}",
            "created_at": now,
            "expires_at": now,
            "consumed_at": now,
            "issued_fp": f"{i:064x}",
        }
        for i in range(count)
    ]
    requests = [
        {
            "at": now,
            "method": "ade_signin" if i % 4 == 0 else "ade",
            "udid": udid(i),
            "serial_number": f"C02{i:07d}",
            "person_id": f"sub-{i}" if i % 4 == 0 else None,
            "challenge_hash": f"c{i:063x}",
        }
        for i in range(count)
    ]
    info = [
        {
            "enrollment_id": udid(i),
            "section": "DeviceInformation",
            "data": json.dumps({"IsSupervised": i % 3 != 0, "OSVersion": VERSIONS[i % len(VERSIONS)]}),
            "updated_at": now,
        }
        for i in range(count)
    ]
    listed = [
        {"connection": "School", "serial_number": f"C02{i:07d}", "generation": 1, "updated_at": now}
        for i in range(0, count, 3)
    ]
    start = time.perf_counter()
    with russet.storage.engine.begin() as conn:
        conn.execute(insert(enrollments), devices)
        conn.execute(insert(inventory), info)
        conn.execute(insert(abm_devices), listed)
        conn.execute(insert(certificates), identities)
        conn.execute(insert(scep_challenges), challenges)
        conn.execute(insert(enrollment_requests), requests)
    if russet.storage.engine.dialect.name == "postgresql":
        with russet.storage.engine.begin() as conn:  # what autovacuum does soon after a bulk load
            conn.execute(
                text(
                    "ANALYZE enrollments; ANALYZE inventory; ANALYZE abm_devices; ANALYZE certificates; "
                    "ANALYZE scep_challenges; ANALYZE enrollment_requests"
                )
            )
    return time.perf_counter() - start


def timed(label: str, work: Callable[[], T], figures: list[tuple[str, float]]) -> T:
    start = time.perf_counter()
    result = work()
    figures.append((label, (time.perf_counter() - start) * 1000))
    return result


def best_of(label: str, work: Callable[[], Any], figures: list[tuple[str, float]], runs: int = 5) -> None:
    """Pages: the best of a few runs (the first warms caches)."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    figures.append((label + f" (best of {runs})", min(times)))


def run(backend: str, url: str, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"RUSSET_DATA_DIR": tmp, "RUSSET_DATABASE_URL": url})
        russet = Russet.open(settings)
        try:
            seeded = seed(russet, count)
            groups = russet.groups
            figures: list[tuple[str, float]] = []
            facts = timed("read every device's facts", lambda: russet.groups._facts.facts(None), figures)
            assert len(facts) == count
            assert sum(f["enrollment_method"] == "ade_signin" for f in facts) == (count + 3) // 4
            best_of(
                "one device's facts (a check-in's re-evaluation reads them)",
                lambda: russet.groups._facts.facts([udid(count // 2)]),
                figures,
            )
            best_of("show one device", lambda: russet.devices.show_device(udid(count // 3)), figures)
            made = timed(
                "create smart group (evaluate + write)",
                lambda: groups.create(
                    "iPads", query='os_version >= "17.4" and model ~ "iPad" and supervised = true'
                ),
                figures,
            )
            nested = timed(
                "create nested smart group",
                lambda: groups.create("iPads or School", query='in_group("iPads") or abm_account = "School"'),
                figures,
            )
            timed(
                "change the first query (2 groups re-evaluated)",
                lambda: groups.update("iPads", query='os_version >= "17.5" and model ~ "iPad"'),
                figures,
            )
            timed("reconcile every smart group, nothing to change", groups.reconcile, figures)
            timed(
                "one device's facts changed (check-in path)",
                lambda: russet.events.publish(DeviceFactsChanged((udid(count // 2),))),
                figures,
            )
            groups.create("Broken")
            groups.add_members("Broken", [udid(i) for i in range(0, min(count, 3000), 3)])
            if russet.storage.engine.dialect.name == "postgresql":
                with russet.storage.engine.begin() as conn:  # autovacuum's analyze after bulk writes
                    conn.execute(text("ANALYZE group_members"))
            scope = Scope(include=["iPads", "iPads or School"], exclude=["Broken"])
            in_scope = timed("scope, every device", lambda: groups.scope_devices(scope), figures)
            best_of("scope, one page of 100", lambda: groups.scope_devices(scope, limit=100), figures)
            deep = udid(count - count // 10)
            best_of(
                "group members page of 100, deep", lambda: groups.show("iPads or School", after=deep), figures
            )
            best_of("page of groups", lambda: groups.page(limit=100), figures)
            members = groups.show("iPads")["member_count"]
            print(f"\n{backend}: {count:,} devices seeded in {seeded:.1f} s")
            print(
                f"  iPads: {members:,} members; iPads or School: {nested['member_count']:,} "
                f"(first evaluation {made['member_count']:,}); scope: {len(in_scope):,} devices"
            )
            for label, ms in figures:
                print(f"  {label:55} {ms:10.1f} ms")
        finally:
            russet.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", type=int, default=100_000)
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        with fresh_database(backend) as url:
            run(backend, url, args.devices)


if __name__ == "__main__":
    main()
