"""Pushing devices through APNs (protocol doc §d.3–§d.6), against the APNs simulator.

The simulator is an HTTP/2 TLS server on 127.0.0.1 that requires a client certificate from its
"Apple" CA and checks path, headers and body as APNs does. The push certificate is made the
normal way: `russet apns csr`'s key, a certificate from the fake Apple CA, `import`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from cryptography.hazmat.primitives import hashes, serialization
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from russet.apns.certificate import create_push_csr, push_identity
from russet.apns.pusher import PushPolicy
from russet.apns.tables import apns_push
from russet.app import create_app
from russet.apple.tables import ledger
from russet.config import Settings
from russet.mdm.channels import Channel
from russet.mdm.enrollments import DeviceFacts
from russet.mdm.tables import command_queue, enrollments
from russet.runtime import Russet
from russet.storage.db import utcnow
from russet.storage.tables import certificates
from simulators.apns import ApnsSimulator, FakeAppleCA
from simulators.device import Enrollment, SimDevice
from tests.cli_support import cli_invoker
from tests.conftest import PUBLIC_URL, new_profile
from tests.purge_support import all_found, find_identifiers
from tests.webhook_receiver import Receiver
from tests.webhook_receiver import drain as deliver_webhooks

TOPIC = "com.apple.mgmt.External.9a1b2c3d-0000-4000-8000-00000000cafe"  # as conftest's
FAST = PushPolicy(retry_base=0.05, retry_cap=0.2, poll_seconds=0.05, sweep_seconds=3600, connections=1)


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA()


@pytest.fixture
def sim(apple: FakeAppleCA) -> Iterator[ApnsSimulator]:
    with ApnsSimulator(ca_cert=apple.cert) as simulator:
        yield simulator


@pytest.fixture
def push_settings(settings: Settings, sim: ApnsSimulator, tmp_path: Path) -> Settings:
    assert sim.server_ca is not None  # RUSSET_APPLE_CA_FILE: the simulator's server CA, not Apple's
    ca_file = tmp_path / "apple-ca.pem"
    ca_file.write_bytes(sim.server_ca.public_bytes(serialization.Encoding.PEM))
    return replace(settings, apple_ca_file=str(ca_file), apns_url=sim.url)


def install_certificate(russet: Russet, apple: FakeAppleCA, tmp_path: Path, name: str = "push") -> str:
    csr = create_push_csr(russet.storage, tmp_path / f"{name}.csr", force=True)
    cert = apple.issue_push_certificate(csr.public_key(), TOPIC)
    russet.push.import_certificate(cert.public_bytes(serialization.Encoding.PEM))
    return cert.fingerprint(hashes.SHA256()).hex()


@pytest.fixture
def server(push_settings: Settings, apple: FakeAppleCA, tmp_path: Path) -> Iterator[Russet]:
    russet = Russet.open(push_settings)
    russet.pusher.policy = FAST
    install_certificate(russet, apple, tmp_path)
    yield russet
    russet.close()


def enroll(russet: Russet, udid: str | None = None, magic: str | None = None) -> dict[str, str]:
    udid = udid or os.urandom(8).hex().upper()
    channel = Channel(udid, udid, False, "device")
    fp = os.urandom(32).hex()
    russet.storage.enrollments.authenticate(channel, fp, TOPIC, DeviceFacts(serial_number="SN" + udid[:8]))
    return token_update(russet, udid, fp, magic)


def token_update(russet: Russet, udid: str, fp: str, magic: str | None = None) -> dict[str, str]:
    token = os.urandom(32)
    magic = magic or str(uuid.uuid4()).upper()
    channel = Channel(udid, udid, False, "device")
    russet.storage.enrollments.token_update(channel, fp, TOPIC, token, magic, None, False)
    return {"udid": udid, "token": token.hex(), "magic": magic, "fp": fp}


def enqueue(russet: Russet, *udids: str, request_type: str = "DeviceInformation") -> None:
    russet.devices.send_command(list(udids), {"RequestType": request_type}, created_by="tests")


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def drain(russet: Russet) -> int:
    try:
        return await russet.pusher.drain_all()
    finally:
        await russet.gateway.aclose()


def state(russet: Russet, udid: str) -> dict[str, Any]:
    found = russet.pusher.state.device(udid)
    assert found is not None
    return found


def pushes_to(sim: ApnsSimulator, token: str) -> int:
    return sum(1 for r in sim.received if r.token == token)


def connected(russet: Russet, *devices: dict[str, str]) -> None:
    """The devices answered their push (connected now): a command queued later is pushed again."""
    time.sleep(0.002)  # strictly after the push on a coarse clock
    russet.storage.enrollments.touch({d["udid"]: utcnow() for d in devices})
    time.sleep(0.002)


# -- the push itself ---------------------------------------------------------------------------


def test_enqueue_pushes_once_per_device_with_apns_headers_and_body(
    server: Russet, sim: ApnsSimulator
) -> None:
    a, b = enroll(server), enroll(server)
    before = int(time.time())
    for request_type in ("DeviceInformation", "SecurityInfo", "ProfileList"):
        enqueue(server, a["udid"], b["udid"], request_type=request_type)
    assert run(drain(server)) == 2
    assert len(sim.received) == 2  # three commands each, one push each
    by_token = {r.token: r for r in sim.received}
    for device in (a, b):
        got = by_token[device["token"]]
        assert got.method == "POST" and got.path == f"/3/device/{device['token']}"
        assert got.headers["apns-push-type"] == "mdm" and got.headers["apns-topic"] == TOPIC
        assert got.headers["apns-priority"] == "10"
        assert int(got.headers["apns-expiration"]) >= before + 86400
        assert got.headers["content-type"] == "application/json"
        assert json.loads(got.body) == {"mdm": device["magic"]}
        assert got.certificate_topic == TOPIC and (got.status, got.reason) == (200, None)
        pushed = state(server, device["udid"])
        assert pushed["outcome"] == "delivered" and pushed["last_status"] == 200
        assert pushed["last_apns_id"] == got.apns_id and not pushed["requested"]
    # Nothing more to push until something new is queued.
    assert run(drain(server)) == 0 and len(sim.received) == 2

    # The ledger: Token, PushMagic, topic sent, apns-id received, per push, about the device.
    server.ledger.flush()
    fp = server.ledger.fingerprint
    with server.storage.engine.connect() as conn:
        rows = conn.execute(select(ledger).where(ledger.c.service == "apns")).all()
    assert len(rows) == 8
    for device in (a, b):
        mine = {r.field: r for r in rows if r.subject_fp == fp(device["udid"])}
        assert set(mine) == {"Token", "PushMagic", "apns-id"}
        assert mine["Token"].value_fp == fp(device["token"])
        assert mine["PushMagic"].value_fp == fp(device["magic"])
        assert mine["apns-id"].value_fp == fp(by_token[device["token"]].apns_id)
        assert {r.status for r in mine.values()} == {200}
        assert mine["Token"].endpoint == "POST /3/device/{token}" and mine["Token"].connection == "default"
    topics = [r for r in rows if r.field == "topic"]
    assert len(topics) == 2 and {r.value_fp for r in topics} == {fp(TOPIC)}


def test_ledger_report_counts_every_push_across_batches(server: Russet, sim: ApnsSimulator) -> None:
    """Batches of 3 (claimed ahead, outcomes stored while the next batch goes out): the report
    counts one row per field per push, whatever the answer, and each device's outcome is stored."""
    server.pusher.policy = replace(FAST, batch=3)
    devices = [enroll(server) for _ in range(7)]
    dead, busy = devices[1], devices[5]
    sim.inject(dead["token"], 410, "Unregistered")
    sim.inject(busy["token"], 503, "ServiceUnavailable")
    enqueue(server, *(d["udid"] for d in devices))
    assert run(drain(server)) == 7
    report = {(r["field"], r["direction"]): r for r in server.ledger.report(service="apns")}
    counts = {key: (r["times"], r["distinct_subjects"]) for key, r in report.items() if r["times"]}
    assert counts == {
        ("Token", "sent"): (7, 7),
        ("PushMagic", "sent"): (7, 7),
        ("topic", "sent"): (7, 0),  # about the organisation, not a device
        ("apns-id", "received"): (5, 5),  # with each 200
        ("reason", "received"): (2, 2),  # with each refusal
    }
    outcomes = {d["udid"]: state(server, d["udid"])["outcome"] for d in devices}
    assert outcomes.pop(dead["udid"]) == "token_dead" and outcomes.pop(busy["udid"]) == "retrying"
    assert set(outcomes.values()) == {"delivered"}
    assert state(server, busy["udid"])["requested"] and not state(server, dead["udid"])["requested"]


def test_pushes_respect_the_servers_stream_limit(
    push_settings: Settings, apple: FakeAppleCA, tmp_path: Path
) -> None:
    with ApnsSimulator(ca_cert=apple.cert, max_concurrent_streams=3, record=False) as small:
        assert small.server_ca_file is not None
        russet = Russet.open(
            replace(push_settings, apple_ca_file=str(small.server_ca_file), apns_url=small.url)
        )
        try:
            install_certificate(russet, apple, tmp_path)
            devices = [enroll(russet) for _ in range(40)]
            enqueue(russet, *(d["udid"] for d in devices))
            assert run(drain(russet)) == 40
            assert small.stats()["by_status"] == {200: 40}
        finally:
            russet.close()


# -- Apple's answers ---------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "reason"), [(410, "Unregistered"), (400, "BadDeviceToken")])
def test_dead_token_is_not_pushed_until_the_next_token_update(
    server: Russet, sim: ApnsSimulator, status: int, reason: str
) -> None:
    dead, alive = enroll(server), enroll(server)
    sim.inject(dead["token"], status, reason)
    enqueue(server, dead["udid"], alive["udid"])
    run(drain(server))
    got = state(server, dead["udid"])
    assert got["outcome"] == "token_dead" and got["token_dead"] and got["last_reason"] == reason
    assert state(server, alive["udid"])["outcome"] == "delivered"

    connected(server, alive)
    enqueue(server, dead["udid"], alive["udid"])
    run(drain(server))
    assert pushes_to(sim, dead["token"]) == 1 and pushes_to(sim, alive["token"]) == 2
    assert state(server, dead["udid"])["outcome"] == "token_dead"
    # On demand too: refused without sending.
    results = run(_push_now(server, [dead["udid"]]))
    assert results[0]["outcome"] == "token_dead" and not results[0]["pushed"]
    assert pushes_to(sim, dead["token"]) == 1
    assert server.pusher.status()["dead_tokens"] == 1

    # A TokenUpdate brings it back (same token or a new one).
    time.sleep(0.01)
    fresh = token_update(server, dead["udid"], dead["fp"])
    assert not state(server, dead["udid"])["token_dead"]
    enqueue(server, dead["udid"])
    run(drain(server))
    assert pushes_to(sim, fresh["token"]) == 1
    assert state(server, dead["udid"])["outcome"] == "delivered"


async def _push_now(russet: Russet, ids: list[str]) -> list[dict[str, Any]]:
    try:
        return await russet.pusher.push_devices(ids)
    finally:
        await russet.gateway.aclose()


@pytest.mark.parametrize("reason", ["BadCertificate", "BadCertificateEnvironment", "Forbidden"])
def test_certificate_refused_stops_pushing_until_a_new_certificate(
    server: Russet, sim: ApnsSimulator, apple: FakeAppleCA, tmp_path: Path, reason: str, caplog: Any
) -> None:
    a, b = enroll(server), enroll(server)
    sim.inject(None, 403, reason, times=None)
    enqueue(server, a["udid"], b["udid"])
    run(drain(server))
    assert sim.stats()["by_status"] == {403: 2}
    assert "pushing is stopped" in caplog.text
    status = server.pusher.status()
    assert status["stopped"] and not status["pushing"] and status["stopped_because"]["reason"] == reason
    assert state(server, a["udid"])["outcome"] == "stopped" and state(server, a["udid"])["requested"]

    sim.clear_faults()
    enqueue(server, a["udid"], b["udid"])
    assert run(drain(server)) == 0 and sim.count == 2  # nothing sent while stopped
    results = run(_push_now(server, [a["udid"]]))
    assert results[0]["outcome"] == "stopped" and sim.count == 2

    install_certificate(server, apple, tmp_path, "renewed")  # another certificate lifts the stop
    assert server.pusher.status()["pushing"]
    assert run(drain(server)) == 2
    assert state(server, a["udid"])["outcome"] == "delivered" and sim.by_status[200] == 2


def test_topic_disallowed_stops_pushing(server: Russet, sim: ApnsSimulator) -> None:
    a = enroll(server)
    sim.inject(a["token"], 400, "TopicDisallowed")
    enqueue(server, a["udid"])
    run(drain(server))
    assert server.pusher.status()["stopped"]


def test_throttling_and_unavailability_are_retried_without_holding_up_others(
    server: Russet, sim: ApnsSimulator
) -> None:
    # Retries due after 0.5-1 s: long enough that the "not due yet" pass below comes before them
    # on a loaded machine (FAST's 50 ms did not), short enough to wait for.
    server.pusher.policy = replace(FAST, retry_base=0.5, retry_cap=0.5)
    slow, down, fine = enroll(server), enroll(server), enroll(server)
    sim.inject(slow["token"], 429, times=2)
    sim.inject(down["token"], 503, "ServiceUnavailable")
    enqueue(server, slow["udid"], down["udid"], fine["udid"])
    assert run(drain(server)) == 3
    assert state(server, fine["udid"])["outcome"] == "delivered"  # at once, on the first pass
    for device, reason in ((slow, "TooManyRequests"), (down, "ServiceUnavailable")):
        got = state(server, device["udid"])
        assert got["outcome"] == "retrying" and got["attempts"] == 1 and got["last_reason"] == reason
        assert got["retry_at"] is not None and got["requested"]
    assert run(drain(server)) == 0  # backoff: not due yet

    async def until_delivered() -> None:
        task = asyncio.create_task(server.pusher.run())
        try:
            for _ in range(200):
                await asyncio.sleep(0.05)
                if all(state(server, d["udid"])["outcome"] == "delivered" for d in (slow, down)):
                    return
            raise AssertionError("not delivered")
        finally:
            task.cancel()
            await server.gateway.aclose()

    run(until_delivered())
    assert pushes_to(sim, slow["token"]) == 3 and pushes_to(sim, down["token"]) == 2
    assert pushes_to(sim, fine["token"]) == 1
    assert state(server, slow["udid"])["attempts"] == 0


def test_retries_give_up_after_max_attempts(server: Russet, sim: ApnsSimulator) -> None:
    server.pusher.policy = replace(FAST, max_retries=2, retry_base=0.001, retry_cap=0.001)
    a = enroll(server)
    sim.inject(a["token"], 500, times=None)
    enqueue(server, a["udid"])

    async def passes() -> None:
        try:
            for _ in range(5):
                await server.pusher.drain_all()
                await asyncio.sleep(0.01)
        finally:
            await server.gateway.aclose()

    run(passes())
    got = state(server, a["udid"])
    assert got["outcome"] == "failed" and got["last_status"] == 500 and not got["requested"]
    assert pushes_to(sim, a["token"]) == 3


def test_goaway_and_connection_loss_reconnect(server: Russet, sim: ApnsSimulator) -> None:
    a = enroll(server)

    async def scenario() -> None:
        try:
            enqueue(server, a["udid"])
            assert await server.pusher.drain_all() == 1
            sim.goaway("Shutdown")
            await asyncio.sleep(0.05)
            connected(server, a)
            enqueue(server, a["udid"])
            assert await server.pusher.drain_all() == 1
            assert state(server, a["udid"])["outcome"] == "delivered"
            # The connection drops without a word.
            loop = sim._loop
            assert loop is not None
            loop.call_soon_threadsafe(lambda: [c.abort() for c in list(sim._open)])
            await asyncio.sleep(0.05)
            connected(server, a)
            enqueue(server, a["udid"])
            assert await server.pusher.drain_all() == 1
        finally:
            await server.gateway.aclose()

    run(scenario())
    assert pushes_to(sim, a["token"]) == 3 and sim.by_status[200] == 3
    assert sim.stats()["connections"] == 3
    assert state(server, a["udid"])["outcome"] == "delivered"


def test_server_unreachable_is_retried(server: Russet, sim: ApnsSimulator) -> None:
    a = enroll(server)
    sim.stop()
    enqueue(server, a["udid"])
    run(drain(server))
    got = state(server, a["udid"])
    assert got["outcome"] == "retrying" and got["last_status"] is None and "connect" in got["last_reason"]


def test_no_certificate_means_no_push(push_settings: Settings, sim: ApnsSimulator) -> None:
    russet = Russet.open(push_settings)
    try:
        with russet.storage.engine.begin() as conn:
            russet.connections.connect(conn, "apns", "default")
        a = enroll(russet)
        enqueue(russet, a["udid"])
        assert run(drain(russet)) == 0
        results = run(_push_now(russet, [a["udid"]]))
        assert (
            results[0]["outcome"] == "no_certificate" and "no APNs push certificate" in results[0]["reason"]
        )
        assert russet.pusher.status()["problem"] == "no_certificate" and sim.count == 0
    finally:
        russet.close()


def test_disconnected_apns_sends_nothing(server: Russet, sim: ApnsSimulator) -> None:
    a = enroll(server)
    server.ledger_admin.disconnect("apns", "default", purge=False)
    enqueue(server, a["udid"])
    assert run(drain(server)) == 0
    results = run(_push_now(server, [a["udid"]]))
    assert results[0]["outcome"] == "disconnected" and not results[0]["pushed"]
    assert sim.count == 0
    server.ledger.flush()
    with server.storage.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ledger)).scalar_one() == 0


def test_sweep_repushes_unseen_devices_with_backoff(server: Russet, sim: ApnsSimulator) -> None:
    server.pusher.policy = replace(FAST, sweep_base=300, sweep_cap=1200)
    a, seen, idle = enroll(server), enroll(server), enroll(server)
    enqueue(server, a["udid"], seen["udid"])
    run(drain(server))
    store = server.pusher.state
    t0 = utcnow()
    assert store.sweep(t0) == 0  # just pushed
    server.storage.enrollments.touch({seen["udid"]: t0 + timedelta(seconds=1)})  # it came back
    assert store.sweep(t0 + timedelta(minutes=4)) == 0
    assert store.sweep(t0 + timedelta(minutes=6)) == 1  # a only: pending, not seen since
    assert state(server, a["udid"])["sweep_count"] == 1
    # The pushed sweep waits twice as long next time, up to the cap.
    with server.storage.engine.begin() as conn:
        conn.execute(update(apns_push).values(requested_at=None))
    run(_push_now(server, [a["udid"]]))
    nxt = state(server, a["udid"])["next_sweep_at"]
    assert nxt is not None
    assert store.sweep(t0 + timedelta(minutes=9)) == 0
    assert store.sweep(t0 + timedelta(minutes=11)) == 1
    assert pushes_to(sim, idle["token"]) == 0  # nothing pending: never swept
    # A device with pending commands but never pushed is found too.
    with server.storage.engine.begin() as conn:
        conn.execute(apns_push.delete().where(apns_push.c.enrollment_id == seen["udid"]))
        server.storage.enrollments.touch({})
    assert store.sweep(t0 + timedelta(minutes=11)) == 1
    assert state(server, seen["udid"])["requested"]


def test_two_workers_never_push_the_same_request(server: Russet, push_settings: Settings) -> None:
    other = Russet.open(push_settings)
    try:
        devices = [enroll(server) for _ in range(30)]
        enqueue(server, *(d["udid"] for d in devices))
        now = utcnow()
        lease = timedelta(minutes=5)
        first = server.pusher.state.claim(20, now, lease)
        second = other.pusher.state.claim(20, now, lease)
        assert len(first) == 20 and len(second) == 10
        assert not {t.enrollment_id for t in first} & {t.enrollment_id for t in second}
        assert server.pusher.state.claim(20, now, lease) == []
    finally:
        other.close()


# -- push economy: one push per device until it connects -----------------------------------------


def held(russet: Russet, udid: str) -> dict[str, Any]:
    got = state(russet, udid)
    assert got["requested"], "a request queued while the push is outstanding is kept, not lost"
    return got


def test_commands_queued_before_the_device_connects_make_one_push_end_to_end(
    server: Russet, sim: ApnsSimulator
) -> None:
    """A real (simulated) device: five commands queued one after another, the pusher running
    between them, make one push; the device connects and fetches all five; the requests they made
    meanwhile are then dropped, and the next command makes one new push."""
    device = SimDevice(Enrollment.from_profile(new_profile(server)), path_only=True)
    headers = {"Authorization": f"Bearer {server.storage.api_keys.create('economy')}"}
    # Outside `with`, the app's lifespan does not run: the test drains and flushes itself.
    with contextlib.closing(TestClient(create_app(server), base_url=PUBLIC_URL)) as client:
        device.enroll(client)
        token = device.push_token.hex()
        queued = []
        kinds = ("DeviceInformation", "SecurityInfo", "ProfileList", "CertificateList", "ProfileList")
        for request_type in kinds:
            answer = client.post(
                "/api/v1/commands",
                json={"devices": [device.udid], "command": {"RequestType": request_type}},
                headers=headers,
            )
            assert answer.status_code == 201, answer.text
            queued.append(answer.json()["commands"][0]["command_uuid"])
            run(drain(server))  # as the running pusher would, between two commands
        assert pushes_to(sim, token) == 1
        assert held(server, device.udid)["outcome"] == "delivered"

        # The push brings the device: it fetches every command queued meanwhile.
        fetched = []
        response = device.connect(client, device.report_message("Idle"))
        while (command := SimDevice.command_of(response)) is not None:
            fetched.append(command["CommandUUID"])
            response = device.connect(client, device.report_message("Acknowledged", command["CommandUUID"]))
        assert fetched == queued
        server.flush_last_seen()  # what the lifespan's flusher does every second
        assert run(drain(server)) == 0 and pushes_to(sim, token) == 1
        assert not state(server, device.udid)["requested"]  # answered by the connection: dropped

        answer = client.post(
            "/api/v1/commands",
            json={"devices": [device.udid], "command": {"RequestType": "DeviceInformation"}},
            headers=headers,
        )
        assert answer.status_code == 201
        assert run(drain(server)) == 1 and pushes_to(sim, token) == 2


def test_a_push_in_flight_holds_new_requests_until_its_outcome(server: Russet, sim: ApnsSimulator) -> None:
    """Between the claim and the stored outcome (the push on its way to APNs), a new request for
    the device is not claimed by this or another worker."""
    a = enroll(server)
    enqueue(server, a["udid"])
    now, lease = utcnow(), timedelta(minutes=5)
    claimed = server.pusher.state.claim(10, now, lease)
    assert [t.enrollment_id for t in claimed] == [a["udid"]]
    assert state(server, a["udid"])["outcome"] == "pushing"
    enqueue(server, a["udid"])
    assert server.pusher.state.claim(10, utcnow(), lease) == []
    assert held(server, a["udid"])["outcome"] == "pushing"
    # A worker that died mid-push: its lease runs out and the request is pushed.
    assert [t.enrollment_id for t in server.pusher.state.claim(10, now + lease, lease)] == [a["udid"]]


def test_an_unanswered_push_is_repeated_only_when_the_sweep_would(server: Russet, sim: ApnsSimulator) -> None:
    server.pusher.policy = replace(FAST, sweep_base=300)
    a = enroll(server)
    enqueue(server, a["udid"])
    assert run(drain(server)) == 1
    enqueue(server, a["udid"])
    assert run(drain(server)) == 0 and pushes_to(sim, a["token"]) == 1
    got = held(server, a["udid"])
    store = server.pusher.state
    assert store.claim(10, utcnow() + timedelta(minutes=4), timedelta(minutes=5)) == []
    # The re-push is due (APNs may have dropped the push): the held request goes out.
    with server.storage.engine.begin() as conn:
        conn.execute(update(apns_push).values(next_sweep_at=utcnow() - timedelta(seconds=1)))
    assert run(drain(server)) == 1 and pushes_to(sim, a["token"]) == 2
    again = state(server, a["udid"])
    assert again["outcome"] == "delivered" and again["next_sweep_at"] != got["next_sweep_at"]
    assert not again["requested"]


def test_a_device_that_connected_but_missed_a_command_is_pushed(server: Russet, sim: ApnsSimulator) -> None:
    """The device connected after the request (its last-seen time says so) yet a command is still
    queued: it fetched the queue before the command was committed. That request is pushed."""
    a = enroll(server)
    enqueue(server, a["udid"])
    assert run(drain(server)) == 1
    enqueue(server, a["udid"])
    held(server, a["udid"])
    connected(server, a)  # after the request, but nothing was fetched: both commands still queued
    assert run(drain(server)) == 1 and pushes_to(sim, a["token"]) == 2
    # A request made before a connection that fetched everything is dropped instead.
    enqueue(server, a["udid"])
    with server.storage.engine.begin() as conn:
        conn.execute(update(command_queue).values(status="acknowledged"))
    connected(server, a)
    assert run(drain(server)) == 0 and pushes_to(sim, a["token"]) == 2
    assert not state(server, a["udid"])["requested"]


def test_concurrent_queueing_by_two_processes_makes_one_push(
    server: Russet, sim: ApnsSimulator, push_settings: Settings
) -> None:
    """Two server processes (two Russet instances on one database), each queueing a command for
    the same devices at the same moment and each running its pusher: one push per device."""
    other = Russet.open(push_settings)
    other.pusher.policy = FAST
    try:
        devices = [enroll(server) for _ in range(8)]
        udids = [d["udid"] for d in devices]

        def queue_and_push(russet: Russet, start: threading.Barrier, errors: list[BaseException]) -> None:
            try:
                start.wait()
                for udid in udids:
                    enqueue(russet, udid)
                    run(drain(russet))
            except BaseException as exc:  # reported below, on the test's thread
                errors.append(exc)

        for round_ in range(3):
            start = threading.Barrier(2)
            errors: list[BaseException] = []
            threads = [
                threading.Thread(target=queue_and_push, args=(r, start, errors)) for r in (server, other)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not errors, errors
            assert run(drain(server)) == 0 and run(drain(other)) == 0
            assert [pushes_to(sim, d["token"]) for d in devices] == [round_ + 1] * len(devices)
            connected(server, *devices)
            with server.storage.engine.begin() as conn:  # the devices fetched everything
                conn.execute(update(command_queue).values(status="acknowledged"))
    finally:
        other.close()


# -- API and CLI ---------------------------------------------------------------------------------


@pytest.fixture
def cli_env(push_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    extra = {
        "RUSSET_PUSH_TOPIC": TOPIC,
        "RUSSET_APPLE_CA_FILE": push_settings.apple_ca_file or "",
        "RUSSET_APNS_URL": push_settings.apns_url,
    }
    return cli_invoker(push_settings, monkeypatch, extra)


def test_api_push_status_and_device(server: Russet, sim: ApnsSimulator) -> None:
    a, b = enroll(server), enroll(server)
    sim.inject(b["token"], 410)
    headers = {"Authorization": f"Bearer {server.storage.api_keys.create('push-tests')}"}
    with TestClient(create_app(server), base_url="https://mdm.example.test") as client:
        answer = client.post("/api/v1/push", json={"devices": [a["udid"], b["udid"]]}, headers=headers)
        assert answer.status_code == 200, answer.text
        results = {r["device"]: r for r in answer.json()["results"]}
        assert results[a["udid"]]["outcome"] == "delivered" and results[a["udid"]]["apns_id"]
        assert results[b["udid"]]["outcome"] == "token_dead" and results[b["udid"]]["status"] == 410
        assert client.post("/api/v1/push", json={"devices": ["nope"]}, headers=headers).status_code == 404
        status = client.get("/api/v1/push/status", headers=headers).json()
        assert status["pushing"] and status["certificate"]["topic"] == TOPIC
        assert status["by_outcome"] == {"delivered": 1, "token_dead": 1} and status["dead_tokens"] == 1
        device = client.get(f"/api/v1/devices/{b['udid']}", headers=headers).json()
        assert device["push"]["outcome"] == "token_dead" and device["push"]["token_dead"]
        # A command queued through the API, after the device answered that push, is pushed by
        # the server's background task.
        connected(server, a)
        sent = client.post(
            "/api/v1/commands",
            json={"devices": [a["udid"]], "command": {"RequestType": "ProfileList"}},
            headers=headers,
        )
        assert sent.status_code == 201
        for _ in range(100):
            if pushes_to(sim, a["token"]) == 2:
                break
            time.sleep(0.05)
        assert pushes_to(sim, a["token"]) == 2


def test_cli_push_and_a_cli_enqueue_reaches_the_running_pusher(
    server: Russet, sim: ApnsSimulator, cli_env: Callable[..., Result]
) -> None:
    a = enroll(server)
    result = cli_env("push", a["udid"], "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["results"][0]["outcome"] == "delivered"
    assert "no enrollment" in cli_env("push", "unknown-device").stderr
    status = json.loads(cli_env("push", "--status", "--json").stdout)
    assert status["by_outcome"] == {"delivered": 1}
    # A command queued by another process (the CLI), after the device answered that push, is a
    # request the server's pusher drains.
    connected(server, a)
    assert cli_env("command", "send", a["udid"], "--type", "DeviceInformation").exit_code == 0
    assert state(server, a["udid"])["requested"]
    run(drain(server))
    assert pushes_to(sim, a["token"]) == 2


def test_disconnect_with_purge_destroys_credentials_and_push_data(
    server: Russet, sim: ApnsSimulator, cli_env: Callable[..., Result]
) -> None:
    devices = [enroll(server) for _ in range(3)]
    enqueue(server, devices[0]["udid"], devices[1]["udid"])
    run(drain(server))
    engine = server.storage.engine
    with engine.connect() as conn:
        keys = conn.execute(
            select(func.count()).where(
                certificates.c.kind == "apns_push", certificates.c.sealed_key.is_not(None)
            )
        ).scalar_one()
        push_rows = conn.execute(select(func.count()).select_from(apns_push)).scalar_one()
        # Token and PushMagic are sealed together: one column holds both.
        tokens = magics = conn.execute(
            select(func.count()).where(enrollments.c.sealed_push.is_not(None))
        ).scalar_one()
    assert (keys, push_rows, tokens, magics) == (1, 2, 3, 3)
    with engine.connect() as conn:
        cert_ids = set(
            conn.execute(
                select(certificates.c.fingerprint).where(certificates.c.kind == "apns_push")
            ).scalars()
        )
    assert all_found(find_identifiers(engine, cert_ids)) == cert_ids
    server.ledger.flush()  # the server's buffered ledger rows (the CLI is another process)

    result = cli_env("disconnect", "apns", "--purge", "--yes", "--json")
    assert result.exit_code == 0, result.output
    receipt = json.loads(result.stdout)
    assert receipt["credentials_destroyed"] == {"apns_push_key": keys}
    deleted = dict(receipt["data_deleted"])
    assert deleted.pop("ledger") > 0  # what the two pushes told Apple (fingerprints of fields)
    assert deleted == {
        "apns_push": push_rows,
        "enrollments.push_token": tokens,
        "enrollments.push_magic": magics,
        "certificates": 1,  # the push certificate row itself (issue #16: it used to stay)
        "apple_connections": 1,
    }
    assert receipt["tables"]["certificates"] == {"before": 1, "after": 0}
    assert receipt["tables"]["enrollments.sealed_push"] == {"before": 3, "after": 0}
    assert all(counts["after"] == 0 for counts in receipt["tables"].values())
    assert find_identifiers(engine, cert_ids) == {}  # the certificate row went with the purge
    assert any("identity.apple.com/pushcert" in step for step in receipt["remaining_on_apple_side"])
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).where(certificates.c.kind == "apns_push")).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(apns_push)).scalar_one() == 0
        assert (
            conn.execute(select(func.count()).where(enrollments.c.sealed_push.is_not(None))).scalar_one() == 0
        )
    assert push_identity(server.storage) is None

    # Pushes are refused from now on, and nothing reaches APNs.
    before = sim.count
    server.connections._loaded_at = 0  # the CLI ran in "another process"
    results = run(_push_now(server, [devices[0]["udid"]]))
    assert results[0]["outcome"] == "disconnected"
    enqueue(server, devices[2]["udid"])
    assert run(drain(server)) == 0 and sim.count == before
    assert json.loads(cli_env("push", devices[2]["udid"], "--json").stdout)["results"][0]["outcome"] == (
        "disconnected"
    )


def test_the_pusher_stops_when_cancelled_as_it_is_woken(russet: Russet) -> None:
    """A shutdown that comes with a wake-up (a command queued as the server stops) must end the
    loop: the server's lifespan awaits it. Python 3.11's asyncio.wait_for swallowed such a
    cancellation, and a test server's shutdown hung for ever."""

    async def main() -> int:
        stuck = 0
        for _ in range(5):
            task = asyncio.create_task(russet.pusher.run(sweep=False))
            await asyncio.sleep(0.05)  # idle, waiting to be woken
            russet.pusher.wake()
            await asyncio.sleep(0)  # the wake-up lands ...
            task.cancel()  # ... in the same step as the cancellation
            done, _ = await asyncio.wait({task}, timeout=2)
            if not done:
                stuck += 1
                task.cancel()
                await asyncio.wait({task}, timeout=2)
        return stuck

    assert asyncio.run(main()) == 0


def test_dead_tokens_reach_the_webhooks(server: Russet, sim: ApnsSimulator) -> None:
    """The pusher's outcomes become `push.failed` events (issue #19), published off the event loop."""
    with Receiver() as receiver:
        server.webhooks.add(receiver.url, ["push.failed"])
        dead, alive = enroll(server), enroll(server)
        sim.inject(dead["token"], 410, "Unregistered")
        enqueue(server, dead["udid"], alive["udid"])
        run(drain(server))  # asyncio.run waits for the worker thread that publishes
        deliver_webhooks(server)
    bodies = [json.loads(r.body) for r in receiver.received]
    assert [(b["type"], b["device_id"], b["data"]) for b in bodies] == [
        ("push.failed", dead["udid"], {"outcome": "token_dead", "reason": "Unregistered", "apns_status": 410})
    ]
