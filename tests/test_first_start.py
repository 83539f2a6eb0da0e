"""First start: servers starting together on a new database set it up once (one CA, migrations
once); CLI commands other than `migrate`/`serve` refuse an un-migrated database in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from russet.cli.main import cli
from russet.config import Settings
from russet.runtime import Russet
from russet.storage.db import current_revision, head_revision, make_engine
from russet.storage.tables import certificates

ROOT = Path(__file__).resolve().parent.parent


def _env(settings: Settings) -> dict[str, str]:
    return {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
    }


def _cas_and_revision(settings: Settings) -> tuple[int, str | None]:
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            cas = conn.execute(select(func.count()).where(certificates.c.kind == "ca")).scalar_one()
            return cas, current_revision(conn)
    finally:
        engine.dispose()


def test_servers_starting_together_make_one_ca(settings: Settings) -> None:
    """Four servers (each with its own engine, as separate processes have) open a new database
    at the same instant: no error, migrations applied once, exactly one CA, all share it."""
    count = 4
    barrier = threading.Barrier(count)
    opened: list[Russet] = []
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            opened.append(Russet.open(settings))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert sum(1 for r in opened if r.migration is not None and r.migration.applied) == 1
        assert len({r.authority.ca_certificate for r in opened}) == 1
    finally:
        for r in opened:
            r.close()
    assert _cas_and_revision(settings) == (1, head_revision())


def test_migrate_processes_started_together_migrate_once(settings: Settings) -> None:
    env = {**os.environ, **_env(settings)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "russet", "migrate"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    said = sorted(out for out, _ in outs)
    assert said[0].startswith(f"already at revision {head_revision()}: nothing to do"), said
    assert said[1].startswith("migrated from an empty database to"), said
    assert _cas_and_revision(settings) == (1, head_revision())


def test_migrate_says_what_it_did_and_is_idempotent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    first = CliRunner().invoke(cli, ["migrate"])
    assert first.exit_code == 0, first.output
    assert f"to {head_revision()}: applied 0001, 0002" in first.output
    again = CliRunner().invoke(cli, ["migrate"])
    assert again.exit_code == 0 and "nothing to do" in again.output
    assert _cas_and_revision(settings) == (1, head_revision())


@pytest.mark.parametrize(
    "args",
    [["devices"], ["command", "show", "X"], ["enrollment", "token", "list"], ["apikey", "create", "x"]],
)
def test_cli_on_an_unmigrated_database_says_run_migrate(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    for name, value in _env(settings).items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert result.output.strip().endswith("run `russet migrate` first"), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    engine = make_engine(settings.database_url)
    with engine.connect() as conn:
        assert current_revision(conn) is None  # nothing was set up behind its back
    engine.dispose()
