"""The console acting on Apple connections (issue #19 item 5): adding an ABM connection, loading
its token and syncing it with a self-refreshing status page; disconnecting and purging a
connection with its name typed as confirmation, then its receipt; and who may do what."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.config import Settings
from russet.console.abm import expiry_class
from russet.runtime import Russet
from simulators.dep import DepSimulator
from tests.abm_support import connect, device_count, simulated
from tests.conftest import PUBLIC_URL
from tests.test_console import log_in

DEVICES = 25


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings, devices=DEVICES) as pair:
        yield pair


@pytest.fixture
def web(dep: tuple[DepSimulator, Russet]) -> Iterator[TestClient]:
    with TestClient(create_app(dep[1]), base_url=PUBLIC_URL) as client:
        yield client


def signed_in(client: TestClient, russet: Russet, role: str) -> str:
    return log_in(client, russet.storage.api_keys.create(f"{role}-person", role=role))


def test_expiry_is_amber_from_30_days_and_red_from_7() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert expiry_class((now + timedelta(days=90)).isoformat(), now) == ""
    assert expiry_class((now + timedelta(days=29)).isoformat(), now) == "expiry-amber"
    assert expiry_class((now + timedelta(days=6)).isoformat(), now) == "expiry-red"
    assert expiry_class((now - timedelta(days=1)).isoformat(), now) == "expiry-red"
    assert expiry_class(None, now) == ""


def _wait_done(client: TestClient, name: str) -> str:
    for _ in range(300):
        text = client.get(f"/console/abm/{name}").text
        if "Sync running" not in text:
            return text
        time.sleep(0.05)
    raise AssertionError("the sync did not finish")


def test_admin_adds_loads_token_and_syncs(web: TestClient, dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    csrf = signed_in(web, russet, "admin")
    created = web.post("/console/abm", data={"csrf": csrf, "name": "school"}, follow_redirects=True)
    assert created.status_code == 200 and "created" in created.text
    pem = re.search(r'<pre id="certificate">(.*?)</pre>', created.text, re.S)
    assert pem
    cert = x509.load_pem_x509_certificate(pem.group(1).encode())
    wrong = web.post("/console/abm/school/token", data={"csrf": csrf}, files={"token": ("t.p7m", b"junk")})
    assert wrong.status_code == 400 and "flash-error" in wrong.text
    loaded = web.post(
        "/console/abm/school/token", data={"csrf": csrf}, files={"token": ("t.p7m", sim.token_for(cert))}
    )
    assert loaded.status_code == 200 and "Server token loaded" in loaded.text
    started = web.post("/console/abm/school/sync", data={"csrf": csrf}, follow_redirects=False)
    assert started.status_code == 303
    page = _wait_done(web, "school")
    assert f"Sync done: {DEVICES} devices listed" in page
    assert device_count(russet, "school") == DEVICES
    listing = web.get("/console/abm").text
    assert "school" in listing and "Example School" in listing


def test_purge_needs_the_name_typed_then_shows_a_verified_receipt(
    web: TestClient, dep: tuple[DepSimulator, Russet]
) -> None:
    sim, russet = dep
    connect(russet, sim)
    russet.run(russet.abm.sync_now("main"))
    assert device_count(russet) == DEVICES
    csrf = signed_in(web, russet, "admin")
    url = "/console/connections/abm/main/disconnect"
    refused = web.post(url, data={"csrf": csrf, "purge": "on", "confirm": "mai"})
    assert refused.status_code == 400 and "type its name exactly; nothing was done" in refused.text
    assert device_count(russet) == DEVICES
    assert [c["status"] for c in russet.ledger_admin.connections()] == ["active"]

    purged = web.post(url, data={"csrf": csrf, "purge": "on", "confirm": "main"})
    assert purged.status_code == 200, purged.text
    assert "signature verifies" in purged.text
    row = re.search(r"<tr><td>abm_devices</td><td>(\d+)</td><td>(\d+)</td></tr>", purged.text)
    assert row and row.groups() == (str(DEVICES), "0")
    assert device_count(russet) == 0
    assert [r["purged"] for r in russet.ledger_admin.receipts()] == [True]


def test_disconnect_without_purge_keeps_the_data(web: TestClient, dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    connect(russet, sim)
    russet.run(russet.abm.sync_now("main"))
    csrf = signed_in(web, russet, "admin")
    shown = web.post("/console/connections/abm/main/disconnect", data={"csrf": csrf})
    assert shown.status_code == 200 and "Disconnected: abm main" in shown.text
    assert device_count(russet) == DEVICES
    assert [c["status"] for c in russet.ledger_admin.connections()] == ["disconnected"]


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_operator_and_auditor_cannot_purge_add_or_sync(
    web: TestClient, dep: tuple[DepSimulator, Russet], role: str
) -> None:
    sim, russet = dep
    connect(russet, sim)
    csrf = signed_in(web, russet, role)
    listing = web.get("/console/connections")
    assert listing.status_code == 200 and 'name="confirm"' not in listing.text
    attempts: list[tuple[str, dict[str, Any]]] = [
        ("/console/connections/abm/main/disconnect", {"csrf": csrf, "purge": "on", "confirm": "main"}),
        ("/console/connections/abm/main/disconnect", {"csrf": csrf}),
        ("/console/abm", {"csrf": csrf, "name": "other"}),
        ("/console/abm/main/sync", {"csrf": csrf}),
    ]
    for url, data in attempts:
        response = web.post(url, data=data)
        assert response.status_code == 403, (url, response.text)
    assert [c["status"] for c in russet.ledger_admin.connections()] == ["active"]
    assert [c["name"] for c in russet.abm.list_connections()] == ["main"]
    assert russet.ledger_admin.receipts() == []
