"""The web console: session cookie and CSRF, device search and keyset pages, queueing a command,
the ledger report page."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert

from russet.app import create_app
from russet.console.session import COOKIE
from russet.mdm.tables import enrollments
from russet.runtime import Russet
from simulators.device import SimDevice
from tests.test_ledger_surfaces import script_exchanges

CHROMIUM = "/usr/bin/chromium"


def seed(russet: Russet, count: int, **columns: Any) -> list[str]:
    """`count` enrolled devices straight into storage, ids D00000, D00001, ..."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"D{i:05d}",
            "device_id": f"D{i:05d}",
            "channel": "device",
            "enrollment_type": "device",
            "enabled": True,
            "awaiting_configuration": False,
            "created_at": now,
            **columns,
        }
        for i in range(count)
    ]
    with russet.storage.engine.begin() as conn:
        conn.execute(insert(enrollments), rows)
    return [r["id"] for r in rows]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in(client: TestClient, key: str) -> str:
    """Log in through the form; returns the session's CSRF token."""
    form = client.get("/console/login")
    response = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "api_key": key, "next": "/console/devices"},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/console/devices").text)


@pytest.fixture
def key(russet: Russet) -> str:
    return russet.storage.api_keys.create("alex")


@pytest.fixture
def console(client: TestClient, key: str) -> TestClient:
    log_in(client, key)
    return client


def test_pages_redirect_to_login_without_a_session(client: TestClient) -> None:
    for path in ("/console/devices", "/console/devices/X", "/console/ledger", "/console/connections"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/console/login?next=")
    forged = client.post("/console/logout", data={"csrf": "x"}, follow_redirects=False)
    assert forged.status_code == 303 and forged.headers["location"].startswith("/console/login")


def test_login_sets_a_sealed_strict_httponly_cookie_then_logout(
    client: TestClient, russet: Russet, key: str
) -> None:
    form = client.get("/console/login")
    bad = client.post("/console/login", data={"csrf": csrf_of(form.text), "api_key": "rus_wrong"})
    assert bad.status_code == 401 and "unknown or revoked API key" in bad.text
    response = client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "api_key": key, "next": "/console/ledger"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["location"] == "/console/ledger"
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert key not in cookie and key[4:] not in cookie  # sealed, and holds only the key's hash
    page = client.get("/console/devices")
    assert page.status_code == 200 and "alex" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]

    client.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False)
    client.cookies.delete(COOKIE)  # what the browser does with the expired cookie
    assert client.get("/console/devices", follow_redirects=False).status_code == 303


def test_open_redirect_and_tampered_cookie_are_refused(client: TestClient, key: str) -> None:
    form = client.get("/console/login?next=//evil.example/x")
    assert 'value="/console/dashboard"' in form.text
    log_in(client, key)
    client.cookies.set(COOKIE, client.cookies[COOKIE][:-4] + "AAAA", path="/console")
    assert client.get("/console/devices", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_the_session(console: TestClient, russet: Russet) -> None:
    assert console.get("/console/devices").status_code == 200
    russet.storage.api_keys.revoke("alex")
    assert console.get("/console/devices", follow_redirects=False).status_code == 303


def test_posts_without_the_csrf_token_are_refused(console: TestClient, russet: Russet) -> None:
    [device] = seed(russet, 1)
    for data in ({}, {"csrf": "forged"}):
        response = console.post(
            f"/console/devices/{device}/commands", data={**data, "request_type": "ProfileList"}
        )
        assert response.status_code == 403 and "CSRF" in response.text
        assert console.post("/console/logout", data=data).status_code == 403
    assert russet.storage.queue.for_enrollment(device, 10) == []
    login_form = console.get("/console/login")  # the login form is protected too
    assert console.post("/console/login", data={"api_key": "x", "csrf": "nope"}).status_code == 403
    assert login_form.status_code == 200


def walk(console: TestClient, query: str = "") -> list[list[str]]:
    """Follow "Next page" links from the first page; the device ids of each page."""
    pages = []
    url: str | None = "/console/devices" + query
    while url:
        html = console.get(url).text
        pages.append(re.findall(r'<a href="/console/devices/[^"]+"><code>([^<]+)</code>', html))
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else None
        assert len(pages) < 20
    return pages


def test_device_pages_are_complete_without_duplicates(console: TestClient, russet: Russet) -> None:
    # Every device has the same name and serial: only the keyset cursor tells them apart.
    ids = seed(russet, 123, device_name="Lab iPad", serial_number="SAME", model="iPad13,1")
    pages = walk(console)
    assert [len(p) for p in pages] == [50, 50, 23]
    flat = [i for p in pages for i in p]
    assert flat == sorted(ids) and len(set(flat)) == len(ids)


def test_device_search_by_udid_serial_and_name_across_pages(console: TestClient, russet: Russet) -> None:
    seed(russet, 130, device_name="Kiosk", serial_number="C02ABC")
    with russet.storage.engine.begin() as conn:
        conn.execute(
            insert(enrollments),
            [
                {
                    "id": f"UDID-{i:03d}",
                    "device_id": f"UDID-{i:03d}",
                    "channel": "device",
                    "enrollment_type": "device",
                    "enabled": True,
                    "awaiting_configuration": False,
                    "created_at": datetime.now(UTC),
                    "device_name": f"Alex's <b>Mac</b> {i}",
                    "serial_number": f"SER{i:03d}",
                }
                for i in range(60)
            ],
        )
    by_name = walk(console, "?q=alex%27s")
    assert [len(p) for p in by_name] == [50, 10]
    assert len({i for p in by_name for i in p}) == 60
    page = console.get("/console/devices?q=mac").text
    assert "Alex&#39;s &lt;b&gt;Mac&lt;/b&gt;" in page and "<b>Mac</b>" not in page  # escaped
    assert walk(console, "?q=ser007") == [["UDID-007"]]
    assert walk(console, "?q=udid-05") == [[f"UDID-{i:03d}" for i in range(50, 60)]]
    assert "No devices match" in console.get("/console/devices?q=nothing-like-this").text


def test_command_queued_from_the_form_shows_in_the_api(
    console: TestClient, russet: Russet, device: SimDevice, api_headers: dict[str, str]
) -> None:
    device.enroll(console)
    page = console.get(f"/console/devices/{device.udid}")
    assert page.status_code == 200 and "Queue a command" in page.text and device.serial in page.text
    response = console.post(
        f"/console/devices/{device.udid}/commands",
        data={
            "csrf": csrf_of(page.text),
            "request_type": "DeviceInformation",
            "params": '{"Queries": ["OSVersion"]}',
        },
        follow_redirects=False,
    )
    assert response.status_code == 303
    uuid = response.headers["location"].rsplit("/", 1)[1]
    api = console.get(f"/api/v1/commands/{uuid}", headers=api_headers).json()
    assert api["request_type"] == "DeviceInformation" and api["device"] == device.udid
    assert api["created_by"] == "alex" and api["status"] == "queued"
    detail = console.get(f"/console/commands/{uuid}")
    assert "DeviceInformation" in detail.text and "queued" in detail.text
    assert uuid in console.get(f"/console/devices/{device.udid}").text  # in recent commands


def test_bad_command_input_is_explained_and_nothing_is_queued(
    console: TestClient, russet: Russet, device: SimDevice
) -> None:
    device.enroll(console)
    csrf = csrf_of(console.get(f"/console/devices/{device.udid}").text)
    post = f"/console/devices/{device.udid}/commands"
    for data, reason in (
        ({"request_type": "DeviceInformation", "params": "{not json"}, "must be a JSON object"),
        ({"request_type": "DeviceInformation", "params": '{"Bogus": 1}'}, "unknown key"),
        ({"request_type": "Shutdown; DROP", "params": ""}, "choose one of the supported commands"),
    ):
        response = console.post(post, data={"csrf": csrf, **data})
        assert response.status_code == 400 and reason in response.text
    assert russet.storage.queue.for_enrollment(device.udid, 10) == []
    missing = console.post(
        "/console/devices/NOPE/commands", data={"csrf": csrf, "request_type": "ProfileList"}
    )
    assert missing.status_code == 404
    assert console.get("/console/devices/NOPE").status_code == 404
    assert console.get("/console/commands/NOPE").status_code == 404


def test_ledger_page_shows_the_report_rows(console: TestClient, russet: Russet, device: SimDevice) -> None:
    device.enroll(console)
    script_exchanges(russet, device)
    page = console.get("/console/ledger").text
    rows = re.findall(r"<tr(?: class=\"never\")?>\s*((?:<td>.*?</td>)+)", page)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows]
    token = next(c for c in cells if c[1] == "Token")
    assert token[4:6] == ["3", "1"]  # three pushes, one device
    assert len(cells) == len(russet.ledger.report())
    only_abm = console.get("/console/ledger?service=abm").text
    assert "Token" not in re.sub(r"<thead>.*?</thead>", "", only_abm, flags=re.S)
    bad = console.get("/console/ledger?since=yesterday-ish")
    assert bad.status_code == 400 and "expected e.g. 30d" in bad.text
    assert console.get("/console/connections").status_code == 200


@pytest.fixture
def served(russet: Russet) -> Iterator[str]:
    """The app on a real socket on 127.0.0.1, for a browser; yields its base URL."""
    import socket
    import threading

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(russet), host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def playwright_api() -> Any:
    """Python playwright's sync API driving Debian's chromium, or a skip saying what is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian's chromium is not installed ({CHROMIUM}; apt-get install chromium)")
    return pytest.importorskip(
        "playwright.sync_api",
        reason="the Python playwright package is not installed (pip install playwright)",
    )


def test_browser_login_search_and_queue(
    playwright_api: Any, served: str, russet: Russet, key: str, tmp_path: Path
) -> None:
    """Optional: a real browser through login, search, the device page and the command form."""
    [device] = seed(russet, 1, device_name="Front desk iPad", serial_number="DMPXYZ")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/devices?q=desk")
            assert "/console/login" in page.url  # redirected, and sent back after login
            page.fill("input[name=api_key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/console/devices?q=desk")
            page.click(f"text={device}")
            page.select_option("select[name=request_type]", "ProfileList")
            page.click("form.card button[type=submit]")
            page.wait_for_url(re.compile(r".*/console/commands/.+"))
            assert "ProfileList" in page.inner_text("h1")
            page.screenshot(path=str(tmp_path / "command.png"), full_page=True)
        finally:
            browser.close()
    [queued] = russet.storage.queue.for_enrollment(device, 10)
    assert queued["request_type"] == "ProfileList" and queued["created_by"] == "alex"


def test_browser_creates_a_group_and_sees_it_listed(
    playwright_api: Any, served: str, russet: Russet, key: str, tmp_path: Path
) -> None:
    """Optional: a real browser creates a static group through the form, adds a member, and finds
    the group in the list (the flash message, the redirect and the CSP-clean page included)."""
    [device] = seed(russet, 1, serial_number="C02LAB")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/groups")
            page.fill("input[name=api_key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/console/groups")
            page.fill("#new-group input[name=name]", "Front desk")
            page.click("#new-group button[value=create]")
            page.wait_for_url(f"{served}/console/groups/Front%20desk")
            assert "created (static, 0 members)" in page.inner_text(".flash-ok")
            page.fill("#members textarea[name=devices]", "C02LAB")
            page.click("#members button[value=add]")
            page.wait_for_selector(f"text={device}")
            page.click("nav >> text=Groups")
            page.wait_for_url(f"{served}/console/groups")
            row = page.inner_text("table tbody tr")
            assert "Front desk" in row and "static" in row and "1" in row
            page.screenshot(path=str(tmp_path / "groups.png"), full_page=True)
        finally:
            browser.close()
    assert russet.groups.show("Front desk")["members"] == [device]
