"""What a server process holds in memory (issue #18: under 100 MB per worker): a worker imports
only what serving needs, and the parent of `russet serve --workers N` only supervises.

Behaviour, not figures (memory is measured by bench/memory.py): the modules named here cost a
process tens of MB and are loaded only where they are used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from russet.config import Settings
from russet.runtime import Russet
from tests.serve_support import free_port, wait_until_serving

ROOT = Path(__file__).resolve().parents[1]
# Loaded on first use only: PDF reports, migrations, the PostgreSQL driver on SQLite, the HTTP
# clients of Apple's services, webhooks and sign-on, and the command line; never: SQLAlchemy's ORM
# (Russet uses its Core); Prometheus' client only with RUSSET_METRICS=on (off in these settings).
NOT_FOR_SERVING = (
    "fpdf",
    "alembic",
    "httpx",
    "authlib",
    "joserfc",
    "russet.cli",
    "russet.apple.pdf",
    "sqlalchemy.orm",
    "prometheus_client",
)

WORKER = """
import os, sys
from russet.app import app_from_env
app_from_env()
heavy = [m for m in sys.argv[1:] if m in sys.modules]
if os.environ["RUSSET_DATABASE_URL"].startswith("sqlite") and "psycopg" in sys.modules:
    heavy.append("psycopg")
print(",".join(heavy))
"""


def _env(settings: Settings, **more: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
        "RUSSET_PUSH_TOPIC": settings.push_topic or "",
        **more,
    }


def test_a_worker_on_a_set_up_database_loads_nothing_it_does_not_serve_with(settings: Settings) -> None:
    Russet.open(settings).close()  # as `russet serve` leaves it before starting its workers
    out = subprocess.run(
        [sys.executable, "-c", WORKER, *NOT_FOR_SERVING],
        env=_env(settings, RUSSET_METRICS="off"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "", f"a serving worker imported {out.stdout.strip()}"


def test_a_worker_on_a_new_database_still_sets_it_up(settings: Settings) -> None:
    """Workers started without `russet serve` migrate (Alembic loaded for that, under the lock)."""
    out = subprocess.run(
        [sys.executable, "-c", WORKER, "alembic"],
        env=_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "alembic"
    Russet.open(settings, migrate_db=False).close()  # at head: NotMigrated otherwise


def test_serve_with_workers_leaves_a_supervisor_and_records_its_run(settings: Settings) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "russet", "serve", "--port", str(port), "--workers", "2"]
    proc = subprocess.Popen(
        [*command, "--log-level", "warning"],
        env=_env(settings, RUSSET_PUBLIC_URL=url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(proc, url, 60)
        # The same process, now a fresh interpreter supervising the workers, without the CLI.
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"russet.cli.supervisor" in cmdline
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0].decode()
    assert f"Listening on {url} (2 workers)" in output
    assert "Database migrated to" in output  # the banner, printed before the handover
    russet = Russet.open(settings, migrate_db=False)
    try:
        rows = russet.access.audit_page(limit=10, surface="cli")["rows"]
    finally:
        russet.close()
    assert [(r["action"], r["outcome"]) for r in rows] == [("cli serve", "ok")]
