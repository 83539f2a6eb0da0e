"""`russet serve` as a user runs it: a real server process on a fresh data directory, a device
enrolling over real HTTP with a profile written by the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulators.device import Enrollment, SimDevice
from tests.conftest import TOPIC
from tests.serve_support import free_port, wait_until_serving


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RUSSET_DATA_DIR": str(tmp_path / "fresh"),
        "RUSSET_PUBLIC_URL": url,
        "RUSSET_PUSH_TOPIC": TOPIC,
    }
    if not database_url.startswith("sqlite"):
        env["RUSSET_DATABASE_URL"] = database_url
    proc = subprocess.Popen(
        [sys.executable, "-m", "russet", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(proc, url, 30)
        yield url, env
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run(
        [sys.executable, "-m", "russet", *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def test_a_device_enrolls_against_russet_serve(served: tuple[str, dict[str, str]], tmp_path: Path) -> None:
    url, env = served
    profile_path = tmp_path / "enroll.mobileconfig"
    cli(env, "enrollment", "profile", "--out", str(profile_path))
    key = cli(env, "apikey", "create", "admin").strip()
    device = SimDevice(Enrollment.from_profile(profile_path.read_bytes()))
    with httpx.Client() as http:
        device.enroll(http)
        assert device.command_of(device.connect(http, device.report_message("Idle"))) is None
        response = http.post(
            f"{url}/api/v1/commands",
            json={"devices": [device.udid], "command": {"RequestType": "ProfileList"}},
            headers={"Authorization": f"Bearer {key}"},
        )
        uuid = response.json()["commands"][0]["command_uuid"]
        command = device.command_of(device.connect(http, device.report_message("Idle")))
        assert command is not None and command["CommandUUID"] == uuid
        assert (
            device.command_of(
                device.connect(http, device.report_message("Acknowledged", uuid, ProfileList=[]))
            )
            is None
        )
        shown = http.get(f"{url}/api/v1/commands/{uuid}", headers={"Authorization": f"Bearer {key}"}).json()
        assert shown["status"] == "acknowledged"
