"""An Idle connect that changes nothing is answered on the event loop where device requests
otherwise go to a worker thread (PostgreSQL on this host: `mdm.http`, `quiet_inline`); every
other connect still takes the thread, with the same answers as before."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest
from sqlalchemy import create_engine
from starlette.routing import Router
from starlette.testclient import TestClient

from russet.mdm.http import device_routes
from russet.runtime import Russet
from russet.storage.db import on_this_host
from simulators.device import SimDevice
from tests.conftest import PUBLIC_URL, command_in_flight


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the functions device requests ran in worker threads, in order."""
    ran: list[str] = []
    real = anyio.to_thread.run_sync

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(func.__name__)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return ran


@pytest.fixture
def devices_only(russet: Russet) -> TestClient:
    """The device routes as a PostgreSQL server on this host has them (threads, quiet inline)."""
    routes = device_routes(russet.mdm, russet.identities, 1 << 20, inline=False, quiet_inline=True)
    return TestClient(Router(routes=routes), base_url=PUBLIC_URL)


def test_a_quiet_idle_is_answered_without_a_thread_and_marks_the_device_seen(
    client: TestClient, russet: Russet, device: SimDevice, devices_only: TestClient, threads: list[str]
) -> None:
    device.enroll(client)
    russet.mdm.flush_last_seen()
    before = russet.storage.enrollments.get(device.udid)
    assert before is not None
    threads.clear()  # the enrollment went through the whole app (threads on PostgreSQL)
    response = device.connect(devices_only, device.report_message("Idle"))
    assert response.status_code == 200 and response.content == b""
    assert threads == []
    russet.mdm.flush_last_seen()
    after = russet.storage.enrollments.get(device.udid)
    assert after is not None and after["last_seen_at"] is not None
    assert before["last_seen_at"] is None or after["last_seen_at"] >= before["last_seen_at"]


def test_an_idle_with_a_command_queued_goes_to_a_thread_and_gets_it_once(
    client: TestClient, russet: Russet, device: SimDevice, devices_only: TestClient, threads: list[str]
) -> None:
    device.enroll(client)
    threads.clear()
    uuid = command_in_flight(devices_only, russet, device, "ProfileList")  # handed out once
    assert threads == ["answer"]  # identity and plist read once, on the loop, then the thread
    ack = device.report_message("Acknowledged", uuid, ProfileList=[])
    assert device.command_of(device.connect(devices_only, ack)) is None
    assert threads == ["answer", "answer"]
    assert russet.devices.show_command(uuid)["status"] == "acknowledged"


def test_a_forgotten_device_still_gets_the_one_answer_that_unenrolls(
    client: TestClient, russet: Russet, device: SimDevice, devices_only: TestClient, threads: list[str]
) -> None:
    device.enroll(client)
    russet.devices.forget(device.udid)
    threads.clear()
    response = device.connect(devices_only, device.report_message("Idle"))
    assert response.status_code == 403 and response.json()["code"] == "com.apple.unrecognized.device"
    assert threads == ["answer"]


def test_another_identity_is_refused_as_before(
    client: TestClient, russet: Russet, make_device: Any, devices_only: TestClient, threads: list[str]
) -> None:
    device = make_device()
    device.enroll(client)
    stranger = make_device(udid=device.udid, serial=device.serial)  # another identity, same UDID
    threads.clear()
    response = stranger.connect(devices_only, stranger.report_message("Idle"))
    assert response.status_code == 403 and "identity certificate" in response.text
    assert threads == ["answer"]


def test_check_ins_always_take_the_thread(
    client: TestClient, device: SimDevice, devices_only: TestClient, threads: list[str]
) -> None:
    """A check-in's identity check records its signature (replays are refused across nodes)."""
    device.enroll(client)
    threads.clear()
    response = device.check_in(devices_only, device.token_update_message())
    assert response.status_code == 200
    assert threads == ["handle"]


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("sqlite:////tmp/russet.db", True),
        ("postgresql+psycopg://russet@127.0.0.1:5432/russet", True),
        ("postgresql+psycopg://russet@localhost/russet", True),
        ("postgresql+psycopg:///russet", True),  # the Unix socket
        ("postgresql+psycopg:///russet?host=/var/run/postgresql", True),
        ("postgresql+psycopg://russet@db.example.com/russet", False),
        ("postgresql+psycopg:///russet?host=db.example.com", False),
    ],
)
def test_what_counts_as_a_database_on_this_host(url: str, local: bool) -> None:
    assert on_this_host(create_engine(url)) is local
