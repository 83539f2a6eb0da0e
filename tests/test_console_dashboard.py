"""The console's dashboard (issue #19 item 5): devices by enrollment state, every Apple
credential's expiry shaded amber from 30 days and red from 7 (expired: red, with the word);
`GET /` leads a browser to the console, which opens on the dashboard; `russet serve` prints the
console's address. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import insert, update

from russet.abm.tables import abm_servers
from russet.app import create_app
from russet.config import Settings
from russet.mdm.tables import enrollments
from russet.runtime import Russet
from simulators.dep import DepSimulator
from tests.abm_support import connect, simulated
from tests.conftest import PUBLIC_URL
from tests.test_console import log_in


def enroll(russet: Russet, prefix: str, count: int, **columns: Any) -> None:
    """`count` device channels straight into storage, with these column values."""
    now = datetime.now(UTC)
    rows = [
        {
            "id": f"{prefix}{i}",
            "device_id": f"{prefix}{i}",
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


def row(html: str, attribute: str, value: str) -> str:
    found = re.search(rf'<tr data-{attribute}="{re.escape(value)}"[^>]*>.*?</tr>', html, re.S)
    assert found, f"no row {attribute}={value}"
    return found.group(0)


def test_devices_by_enrollment_state(client: TestClient, russet: Russet) -> None:
    enroll(russet, "E", 3)
    enroll(russet, "W", 2, awaiting_configuration=True)
    enroll(russet, "U", 4, enabled=False)
    enroll(russet, "X", 1, enabled=False, awaiting_configuration=True)  # checked out mid-setup
    enroll(russet, "C", 5, channel="user")  # user channels are not devices
    assert russet.devices.enrollment_states() == {"enrolled": 3, "awaiting configuration": 2, "unenrolled": 5}
    log_in(client, russet.storage.api_keys.create("auditor-person", role="auditor"))  # any role may look
    page = client.get("/console/dashboard")
    assert page.status_code == 200
    assert re.search(r"<td>enrolled</td><td>3</td>", row(page.text, "state", "enrolled"))
    assert "<td>2</td>" in row(page.text, "state", "awaiting configuration")
    assert "<td>5</td>" in row(page.text, "state", "unenrolled")
    assert "<strong>10</strong>" in row(page.text, "state", "all")
    # No push certificate yet: listed, not shaded.
    apns = row(page.text, "credential", "apns/default")
    assert "none installed" in apns and "expiry-" not in apns


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings) as pair:
        yield pair


def test_apple_tokens_are_shaded_by_expiry(dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    now = datetime.now(UTC)
    for name, days in (("soon", 5), ("later", 20), ("gone", -1), ("fine", 200)):
        connect(russet, sim, name)
        with russet.storage.engine.begin() as conn:
            conn.execute(
                update(abm_servers)
                .where(abm_servers.c.name == name)
                .values(access_token_expiry=now + timedelta(days=days, hours=1))
            )
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        log_in(client, russet.storage.api_keys.create("operator-person", role="operator"))
        html = client.get("/console/dashboard").text
    soon, later = row(html, "credential", "abm/soon"), row(html, "credential", "abm/later")
    gone, fine = row(html, "credential", "abm/gone"), row(html, "credential", "abm/fine")
    assert 'class="expiry-red"' in soon and "<td>5</td>" in soon
    assert 'class="expiry-amber"' in later and "<td>20</td>" in later
    assert 'class="expiry-red"' in gone and "<td>expired</td>" in gone
    assert 'class=""' in fine and "<td>200</td>" in fine
    assert "ABM/ASM server token" in soon


def test_root_leads_to_the_console_which_opens_on_the_dashboard(client: TestClient, russet: Russet) -> None:
    root = client.get("/", follow_redirects=False)
    assert root.status_code == 303 and root.headers["location"] == "/console"
    assert client.get("/console", follow_redirects=False).headers["location"] == "/console/dashboard"
    signed_out = client.get("/console/dashboard", follow_redirects=False)
    assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/console/login")
    page = client.get("/console/devices")  # the sign-in form, where the console opens afterwards
    assert 'value="/console/devices"' in page.text
    form = client.get("/console/login")
    assert 'value="/console/dashboard"' in form.text
    log_in(client, russet.storage.api_keys.create("admin-person"))
    nav = re.search(r"<nav>(.*?)</nav>", client.get("/").text, re.S)
    assert nav and re.findall(r'href="([^"]+)"', nav.group(1))[0] == "/console/dashboard"


def test_serve_prints_the_console_url(
    invoke_cli: Callable[..., Result], settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    served: list[Any] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: served.append(sockets))
    result = invoke_cli("serve", "--port", "0")
    assert result.exit_code == 0, result.output
    assert f"Console at {settings.public_url}/console\n" in result.output
    assert served and len(served[0]) == 1
    with served[0][0] as sock:  # the socket serve bound, before its banner named it
        assert f"Listening on http://127.0.0.1:{sock.getsockname()[1]} " in result.output
