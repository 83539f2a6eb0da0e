"""A command is handed out once, also to concurrent connects of one device and across server
processes; a device left with a NotNow (or unanswered) command is pushed again on a schedule."""

from __future__ import annotations

import contextlib
import os
import plistlib
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import Name, NameAttribute
from cryptography.x509.oid import NameOID
from sqlalchemy import update

from russet.apns.tables import apns_push
from russet.mdm import queue as queue_module
from russet.mdm.channels import Channel
from russet.mdm.enrollments import DeviceFacts
from russet.mdm.queue import Report
from russet.mdm.tables import enrollments
from russet.pki import issue_from_public_key
from russet.runtime import Russet
from russet.storage.db import utcnow
from simulators.device import Enrollment, SimDevice
from tests.conftest import TOPIC
from tests.serve_support import free_port, wait_until_serving

IDLE = Report("Idle", None, b"", {})


def enrolled(russet: Russet, udid: str | None = None) -> tuple[str, str]:
    udid = udid or os.urandom(8).hex().upper()
    fp = os.urandom(32).hex()
    channel = Channel(udid, udid, False, "device")
    russet.storage.enrollments.authenticate(channel, fp, TOPIC, DeviceFacts())
    russet.storage.enrollments.token_update(channel, fp, TOPIC, os.urandom(32), "magic", None, False)
    return udid, fp


def racing_reads(monkeypatch: pytest.MonkeyPatch, parties: int) -> None:
    """Make every exchange wait after its read until `parties` exchanges have read: they all
    decide on the same state, the worst case for two connects of one device."""
    real = queue_module.reading
    barrier = threading.Barrier(parties)

    @contextlib.contextmanager
    def synced(engine: Any) -> Iterator[Any]:
        with real(engine) as conn:
            yield conn
        barrier.wait(timeout=20)

    monkeypatch.setattr(queue_module, "reading", synced)


def exchange_at_once(russet: Russet, udid: str, fp: str, n: int) -> list[bytes | None]:
    bodies: list[bytes | None] = [None] * n

    def connect(i: int) -> None:
        bodies[i] = russet.storage.queue.exchange(udid, fp, IDLE).body

    threads = [threading.Thread(target=connect, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return bodies


def uuid_of(body: bytes | None) -> str | None:
    return None if body is None else str(plistlib.loads(body)["CommandUUID"])


def test_two_connects_that_read_the_same_command_get_it_once(
    russet: Russet, monkeypatch: pytest.MonkeyPatch
) -> None:
    udid, fp = enrolled(russet)
    [first] = russet.storage.queue.enqueue(
        "ProfileList", plistlib.dumps({"CommandUUID": queue_module.UUID_PLACEHOLDER}), [udid], "t"
    ).values()
    [second] = russet.storage.queue.enqueue(
        "CertificateList", plistlib.dumps({"CommandUUID": queue_module.UUID_PLACEHOLDER}), [udid], "t"
    ).values()
    racing_reads(monkeypatch, 2)
    got = sorted(str(uuid_of(b)) for b in exchange_at_once(russet, udid, fp, 2))
    assert got == sorted([first, second])  # one each, not the first one twice
    monkeypatch.undo()
    shown = russet.storage.queue.by_uuid(first)
    assert shown is not None and shown["attempts"] == 1
    # A third connect at once finds nothing more to hand out, not a repeat.
    assert russet.storage.queue.exchange(udid, fp, IDLE).body is None


def test_an_unanswered_command_is_handed_out_again_later(russet: Russet) -> None:
    udid, fp = enrolled(russet)
    [uuid] = russet.storage.queue.enqueue(
        "ProfileList", plistlib.dumps({"CommandUUID": queue_module.UUID_PLACEHOLDER}), [udid], "t"
    ).values()
    assert uuid_of(russet.storage.queue.exchange(udid, fp, IDLE).body) == uuid
    assert russet.storage.queue.exchange(udid, fp, IDLE).body is None  # at once: a concurrent connect
    later = utcnow() - queue_module.RESEND_AFTER - timedelta(seconds=1)
    with russet.storage.engine.begin() as conn:
        conn.execute(update(queue_module.command_queue).values(sent_at=later))
    assert uuid_of(russet.storage.queue.exchange(udid, fp, IDLE).body) == uuid  # the device lost it


# -- pushes for commands left waiting ----------------------------------------------------------------


def pushed_and_seen_since(russet: Russet, udid: str) -> None:
    """APNs was asked a while ago, the device connected after it, the sweep's backoff has passed."""
    now = utcnow()
    russet.pusher.state.targets([udid])  # makes the push-state row
    with russet.storage.engine.begin() as conn:
        conn.execute(
            update(apns_push)
            .where(apns_push.c.enrollment_id == udid)
            .values(last_push_at=now - timedelta(hours=1), next_sweep_at=now - timedelta(minutes=1))
        )
        conn.execute(
            update(enrollments)
            .where(enrollments.c.id == udid)
            .values(last_seen_at=now - timedelta(minutes=30))
        )


def test_a_notnow_left_at_the_end_of_a_session_is_pushed_again(russet: Russet) -> None:
    udid, fp = enrolled(russet)
    [uuid] = russet.storage.queue.enqueue(
        "InstallProfile", plistlib.dumps({"CommandUUID": queue_module.UUID_PLACEHOLDER}), [udid], "t"
    ).values()
    assert uuid_of(russet.storage.queue.exchange(udid, fp, IDLE).body) == uuid
    russet.storage.queue.exchange(udid, fp, Report("NotNow", uuid, b"<plist/>", {}))
    pushed_and_seen_since(russet, udid)
    assert russet.pusher.state.sweep(utcnow()) == 1
    assert russet.pusher.state.device(udid)["requested"]  # type: ignore[index]
    # Once asked, it waits for the push and the next backoff: no second request now.
    assert russet.pusher.state.sweep(utcnow()) == 0


def test_a_device_seen_with_nothing_waiting_is_not_pushed(russet: Russet) -> None:
    udid, fp = enrolled(russet)
    [uuid] = russet.storage.queue.enqueue(
        "ProfileList", plistlib.dumps({"CommandUUID": queue_module.UUID_PLACEHOLDER}), [udid], "t"
    ).values()
    russet.storage.queue.exchange(udid, fp, IDLE)
    pushed_and_seen_since(russet, udid)
    assert russet.pusher.state.sweep(utcnow()) == 0  # handed out just now: being worked on
    russet.storage.queue.exchange(udid, fp, Report("Acknowledged", uuid, b"<plist/>", {}))
    assert russet.pusher.state.sweep(utcnow()) == 0


# -- several server processes, real HTTP -----------------------------------------------------------------


@pytest.fixture
def served(russet: Russet, settings: Any) -> Iterator[str]:
    """`russet serve --workers 2` on the test's data directory and database."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": url,
        "RUSSET_PUSH_TOPIC": TOPIC,
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "russet",
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_serving(proc, url, 60)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_concurrent_connects_to_several_processes_deliver_each_command_once(
    russet: Russet, served: str
) -> None:
    devices_n, per_device = 50, 2
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # one key, 50 certificates
    authority = russet.authority
    devices = []
    for i in range(devices_n):
        cert = issue_from_public_key(
            authority.ca_certificate,
            authority.ca_key,
            key.public_key(),
            Name([NameAttribute(NameOID.COMMON_NAME, f"device {i}")]),
            30,
        )
        enrollment = Enrollment(cert, key, f"{served}/mdm/connect", f"{served}/mdm/checkin", TOPIC)
        devices.append(SimDevice(enrollment))
    with httpx.Client(timeout=60) as http:
        for device in devices:
            device.enroll(http)
    placeholder = plistlib.dumps(
        {"CommandUUID": queue_module.UUID_PLACEHOLDER, "Command": {"RequestType": "ProfileList"}}
    )
    queued = [
        uuid
        for _ in range(per_device)
        for uuid in russet.storage.queue.enqueue(
            "ProfileList", placeholder, [d.udid for d in devices], "t"
        ).values()
    ]
    handed: Counter[str] = Counter()
    lock = threading.Lock()
    errors: list[str] = []
    start = threading.Barrier(devices_n * 2)

    def session(device: SimDevice) -> None:
        with httpx.Client(timeout=60) as http:
            start.wait(timeout=60)
            response = device.connect(http, device.report_message("Idle"))
            while response.status_code == 200 and response.content:
                uuid = plistlib.loads(response.content)["CommandUUID"]
                with lock:
                    handed[uuid] += 1
                response = device.connect(http, device.report_message("Acknowledged", uuid))
            if response.status_code != 200:
                errors.append(f"{response.status_code} {response.text}")

    threads = [threading.Thread(target=session, args=(d,)) for d in devices for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(handed) == sorted(queued)
    assert [uuid for uuid, n in handed.items() if n != 1] == []
    assert {russet.storage.queue.by_uuid(u)["status"] for u in queued} == {"acknowledged"}  # type: ignore[index]
