"""What a newcomer meets first (#19 item 6): `russet serve` says where it really listens, a bad
configuration is one line naming the problem, listings read as text for people, a confirmation is
asked only once the input is known to be good, and a long ABM sync shows progress."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from russet.abm import sync as abm_sync
from russet.cli.main import cli
from russet.cli.output import cell
from russet.config import ConfigError, Settings
from tests.abm_support import connect, run, simulated


def _russet(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "russet", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line_error(done: subprocess.CompletedProcess[str], *words: str) -> None:
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, done.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize(
    ("url", "named"),
    [("mysql://root@127.0.0.1/test", "'mysql'"), ("nonsense", "'nonsense'"), ("sqlite://", "'sqlite'")],
)
def test_a_database_url_russet_cannot_use_is_one_line(tmp_path: Path, url: str, named: str) -> None:
    done = _russet({"RUSSET_DATA_DIR": str(tmp_path / "d"), "RUSSET_DATABASE_URL": url}, "devices")
    _one_line_error(done, "RUSSET_DATABASE_URL", "SQLite and PostgreSQL", named)
    with pytest.raises(ConfigError):
        Settings.from_env({"RUSSET_DATA_DIR": str(tmp_path / "d"), "RUSSET_DATABASE_URL": url})


def test_a_file_where_the_data_directory_should_be_is_one_line(tmp_path: Path) -> None:
    in_the_way = tmp_path / "data"
    in_the_way.write_text("not a directory")
    done = _russet({"RUSSET_DATA_DIR": str(in_the_way)}, "devices")
    _one_line_error(done, "RUSSET_DATA_DIR", "is a file, not a directory")
    done = _russet({"RUSSET_DATA_DIR": str(in_the_way / "below")}, "migrate")
    _one_line_error(done, "cannot use the data directory", "Not a directory")
    assert in_the_way.read_text() == "not a directory"


def test_a_read_only_data_directory_is_one_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _russet({"RUSSET_DATA_DIR": str(data)}, "migrate").returncode == 0
    mount = ["mount", "--bind", "-o", "ro", str(data), str(data)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        data.chmod(0o500)  # not root: a directory it may not write to says the same
        if os.access(data, os.W_OK):
            pytest.skip("cannot make the data directory read-only here (root without mount)")
        mount = []
    try:
        listing = _russet({"RUSSET_DATA_DIR": str(data)}, "devices")
        _one_line_error(listing, "cannot use the database")
        served = _russet({"RUSSET_DATA_DIR": str(data)}, "serve", "--port", "0", timeout=30)
        _one_line_error(served, "cannot write beside the database")
    finally:
        if mount:
            subprocess.run(["umount", str(data)], check=True)
        else:
            data.chmod(0o700)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_names_the_port_it_bound_after_binding_it(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "RUSSET_DATA_DIR": str(tmp_path / "d")}
    env.pop("RUSSET_PUBLIC_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "russet", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 60
        while not any(line.startswith("Console at") for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            lines.append(proc.stdout.readline())
        banner = "".join(lines)
        assert f"Listening on http://127.0.0.1:{port}" in banner
        # Unset, the public URL follows the port: devices are told where Russet is.
        assert f"Devices reach it at http://127.0.0.1:{port}/mdm/checkin" in banner
        assert ":8080" not in banner
        # The banner comes after the bind: the port is taken, another serve says so in one line.
        taken = _russet({"RUSSET_DATA_DIR": str(tmp_path / "other")}, "serve", "--port", str(port))
        _one_line_error(taken, f"cannot listen on 127.0.0.1:{port}")
        for _ in range(100):
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail("russet serve did not answer on the port its banner named")
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_cells_read_as_text_for_people() -> None:
    assert cell(True) == "yes" and cell(False) == "no" and cell(None) == ""
    assert cell(datetime(2026, 12, 7, 16, 13, 5, 586955, tzinfo=UTC)) == "2026-12-07 16:13:05Z"
    assert cell(datetime(2026, 12, 7, 16, 13, 5)) == "2026-12-07 16:13:05Z"  # stored naive: UTC
    assert cell("2026-12-14T16:13:21.483304+00:00") == "2026-12-14 16:13:21Z"
    assert cell({"a": [1, True]}) == '{"a": [1, true]}'
    assert cell("2026-12-14T16:13:21+02:00") == "2026-12-14T16:13:21+02:00"  # not UTC: left as said


def test_listings_print_no_python_reprs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUSSET_DATA_DIR", str(tmp_path / "d"))
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    assert runner.invoke(cli, ["apikey", "create", "k1", "--role", "auditor"]).exit_code == 0
    assert runner.invoke(cli, ["enrollment", "token", "create"]).exit_code == 0
    for listing in (["apikey", "list"], ["enrollment", "token", "list"], ["audit", "list"], ["tasks"]):
        out = runner.invoke(cli, listing).output
        assert not re.search(r"\bTrue\b|\bFalse\b|\+00:00|\d\d:\d\d:\d\d\.\d|\{'", out), (listing, out)
    types = runner.invoke(cli, ["command", "types", "--json"])
    assert types.exit_code == 0 and "DeviceInformation" in types.output


def test_disconnect_refuses_an_unknown_connection_before_asking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUSSET_DATA_DIR", str(tmp_path / "d"))
    runner = CliRunner()
    assert runner.invoke(cli, ["migrate"]).exit_code == 0
    # No "y" is given: had it asked first, the answer would be an abort, not the reason.
    result = runner.invoke(cli, ["disconnect", "abm", "nope"], input="")
    assert result.exit_code == 1
    assert "Disconnect" not in result.output
    assert "no Apple Business/School Manager (device enrollment) connection named 'nope'" in result.output


def test_a_long_abm_sync_tells_its_progress(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(abm_sync, "PAGE_LIMIT", 10)
    with simulated(tmp_path, settings, devices=25) as (sim, russet):
        connect(russet, sim)
        seen: list[tuple[int, int]] = []
        report = run(
            russet,
            russet.abm.sync_now(
                "main", progress=lambda so_far: seen.append((so_far["pages"], so_far["devices"]))
            ),
        )
        assert seen == [(1, 10), (2, 20), (3, 25)]
        assert report["devices"] == 25
