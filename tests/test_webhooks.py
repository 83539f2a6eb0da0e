"""Webhooks (issue #19): a receiver that is down for a while then up gets every event once, in
order per device, signed; NanoMDM's shape; secrets sealed; the surfaces and their roles."""

from __future__ import annotations

import base64
import json
import plistlib
import time
from collections import defaultdict
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from russet.runtime import Russet
from russet.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from russet.webhooks.tables import webhook_endpoints, webhook_outbox
from simulators.device import SimDevice
from tests.webhook_receiver import Receiver, drain, fast_retries


def add(client: TestClient, headers: dict[str, str], url: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/api/v1/webhooks", json={"url": url, **extra}, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


def command(russet: Russet, device: SimDevice, request_type: str) -> str:
    sent = russet.devices.send_command([device.udid], {"RequestType": request_type}, created_by="tests")
    return str(sent["commands"][0]["command_uuid"])


def test_a_receiver_down_then_up_gets_every_event_once_in_order_per_device(
    russet: Russet, client: TestClient, make_device: Any, api_headers: dict[str, str]
) -> None:
    fast_retries(russet)
    with Receiver(down_for=7) as receiver:
        ours = add(client, api_headers, receiver.url + "/russet")
        nano = add(client, api_headers, receiver.url + "/nano", format="nanomdm")
        devices = [make_device() for _ in range(3)]
        expected: dict[str, list[str]] = defaultdict(list)
        for device in devices:  # enrolments interleaved with deliveries that fail
            device.enroll(client)
            expected[device.udid] += ["device.authenticated", "device.token_updated"]
            russet.webhooks.deliver_due()
        for device in devices:
            info = command(russet, device, "DeviceInformation")
            lock = command(russet, device, "DeviceLock")
            got = device.command_of(device.connect(client, device.report_message("Idle")))
            assert got is not None and got["CommandUUID"] == info
            got = device.command_of(device.connect(client, device.answer(got)))
            assert got is not None and got["CommandUUID"] == lock
            expected[device.udid] += ["command.acknowledged", "inventory.changed"]
            device.connect(client, device.report_message("NotNow", lock))
            expected[device.udid].append("command.not_now")
            russet.webhooks.deliver_due()
        for device in devices:
            got = device.command_of(device.connect(client, device.report_message("Idle")))
            assert got is not None
            chain = [{"ErrorCode": 12021, "ErrorDomain": "MCMDMErrorDomain", "USEnglishDescription": "no"}]
            device.connect(client, device.report_message("Error", got["CommandUUID"], ErrorChain=chain))
            expected[device.udid].append("command.error")
        devices[0].check_in(
            client, {"MessageType": "CheckOut", "Topic": devices[0].enrollment.topic, "UDID": devices[0].udid}
        )
        expected[devices[0].udid].append("device.checked_out")
        drain(russet)

    assert receiver.refused == 7  # it was down: 503s and closed connections, then retried
    by_path: dict[str, list[Any]] = defaultdict(list)
    for got in receiver.received:
        by_path[got.path].append(got)
        secret = (ours if got.path == "/russet" else nano)["secret"].encode()
        assert verify(secret, got.body, got.headers[SIGNATURE_HEADER])
        assert abs(int(got.headers[TIMESTAMP_HEADER]) - time.time()) < 120

    ours_bodies = [json.loads(g.body) for g in by_path["/russet"]]
    assert len({b["id"] for b in ours_bodies}) == len(ours_bodies)  # each event once
    seen: dict[str, list[str]] = defaultdict(list)
    for body in ours_bodies:
        seen[body["device_id"]].append(body["type"])
    assert seen == expected  # all of them, in order per device
    first = next(b for b in ours_bodies if b["type"] == "device.authenticated")
    assert first["data"]["SerialNumber"] and "Token" not in json.dumps(first)
    error = next(b for b in ours_bodies if b["type"] == "command.error")
    assert error["data"]["error_chain"][0]["ErrorCode"] == 12021

    nano_bodies = [json.loads(g.body) for g in by_path["/nano"]]
    assert len({b["event_id"] for b in nano_bodies}) == len(nano_bodies)
    topics: dict[str, list[str]] = defaultdict(list)
    for body in nano_bodies:
        event = body.get("checkin_event") or body["acknowledge_event"]
        topics[event["udid"]].append(body["topic"])
        raw = plistlib.loads(base64.b64decode(event["raw_payload"]))
        if "checkin_event" in body:
            assert body["topic"] == "mdm." + raw["MessageType"]
        else:
            assert raw["Status"] == event["status"] and raw["CommandUUID"] == event["command_uuid"]
    assert topics[devices[0].udid] == [
        "mdm.Authenticate", "mdm.TokenUpdate", "mdm.Connect", "mdm.Connect", "mdm.Connect", "mdm.CheckOut"
    ]  # fmt: skip

    log = client.get("/api/v1/webhooks/deliveries?limit=1000", headers=api_headers).json()
    assert {d["outcome"] for d in log} == {"delivered", "retry"}
    assert sum(d["outcome"] == "delivered" for d in log) == len(receiver.received)
    assert sum(d["status"] is None for d in log) >= 3  # closed connections: no HTTP status


def test_a_later_event_waits_for_the_earlier_one_of_its_device(
    russet: Russet, client: TestClient, make_device: Any, api_headers: dict[str, str]
) -> None:
    fast_retries(russet)
    with Receiver(down_for=1) as receiver:
        add(client, api_headers, receiver.url, events=["device.authenticated", "device.token_updated"])
        one, two = make_device(), make_device()
        one.enroll(client)
        assert russet.webhooks.deliver_due() == {"delivered": 0, "retry": 1, "failed": 0}
        two.enroll(client)
        time.sleep(0.05)
        drain(russet)
    order = [(json.loads(r.body)["device_id"], json.loads(r.body)["type"]) for r in receiver.received]
    assert order.index((one.udid, "device.authenticated")) < order.index((one.udid, "device.token_updated"))
    assert len(order) == 4


def test_an_event_given_up_no_longer_holds_the_next(
    russet: Russet, client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    fast_retries(russet)
    russet.webhooks.max_attempts = 2
    with Receiver(down_for=2) as receiver:
        add(client, api_headers, receiver.url)
        device.enroll(client)
        drain(russet)
    assert [json.loads(r.body)["type"] for r in receiver.received] == ["device.token_updated"]
    log = russet.webhooks.deliveries()
    assert [d["outcome"] for d in reversed(log)] == ["retry", "failed", "delivered"]


def test_a_row_is_claimed_by_one_sender(
    russet: Russet, client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    add(client, api_headers, "http://127.0.0.1:9/")
    device.enroll(client)
    from russet.storage.db import utcnow

    store = russet.webhooks._store
    due = store.due(utcnow(), 10)
    assert len(due) == 1  # the TokenUpdate waits for the Authenticate
    later = utcnow()
    assert store.claim(due[0].id, later, later.replace(year=later.year + 1))
    assert not store.claim(due[0].id, later, later.replace(year=later.year + 1))
    assert store.due(utcnow(), 10) == []  # held: nobody else sends it, nor its successor


def test_secrets_and_bodies_are_sealed_at_rest(
    russet: Russet, client: TestClient, device: SimDevice, api_headers: dict[str, str]
) -> None:
    made = add(client, api_headers, "https://hooks.example.test/in", format="nanomdm")
    device.enroll(client)
    with russet.storage.engine.connect() as conn:
        sealed = conn.execute(select(webhook_endpoints.c.sealed_secret)).scalar_one()
        bodies = conn.execute(select(webhook_outbox.c.sealed_body)).scalars().all()
    assert made["secret"].encode() not in sealed
    assert len(bodies) == 2
    assert all(
        device.unlock_token not in b and device.push_token not in b and b"raw_payload" not in b
        for b in bodies
    )
    listed = client.get("/api/v1/webhooks", headers=api_headers).json()
    assert listed[0]["pending"] == 2 and "secret" not in listed[0]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"url": "ftp://example.test/"}, "http:// or https://"),
        ({"url": "https://api.apple.com/hook"}, "never Apple"),
        ({"url": "https://example.test/a b"}, "no spaces"),
        ({"url": "https://example.test/", "events": ["nope"]}, "unknown event"),
        ({"url": "https://example.test/", "format": "nanomdm", "events": ["inventory.changed"]}, "NanoMDM"),
    ],
)
def test_bad_receivers_are_refused_plainly(
    client: TestClient, api_headers: dict[str, str], body: dict[str, Any], said: str
) -> None:
    response = client.post("/api/v1/webhooks", json=body, headers=api_headers)
    assert response.status_code == 400 and said in response.text


def test_auditors_read_admins_change(russet: Russet, client: TestClient, api_headers: dict[str, str]) -> None:
    auditor = {"Authorization": f"Bearer {russet.storage.api_keys.create('reader', role='auditor')}"}
    made = add(client, api_headers, "https://hooks.example.test/in")
    assert client.get("/api/v1/webhooks", headers=auditor).status_code == 200
    assert client.get("/api/v1/webhooks/deliveries", headers=auditor).status_code == 200
    assert (
        client.post("/api/v1/webhooks", json={"url": "https://x.test/"}, headers=auditor).status_code == 403
    )
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=auditor).status_code == 403
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=api_headers).status_code == 200
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=api_headers).status_code == 404


def test_cli(run: Any) -> None:
    code, out = run(
        "webhook", "add", "https://hooks.example.test/in", "--events", "device.checked_out", "--json"
    )
    assert code == 0, out
    made = json.loads(out)
    assert made["events"] == ["device.checked_out"] and len(made["secret"]) > 30
    code, out = run("webhook", "list")
    assert code == 0 and "hooks.example.test" in out and made["secret"] not in out
    code, out = run("webhook", "add", "not a url")
    assert code != 0 and len(out.strip().splitlines()) == 1 and "Traceback" not in out
    code, out = run("webhook", "deliveries")
    assert code == 0 and "no deliveries" in out
    code, out = run("webhook", "remove", str(made["id"]))
    assert code == 0
    code, out = run("webhook", "remove", str(made["id"]))
    assert code != 0 and "no webhook" in out


def test_a_purge_is_told_with_its_receipt(
    russet: Russet, client: TestClient, api_headers: dict[str, str]
) -> None:
    with russet.storage.engine.begin() as conn:
        russet.connections.connect(conn, "abm", "main")
    with Receiver() as receiver:
        add(client, api_headers, receiver.url, events=["apple.purged", "apple.disconnected"])
        receipt = russet.connections.disconnect("abm", "main", purge=True)
        drain(russet)
    (body,) = [json.loads(r.body) for r in receiver.received]
    assert body["type"] == "apple.purged"
    assert body["data"]["service"] == "abm" and body["data"]["connection"] == "main"
    assert body["data"]["receipt"]["deleted_ids_sha256"] == receipt["deleted_ids_sha256"]


def test_expiring_credentials_are_told_once_per_threshold(russet: Russet) -> None:
    from datetime import timedelta

    from russet.storage.db import utcnow

    now = utcnow()
    soon, later, gone = now + timedelta(days=20), now + timedelta(days=100), now - timedelta(hours=1)
    credentials = [("abm", "main", soon), ("vpp", "loc", later), ("apns", "default", None)]
    assert russet.webhooks.warn_expiring(credentials) == 0  # nobody listens
    with Receiver() as receiver:
        russet.webhooks.add(receiver.url, ["apple.expiring"])
        assert russet.webhooks.warn_expiring(credentials) == 1
        assert russet.webhooks.warn_expiring(credentials) == 0  # already told
        assert russet.webhooks.warn_expiring([("abm", "main", gone)]) == 1  # a new expiry, passed
        assert russet.warn_expiring() == 0  # the root's task: no certificate, no Apple tokens here
        drain(russet)
        assert russet.webhooks.warn_expiring(credentials) == 0  # delivered: still told once
    told = [json.loads(r.body)["data"] for r in receiver.received]
    assert [(t["service"], t["connection"], t["threshold_days"]) for t in told] == [
        ("abm", "main", 30),
        ("abm", "main", 0),
    ]
    assert 19.9 < told[0]["days_left"] <= 20


def test_a_receiver_that_is_down_does_not_hold_up_another(
    russet: Russet, client: TestClient, make_device: Any, api_headers: dict[str, str]
) -> None:
    russet.webhooks.batch = 1  # the dead receiver's due rows come first: they must not hide the others
    add(client, api_headers, "http://127.0.0.1:9/")  # the discard port: nothing listens
    with Receiver() as receiver:
        add(client, api_headers, receiver.url)
        one, two = make_device(), make_device()
        one.enroll(client)
        two.enroll(client)
        assert russet.webhooks.deliver_due() == {"delivered": 4, "retry": 1, "failed": 0}
    assert [json.loads(r.body)["device_id"] for r in receiver.received] == [one.udid] * 2 + [two.udid] * 2
