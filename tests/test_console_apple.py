"""The console acting on Apple connections (issue #19 item 5): adding an ABM connection, loading
its token and syncing it with a self-refreshing status page; disconnecting and purging a
connection with its name typed as confirmation, then its receipt; and who may do what."""

from __future__ import annotations

import re
import threading
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
from russet.console.common import expiry_class
from russet.runtime import Russet
from simulators.dep import DepSimulator
from tests.abm_support import connect, device_count, simulated
from tests.conftest import PUBLIC_URL
from tests.test_console import CHROMIUM, log_in, playwright_api, served  # noqa: F401  (fixtures)

DEVICES = 25


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings, devices=DEVICES) as pair:
        yield pair


@pytest.fixture
def web(dep: tuple[DepSimulator, Russet]) -> Iterator[TestClient]:
    with TestClient(create_app(dep[1]), base_url=PUBLIC_URL) as client:
        yield client


@pytest.fixture
def russet(dep: tuple[DepSimulator, Russet]) -> Russet:
    """The Russet that trusts the DEP simulator, for `served` (the app on a real socket)."""
    return dep[1]


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
    early = web.post("/console/abm/school/sync", data={"csrf": csrf})
    assert early.status_code == 409 and "flash-error" in early.text and "Sync running" not in early.text
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


def _browser_login(page: Any, base: str, path: str, key: str) -> None:
    page.goto(f"{base}{path}")
    page.fill("input[name=api_key]", key)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}{path}")


def test_browser_adds_an_abm_connection_and_watches_its_sync(
    playwright_api: Any,  # noqa: F811
    served: str,  # noqa: F811
    dep: tuple[DepSimulator, Russet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A real browser: create the connection, upload the token file the simulator issued for its
    certificate, press Sync now and watch the self-refreshing page reach done, devices counted."""
    sim, russet = dep
    key = russet.storage.api_keys.create("alex")
    release = threading.Event()  # Apple's device listing waits until the browser saw the sync run
    route = sim._route

    def held(method: str, path: str, target: str, raw: bytes) -> Any:
        if path == "/server/devices":
            release.wait(30)
        return route(method, path, target, raw)

    monkeypatch.setattr(sim, "_route", held)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_login(page, served, "/console/abm", key)
            page.fill("#new-abm input[name=name]", "school")
            page.click("#new-abm button[type=submit]")
            page.wait_for_url(f"{served}/console/abm/school")
            cert = x509.load_pem_x509_certificate(page.inner_text("#certificate").encode())
            token = tmp_path / "school.p7m"
            token.write_bytes(sim.token_for(cert))
            page.set_input_files("#token input[name=token]", str(token))
            page.click("#token button[type=submit]")
            page.wait_for_selector("text=Server token loaded")
            page.click("text=Sync now")
            page.wait_for_selector("text=Sync running")
            assert "busy with sync" in page.inner_text("#status")
            release.set()
            page.wait_for_selector("text=Sync done", timeout=30_000)  # the page refreshes itself
            assert f"Sync done: {DEVICES} devices listed" in page.inner_text("#sync-state")
            assert page.inner_text("#devices") == str(DEVICES)
            page.screenshot(path=str(tmp_path / "abm.png"), full_page=True)
        finally:
            release.set()
            browser.close()
    assert device_count(russet, "school") == DEVICES


def test_browser_purges_by_typing_the_name_and_sees_the_receipt(
    playwright_api: Any,  # noqa: F811
    served: str,  # noqa: F811
    dep: tuple[DepSimulator, Russet],
    tmp_path: Path,
) -> None:
    """A real browser: a mistyped name purges nothing; the right one purges and shows the receipt,
    its per-table counts and that its signature verifies."""
    sim, russet = dep
    connect(russet, sim)
    russet.run(russet.abm.sync_now("main"))
    key = russet.storage.api_keys.create("alex")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            _browser_login(page, served, "/console/connections", key)
            page.fill("form.purge input[name=confirm]", "Main")
            page.click("form.purge button[type=submit]")
            assert "nothing was done" in page.inner_text(".flash-error")
            assert device_count(russet) == DEVICES
            page.fill("form.purge input[name=confirm]", "main")
            page.click("form.purge button[type=submit]")
            page.wait_for_selector("#verdict")
            assert "signature verifies" in page.inner_text("#verdict")
            assert "Purged: abm main" in page.inner_text("h1")
            assert f"abm_devices\t{DEVICES}\t0" in page.inner_text("#tables")
            assert '"purged": true' in page.inner_text("#receipt")
            page.screenshot(path=str(tmp_path / "receipt.png"), full_page=True)
        finally:
            browser.close()
    assert device_count(russet) == 0
