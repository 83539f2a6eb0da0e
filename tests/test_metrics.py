"""Prometheus metrics at /metrics (issue #19 item 4): off unless RUSSET_METRICS=on, behind an API
key; requests by route template (never a raw path), the queue's gauges, Apple calls and pushes
counted as the gateway and the pusher report them, credential expiry; on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from russet.app import create_app
from russet.config import ConfigError, Settings
from russet.metrics import Metrics
from russet.metrics.fleet import FleetCollector, FleetSources
from russet.metrics.requests import UNMATCHED
from russet.runtime import Russet
from simulators.apns import ApnsSimulator, FakeAppleCA
from simulators.device import SimDevice
from tests.abm_support import connect as abm_connect
from tests.abm_support import simulated as abm_simulated
from tests.conftest import PUBLIC_URL
from tests.test_apns_push import FAST, enqueue, enroll, install_certificate
from tests.vpp_support import add as vpp_add
from tests.vpp_support import simulated as vpp_simulated

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, headers: dict[str, str]) -> tuple[str, Samples]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (n, labels) in samples if n == name]


@pytest.fixture
def metered(russet: Russet) -> Iterator[TestClient]:
    russet.settings = replace(russet.settings, metrics=True, access_log="off")
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as c:
        yield c


@pytest.fixture
def auditor(russet: Russet) -> dict[str, str]:
    return {"Authorization": f"Bearer {russet.storage.api_keys.create('prometheus', role='auditor')}"}


def test_off_by_default_and_the_setting(russet: Russet, auditor: dict[str, str]) -> None:
    assert Settings.from_env({}).metrics is False
    assert Settings.from_env({"RUSSET_METRICS": "on"}).metrics is True
    with pytest.raises(ConfigError, match="RUSSET_METRICS"):
        Settings.from_env({"RUSSET_METRICS": "yes please"})
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        assert client.get("/metrics", headers=auditor).status_code == 404


def test_metrics_need_an_api_key(metered: TestClient, auditor: dict[str, str]) -> None:
    assert metered.get("/metrics").status_code == 401
    assert metered.get("/metrics", headers={"Authorization": "Bearer rus_nope"}).status_code == 401
    text, _ = scrape(metered, auditor)  # the lowest role is enough
    assert "Bearer" not in text and auditor["Authorization"].split()[1] not in text


def test_checkin_and_command_round_trip_by_route_template_and_queue_gauges(
    metered: TestClient, device: SimDevice, auditor: dict[str, str], api_headers: dict[str, str]
) -> None:
    device.enroll(metered)  # Authenticate, TokenUpdate
    _, before = scrape(metered, auditor)
    assert value(before, "russet_devices_enrolled") == 1
    assert value(before, "russet_command_queue_depth") == 0

    sent = metered.post(
        "/api/v1/commands",
        json={"devices": [device.udid], "command": {"RequestType": "DeviceInformation"}},
        headers=api_headers,
    )
    assert sent.status_code == 201, sent.text
    [command_uuid] = [c["command_uuid"] for c in sent.json()["commands"]]
    _, queued = scrape(metered, auditor)
    assert value(queued, "russet_command_queue_depth") == 1
    assert value(queued, "russet_commands", status="queued") == 1
    assert value(queued, "russet_commands", status="acknowledged") == 0

    assert device.run_commands(metered) == ["DeviceInformation"]  # Idle -> command, Acknowledged -> none
    assert metered.get(f"/api/v1/devices/{device.udid}", headers=api_headers).status_code == 200
    assert metered.get(f"/api/v1/devices/{device.udid}-nobody", headers=api_headers).status_code == 404
    assert metered.get(f"/no/such/{device.udid}").status_code == 404
    text, after = scrape(metered, auditor)

    requests = "russet_http_requests_total"
    assert value(after, requests, route="/mdm/checkin", method="PUT", status="200") == 2
    assert value(after, requests, route="/mdm/connect", method="PUT", status="200") == 2
    assert value(after, requests, route="/api/v1/commands", method="POST", status="201") == 1
    assert value(after, requests, route="/api/v1/devices/{device_id}", method="GET", status="200") == 1
    assert value(after, requests, route="/api/v1/devices/{device_id}", method="GET", status="404") == 1
    assert value(after, requests, route=UNMATCHED, method="GET", status="404") == 1
    assert value(after, requests, route="/metrics", method="GET", status="200") == 2  # the earlier scrapes
    latency = "russet_http_request_duration_seconds_count"
    assert value(after, latency, route="/mdm/connect", method="PUT") == 2
    # The gauges match the queue as the API shows it (the answer made escrow queue a command too).
    listed = metered.get(f"/api/v1/devices/{device.udid}/commands", headers=api_headers).json()["commands"]
    statuses = [c["status"] for c in listed]
    assert statuses.count("acknowledged") == 1
    for status in ("queued", "sent", "notnow", "acknowledged", "error"):
        assert value(after, "russet_commands", status=status) == statuses.count(status), status
    pending = sum(statuses.count(s) for s in ("queued", "sent", "notnow"))
    assert value(after, "russet_command_queue_depth") == pending
    assert value(after, "russet_fleet_up") == 1

    # Bounded labels: templates only, never the device's id, serial or the command's UUID.
    routes = {labels["route"] for labels in labelled(after, requests)}
    templates = {"/mdm/checkin", "/mdm/connect", "/api/v1/commands", "/api/v1/devices/{device_id}"}
    templates.add("/metrics")
    assert routes == {*templates, UNMATCHED}
    for secret in (device.udid, device.serial, command_uuid):
        assert secret not in text


@pytest.fixture(scope="module")
def apple() -> FakeAppleCA:
    return FakeAppleCA()


@pytest.fixture
def sim(apple: FakeAppleCA) -> Iterator[ApnsSimulator]:
    with ApnsSimulator(ca_cert=apple.cert) as simulator:
        yield simulator


@pytest.fixture
def pushing(settings: Settings, sim: ApnsSimulator, apple: FakeAppleCA, tmp_path: Path) -> Iterator[Russet]:
    assert sim.server_ca is not None
    ca_file = tmp_path / "apple-ca.pem"
    ca_file.write_bytes(sim.server_ca.public_bytes(serialization.Encoding.PEM))
    pushed = Russet.open(
        replace(settings, apple_ca_file=str(ca_file), apns_url=sim.url, metrics=True, access_log="off")
    )
    pushed.pusher.policy = FAST
    install_certificate(pushed, apple, tmp_path)
    yield pushed
    pushed.close()


def test_apple_calls_and_pushes_counted_by_service_status_and_result(
    pushing: Russet, sim: ApnsSimulator
) -> None:
    auditor = {"Authorization": f"Bearer {pushing.storage.api_keys.create('scraper', role='auditor')}"}
    client = TestClient(create_app(pushing), base_url=PUBLIC_URL)  # no lifespan: the test drains
    alive, dead = enroll(pushing), enroll(pushing)
    sim.inject(dead["token"], 410, "Unregistered")
    enqueue(pushing, alive["udid"], dead["udid"])

    async def drain() -> int:
        try:
            return await pushing.pusher.drain_all()
        finally:
            await pushing.gateway.aclose()

    assert asyncio.run(drain()) == 2
    text, samples = scrape(client, auditor)
    assert value(samples, "russet_apple_calls_total", service="apns", status="200") == 1
    assert value(samples, "russet_apple_calls_total", service="apns", status="410") == 1
    assert value(samples, "russet_apns_pushes_total", result="delivered") == 1
    assert value(samples, "russet_apns_pushes_total", result="token_dead") == 1
    # The push certificate the fake Apple CA issued: about a year left.
    days = value(samples, "russet_credential_expiry_days", service="apns", connection="default")
    assert 300 < days < 400
    for device in (alive, dead):
        for secret in device.values():
            assert secret not in text


def test_credential_expiry_and_a_failing_database_read() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    expiries = [
        ("abm", "north", now + timedelta(days=10, hours=12)),
        ("vpp", "main", now - timedelta(days=2)),
        ("vpp", "undated", None),
    ]
    sources = FleetSources(fleet=lambda: (3, {"sent": 2, "error": 1}), expiries=lambda: expiries)
    got = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in FleetCollector(sources, now=lambda: now).collect()
        for s in family.samples
    }
    assert got[("russet_credential_expiry_days", (("connection", "north"), ("service", "abm")))] == 10.5
    assert got[("russet_credential_expiry_days", (("connection", "main"), ("service", "vpp")))] == -2
    assert not any(labels == (("connection", "undated"), ("service", "vpp")) for _, labels in got)
    assert got[("russet_command_queue_depth", ())] == 2 and got[("russet_devices_enrolled", ())] == 3
    assert got[("russet_commands", (("status", "queued"),))] == 0

    def broken() -> tuple[int, dict[str, int]]:
        raise RuntimeError("database gone")

    failing = FleetCollector(FleetSources(fleet=broken, expiries=lambda: []))
    assert [(f.name, [s.value for s in f.samples]) for f in failing.collect()] == [("russet_fleet_up", [0])]


def expected_days(iso: str) -> float:
    return (datetime.fromisoformat(iso) - datetime.now(UTC)) / timedelta(days=1)


def test_apps_and_books_and_abm_calls_and_token_expiry(tmp_path: Path, settings: Settings) -> None:
    metered_settings = replace(settings, metrics=True, access_log="off")
    with vpp_simulated(tmp_path, metered_settings) as (_, russet, token):
        client = TestClient(create_app(russet), base_url=PUBLIC_URL)
        auditor = {"Authorization": f"Bearer {russet.storage.api_keys.create('scraper', role='auditor')}"}
        vpp_add(russet, token)
        text, samples = scrape(client, auditor)
        assert value(samples, "russet_apple_calls_total", service="vpp", status="200") >= 1
        days = value(samples, "russet_credential_expiry_days", service="vpp", connection="main")
        assert days == pytest.approx(expected_days(russet.vpp.show("main")["token_expires_at"]), abs=0.01)
        assert token not in text
    with abm_simulated(tmp_path / "abm", metered_settings) as (sim, russet):
        client = TestClient(create_app(russet), base_url=PUBLIC_URL)
        auditor = {"Authorization": f"Bearer {russet.storage.api_keys.create('scraper-abm', role='auditor')}"}
        abm_connect(russet, sim)
        _, samples = scrape(client, auditor)
        assert value(samples, "russet_apple_calls_total", service="abm", status="200") >= 1
        days = value(samples, "russet_credential_expiry_days", service="abm", connection="main")
        shown = russet.abm.show("main")["access_token_expiry"]
        assert days == pytest.approx(expected_days(shown), abs=0.01) and days > 0


MULTIPROCESS_SCRIPT = """
import sys
from russet.metrics.fleet import FleetSources
from russet.metrics.registry import Metrics

metrics = Metrics(FleetSources(fleet=lambda: (0, {}), expiries=lambda: []))
if sys.argv[1] == "count":
    metrics.apple_call("abm", 200)
else:
    sys.stdout.write(metrics.render()[0].decode())
"""


def test_with_prometheus_multiproc_dir_a_scrape_sums_every_worker(tmp_path: Path) -> None:
    """Two worker processes count, a third (any worker answering the scrape) shows their sum."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    root = Path(__file__).resolve().parents[1]  # this checkout's russet, first on the path
    for _ in range(2):
        subprocess.run([sys.executable, "-c", MULTIPROCESS_SCRIPT, "count"], env=env, cwd=root, check=True)
    shown = subprocess.run(
        [sys.executable, "-c", MULTIPROCESS_SCRIPT, "render"],
        env=env,
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    samples = {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(shown)
        for s in family.samples
    }
    assert value(samples, "russet_apple_calls_total", service="abm", status="200") == 2
    assert value(samples, "russet_fleet_up") == 1  # the gauges once, read by the answering worker


def test_the_grafana_dashboard_uses_the_metrics_russet_exposes() -> None:
    path = Path(__file__).resolve().parents[1] / "docs" / "grafana-dashboard.json"
    dashboard = json.loads(path.read_text())
    soon = datetime.now(UTC) + timedelta(days=20)
    sources = FleetSources(fleet=lambda: (1, {"queued": 1}), expiries=lambda: [("apns", "default", soon)])
    metrics = Metrics(sources)
    metrics.requests.labels("/mdm/connect", "PUT", "200").inc()
    metrics.latency.labels("/mdm/connect", "PUT").observe(0.001)
    metrics.apple_call("apns", 200)
    metrics.pushes.labels("delivered").inc()
    exposed = {
        s.name
        for family in text_string_to_metric_families(metrics.render()[0].decode())
        for s in family.samples
    }
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"russet_[a-z_]+", target["expr"])
    }
    assert dashboard["title"] == "Russet" and len(dashboard["panels"]) >= 10
    assert {p["id"] for p in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
    assert used and used <= exposed, used - exposed
    assert "russet_credential_expiry_days" in used and "russet_command_queue_depth" in used


def test_the_middleware_counts_failures_as_500_and_odd_methods_as_other() -> None:
    metrics = Metrics(FleetSources(fleet=lambda: (0, {}), expiries=lambda: []))

    async def failing(scope: Any, receive: Any, send: Any) -> None:
        scope["route"] = type("Route", (), {"path": "/api/v1/boom/{id}"})()
        raise RuntimeError("boom")

    async def unrouted(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    async def main() -> None:
        with pytest.raises(RuntimeError):
            failed = {"type": "http", "method": "GET", "path": "/x/1"}
            await metrics.middleware(failing)(failed, receive, send)
        brewing = {"type": "http", "method": "BREW", "path": "/pot"}
        await metrics.middleware(unrouted)(brewing, receive, send)

    asyncio.run(main())
    counted = metrics.requests.collect()[0].samples
    got = {(s.labels["route"], s.labels["method"], s.labels["status"]) for s in counted if "_total" in s.name}
    assert got == {("/api/v1/boom/{id}", "GET", "500"), (UNMATCHED, "other", "404")}
