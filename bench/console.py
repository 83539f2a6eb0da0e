"""How fast the web console's pages are with a large fleet.

Seeds enrolled devices straight into storage (one bulk INSERT), logs in through the console's
form, then times GET /console/devices through the ASGI app (no network): the first page, a deep
page reached by its keyset cursor, a search that matches many devices and one that matches a
single serial number (the worst case: a substring search reads every row). Prints milliseconds
per page (min and median of the runs) and SQLite's query plan of each page's device query.

Then the pages of issue #13: a static group holding every device (its members bulk-inserted), a
smart group, a profile in the library, a blueprint with the profile scoped to the big group, and
times the groups list, the big group's first and a deep members page, the library, a profile,
the blueprints list, a blueprint, and a device page with its desired vs actual state. Two
actions are timed apart, being work over the whole fleet by nature rather than a page: a smart
query's "matches N devices" preview and the reconcile dry run.

    python bench/console.py [--backend sqlite|postgres|both] [--devices N] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import plistlib
import re
import secrets
import statistics
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from _measure import fresh_database
from sqlalchemy import event, insert, text

from russet.app import create_app
from russet.blueprints.service import BlueprintSpec, ProfileRef
from russet.config import Settings
from russet.groups.tables import group_members
from russet.groups.tables import groups as group_table
from russet.mdm.tables import enrollments
from russet.runtime import Russet

MODELS = ("iPhone15,2", "iPad13,1", "Mac14,2", "AppleTV11,1")


def seed(russet: Russet, count: int) -> float:
    """`count` enrolled devices in one executemany; returns the seconds it took."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"{i:08X}-0000-4000-8000-{i:012X}",
            "device_id": f"{i:08X}-0000-4000-8000-{i:012X}",
            "channel": "device",
            "enrollment_type": "device",
            "enabled": True,
            "awaiting_configuration": False,
            "serial_number": f"C02{i:07d}",
            "device_name": f"{('Alex', 'Sam', 'Kim', 'Lee')[i % 4]}'s device {i}",
            "model": MODELS[i % 4],
            "os_version": "17.5",
            "topic": "com.apple.mgmt.External.bench",
            "created_at": now,
            "last_seen_at": now,
        }
        for i in range(count)
    ]
    start = time.perf_counter()
    with russet.storage.engine.begin() as conn:
        conn.execute(insert(enrollments), rows)
    if russet.storage.engine.dialect.name == "postgresql":
        # What autovacuum does shortly after a bulk load; before it PostgreSQL has no statistics
        # for the new rows and sorts a sequential scan instead of walking the primary key.
        with russet.storage.engine.begin() as conn:
            conn.execute(text("ANALYZE enrollments"))
    return time.perf_counter() - start


WIFI_PROFILE = plistlib.dumps(
    {
        "PayloadType": "Configuration",
        "PayloadVersion": 1,
        "PayloadIdentifier": "com.example.wifi",
        "PayloadUUID": "6B0C3C1E-4E0B-4C8E-9E59-3C9A0C1B2D01",
        "PayloadDisplayName": "Office network",
        "PayloadContent": [
            {
                "PayloadType": "com.apple.wifi.managed",
                "PayloadVersion": 1,
                "PayloadIdentifier": "com.example.wifi.office",
                "PayloadUUID": "6B0C3C1E-4E0B-4C8E-9E59-3C9A0C1B2D02",
                "SSID_STR": "Office",
                "EncryptionType": "WPA2",
                "Password": "correct horse battery staple",
                "AutoJoin": True,
            }
        ],
    }
)


def device_id(i: int) -> str:
    return f"{i:08X}-0000-4000-8000-{i:012X}"


def seed_intent(russet: Russet, count: int) -> tuple[float, int]:
    """A static group "Everyone" with every device (bulk insert), a smart group, a profile and a
    blueprint scoped to "Everyone"; returns (seconds, the blueprint's id)."""
    from sqlalchemy import update

    from russet.storage.db import utcnow

    start = time.perf_counter()
    everyone = russet.groups.create("Everyone", description="every device")
    now = utcnow()
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(group_members),
            [{"group_id": everyone["id"], "device_id": device_id(i), "added_at": now} for i in range(count)],
        )
        conn.execute(update(group_table).where(group_table.c.id == everyone["id"]).values(member_count=count))
    for n in range(30):  # a list page's worth of small groups
        russet.groups.create(f"Team {n:02d}")
    russet.groups.create("iPads", query='model ~ "iPad"')
    russet.library.add(WIFI_PROFILE, name="wifi")
    made = russet.blueprints.create(
        BlueprintSpec(
            name="Office",
            profiles=(ProfileRef("wifi"),),
            time_zone="Europe/Paris",
            include=(everyone["id"],),
        ),
        created_by="bench",
    )
    if russet.storage.engine.dialect.name == "postgresql":
        with russet.storage.engine.begin() as conn:
            conn.execute(text("ANALYZE group_members"))
    return time.perf_counter() - start, made["id"]


async def time_actions(russet: Russet, runs: int) -> dict[str, tuple[float, float, int]]:
    """The two fleet-wide actions: a smart query preview and the reconcile dry run (POSTs)."""
    key = russet.storage.api_keys.create("bench-" + secrets.token_hex(3))
    transport = httpx.ASGITransport(app=create_app(russet))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.bench") as client:
        await login(client, key)
        page = (await client.get("/console/groups")).text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        actions = {
            "preview smart query (whole fleet)": (
                "/console/groups",
                {"csrf": csrf, "name": "x", "kind": "smart", "query": 'model ~ "iPad"', "action": "preview"},
            ),
            "reconcile dry run (whole fleet)": (
                "/console/blueprints/reconcile",
                {"csrf": csrf, "action": "preview"},
            ),
        }
        out = {}
        for name, (url, data) in actions.items():
            times = []
            for _ in range(max(1, min(runs, 3))):
                start = time.perf_counter()
                response = await client.post(url, data=data)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text[:300]
            out[name] = (min(times), statistics.median(times), 0)
        return out


def show(title: str, figures: dict[str, tuple[float, float, int]]) -> None:
    print(f"  {title}")
    print(f"  {'page':45} {'min ms':>8} {'median ms':>10} {'rows':>5}")
    for name, (low, mid, rows) in figures.items():
        flag = "" if mid < 100 else "  (over 100 ms)"
        print(f"  {name:45} {low:8.1f} {mid:10.1f} {rows:5}{flag}")


async def login(client: httpx.AsyncClient, key: str) -> None:
    form = (await client.get("/console/login")).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)  # type: ignore[union-attr]
    response = await client.post("/console/login", data={"csrf": csrf, "api_key": key})
    assert response.status_code == 303, response.text


async def time_pages(russet: Russet, pages: dict[str, str], runs: int) -> dict[str, tuple[float, float, int]]:
    key = russet.storage.api_keys.create("bench-" + secrets.token_hex(3))
    transport = httpx.ASGITransport(app=create_app(russet))  # no lifespan: no background work
    async with httpx.AsyncClient(transport=transport, base_url="http://console.bench") as client:
        await login(client, key)
        out = {}
        for name, url in pages.items():
            times, rows = [], 0
            for _ in range(runs):
                start = time.perf_counter()
                response = await client.get(url)
                times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, response.text[:300]
                rows = response.text.count('<a href="/console/devices/')
            out[name] = (min(times), statistics.median(times), rows)
        return out


def query_plans(russet: Russet, pages: dict[str, str], key: str) -> dict[str, list[str]]:
    """SQLite's EXPLAIN QUERY PLAN of the enrollments SELECT each page runs."""
    seen: list[tuple[str, Any]] = []

    def capture(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT") and "FROM enrollments" in statement:
            seen.append((statement, parameters))

    engine = russet.storage.engine
    event.listen(engine, "before_cursor_execute", capture)
    try:
        asyncio.run(_fetch_all(russet, pages, key))
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = {}
    with engine.connect() as conn:
        for name, (statement, parameters) in zip(pages, seen, strict=False):
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            plans[name] = [r[-1] for r in rows]
    return plans


async def _fetch_all(russet: Russet, pages: dict[str, str], key: str) -> None:
    transport = httpx.ASGITransport(app=create_app(russet))
    async with httpx.AsyncClient(transport=transport, base_url="http://console.bench") as client:
        await login(client, key)
        for url in pages.values():
            await client.get(url)


def run(backend: str, url: str, devices: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"RUSSET_DATA_DIR": tmp, "RUSSET_DATABASE_URL": url})
        russet = Russet.open(settings)
        try:
            seeded = seed(russet, devices)
            deep = device_id(devices - 120)
            pages = {
                "first page": "/console/devices",
                f"deep page (after device {devices - 120})": f"/console/devices?after={deep}",
                "search 'alex' (many matches)": "/console/devices?q=alex",
                f"search serial C02{devices - 7:07d} (one match)": f"/console/devices?q=C02{devices - 7:07d}",
            }
            figures = asyncio.run(time_pages(russet, pages, runs))
            print(f"\n{backend}: {devices:,} devices seeded in {seeded:.1f} s; {runs} runs per page")
            show("device pages", figures)
            if backend == "sqlite":
                key = russet.storage.api_keys.create("bench-plan")
                for name, plan in query_plans(russet, pages, key).items():
                    print(f"  plan, {name}: {' / '.join(plan)}")
            intent_seconds, blueprint = seed_intent(russet, devices)
            print(f"  groups, library and blueprint seeded in {intent_seconds:.1f} s")
            intent = {
                "groups list": "/console/groups",
                "group Everyone (members, first page)": "/console/groups/Everyone",
                "group Everyone (members, deep page)": f"/console/groups/Everyone?after={deep}",
                "smart group iPads": "/console/groups/iPads",
                "profile library": "/console/profiles",
                "profile wifi": "/console/profiles/wifi",
                "blueprints list": "/console/blueprints",
                "blueprint Office (edit form)": f"/console/blueprints/{blueprint}",
                "new blueprint form": "/console/blueprints/new",
                "device page (desired vs actual)": f"/console/devices/{device_id(devices // 2)}",
            }
            show("issue #13 pages", asyncio.run(time_pages(russet, intent, runs)))
            show("fleet-wide actions (not pages)", asyncio.run(time_actions(russet, runs)))
        finally:
            russet.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--devices", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    for backend in ("sqlite", "postgres") if args.backend == "both" else (args.backend,):
        with fresh_database(backend) as url:
            run(backend, url, args.devices, args.runs)


if __name__ == "__main__":
    main()
