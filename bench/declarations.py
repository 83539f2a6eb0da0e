"""How long recomputing every device's declaration set takes after an admin change, with a large
fleet (issue #14).

Seeds enrolled devices straight into storage and a static group "Everyone" holding them all, then
times, through `russet.declarations` as the API calls it: assigning a declaration to the group
(every device's set changes: sets written, DeclarativeManagement queued for each), a refresh that
finds nothing changed, a payload change (every set's token moves again), and a blueprint listing a
second declaration scoped to the group (`BlueprintsChanged` recomputes every set). Prints seconds
and the SQL statements each took (counted on the engine).

    python bench/declarations.py [--backend sqlite|postgres|both] [--devices N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from typing import Any

from _measure import fresh_database
from console import device_id, seed
from sqlalchemy import event, insert

from russet.blueprints.service import BlueprintSpec
from russet.config import Settings
from russet.groups.tables import group_members
from russet.runtime import Russet
from russet.storage.db import utcnow

PASSCODE = "com.apple.configuration.passcode.settings"


def timed(russet: Russet, what: str, action: Callable[[], Any]) -> None:
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = russet.storage.engine
    event.listen(engine, "before_cursor_execute", count)
    start = time.perf_counter()
    try:
        result = action()
    finally:
        seconds = time.perf_counter() - start
        event.remove(engine, "before_cursor_execute", count)
    shown = {k: v for k, v in result.items() if k in ("changed", "commanded", "added")} if result else {}
    print(f"  {what:<58} {seconds:7.2f} s  {statements:7,} statements  {shown}")


def run(backend: str, url: str, devices: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.from_env({"RUSSET_DATA_DIR": tmp, "RUSSET_DATABASE_URL": url})
        russet = Russet.open(settings)
        try:
            seeded = seed(russet, devices)
            everyone = russet.groups.create("Everyone", description="every device")
            now = utcnow()
            with russet.storage.engine.begin() as conn:
                conn.execute(
                    insert(group_members),
                    [
                        {"group_id": everyone["id"], "device_id": device_id(i), "added_at": now}
                        for i in range(devices)
                    ],
                )
            print(f"\n{backend}: {devices:,} devices and their group seeded in {seeded:.1f} s")
            service = russet.declarations
            service.create(PASSCODE, {"MinimumLength": 6}, identifier="pc", created_by="bench")
            service.create(PASSCODE, {"MinimumLength": 4}, identifier="pc2", created_by="bench")
            timed(
                russet,
                "assign to the group (every set changes, every device told)",
                lambda: service.assign("pc", groups=["Everyone"]),
            )
            timed(russet, "refresh, nothing changed", service.refresh)
            timed(
                russet,
                "payload changed (every set's token moves, every device told)",
                lambda: service.update("pc", {"MinimumLength": 8}, created_by="bench"),
            )
            spec = BlueprintSpec(name="Office", declarations=("pc2",), include=(everyone["id"],))
            timed(
                russet,
                "blueprint listing a declaration, scoped to the group",
                lambda: russet.blueprints.create(spec, created_by="bench") and service.refresh(),
            )
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
