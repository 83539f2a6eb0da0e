"""The console's Apps and Books pages (issue #19 item 5): locations with their token expiry,
adding one by uploading its content token (and renewing it), a location's assets with licence
counts and its people, "Sync now", an asset's licences; all through `russet.vpp` as the API does,
against the Apps and Books simulator; refusals on the page with nothing stored; only admins act."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from simulators.vpp import VppSimulator
from tests.conftest import PUBLIC_URL
from tests.test_console import CHROMIUM, log_in, playwright_api, served  # noqa: F401  (fixtures)
from tests.vpp_support import BOOK, KEYNOTE, PAGES, add, deliver, simulated


@pytest.fixture
def vpp(tmp_path: Path, settings: Settings) -> Iterator[tuple[VppSimulator, Russet, str]]:
    with simulated(tmp_path, settings) as triple:
        yield triple


@pytest.fixture
def russet(vpp: tuple[VppSimulator, Russet, str]) -> Russet:
    return vpp[1]


@pytest.fixture
def web(russet: Russet) -> Iterator[TestClient]:
    with TestClient(create_app(russet), base_url=PUBLIC_URL) as client:
        yield client


def signed_in(client: TestClient, russet: Russet, role: str = "admin") -> str:
    return log_in(client, russet.storage.api_keys.create(f"{role}-person", role=role))


def on_app_loop(client: TestClient, work: Callable[[], Awaitable[Any]]) -> Any:
    """Call Apple the way a request would: on the app's event loop, where the gateway lives."""
    assert client.portal is not None
    return client.portal.call(work)


def upload(client: TestClient, url: str, csrf: str, token: bytes, **fields: str) -> Any:
    return client.post(url, data={"csrf": csrf, **fields}, files={"token": ("main.vpptoken", token)})


def test_add_a_location_then_see_assets_licences_and_people(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str]
) -> None:
    sim, russet, token = vpp
    csrf = signed_in(web, russet)
    assert "No Apps and Books locations yet" in web.get("/console/vpp").text
    added = upload(web, "/console/vpp", csrf, token.encode(), name="main")
    assert added.status_code == 200 and "Content token loaded for Main Campus" in added.text
    assert re.search(
        rf'<tr data-asset="{PAGES}"><td>{PAGES}</td><td>App</td><td>STDQ</td><td>0</td><td>5</td>', added.text
    )
    listing = web.get("/console/vpp").text
    assert re.search(r'<tr data-location="main">.*?Example School.*?Main Campus', listing, re.S)

    on_app_loop(web, lambda: russet.vpp.assign("main", KEYNOTE, serials=["C02CONSOLE1"]))
    on_app_loop(web, lambda: russet.vpp.create_user("main", email="pat@example.org"))
    shown = web.get("/console/vpp/main").text
    assert "pat@example.org" in shown
    held = web.get(f"/console/vpp/main/licences?adam_id={KEYNOTE}")
    assert held.status_code == 200 and "<td>C02CONSOLE1</td>" in held.text
    assert re.search(
        r'id="counts">App 361285480 \(STDQ\): \d+ assigned, \d+ available, 1 reserved', held.text
    )

    synced = web.post("/console/vpp/main/sync", data={"csrf": csrf})
    assert synced.status_code == 200 and "Synced: 3 assets in 1 pages" in synced.text


def test_renewing_the_token_updates_its_expiry(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str]
) -> None:
    sim, russet, token = vpp
    add(russet, token)
    csrf = signed_in(web, russet)
    renewed = sim.add_location(expires=sim.now() + timedelta(days=20))
    sim.location(renewed).mdm_info = sim.location(token).mdm_info
    shown = upload(web, "/console/vpp/main/token", csrf, renewed.encode())
    assert shown.status_code == 200 and "Content token loaded" in shown.text
    assert 'id="expiry" class="expiry-amber"' in shown.text


def test_refusals_are_shown_and_nothing_is_stored(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str]
) -> None:
    sim, russet, token = vpp
    csrf = signed_in(web, russet)
    junk = upload(web, "/console/vpp", csrf, b"not a token", name="main")
    assert junk.status_code == 400 and "flash-error" in junk.text
    missing = web.post("/console/vpp", data={"csrf": csrf, "name": "main"})
    assert missing.status_code == 400 and "choose the content token file" in missing.text
    bad_name = upload(web, "/console/vpp", csrf, token.encode(), name="no/slash")
    assert bad_name.status_code == 400 and "flash-error" in bad_name.text
    sim.location(token).mdm_info = {"id": "x", "name": "Other MDM", "metadata": "m"}
    taken = upload(web, "/console/vpp", csrf, token.encode(), name="main")
    assert taken.status_code == 409 and "Other MDM" in taken.text and "Take the location over" in taken.text
    assert russet.vpp.list_locations() == []
    assert web.post("/console/vpp/main/sync", data={"csrf": csrf}).status_code == 404
    assert upload(web, "/console/vpp/nope/token", csrf, token.encode()).status_code == 404
    assert upload(web, "/console/vpp", "stale", token.encode(), name="main").status_code == 403
    assert russet.vpp.list_locations() == []
    took = upload(web, "/console/vpp", csrf, token.encode(), name="main", take_over="on")
    assert took.status_code == 200 and "taken over from Other MDM" in took.text


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_admins_add_renew_or_sync(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str], role: str
) -> None:
    sim, russet, token = vpp
    add(russet, token)
    csrf = signed_in(web, russet, role)
    shown = web.get("/console/vpp/main")
    assert shown.status_code == 200 and PAGES in shown.text
    assert 'id="sync"' not in shown.text and 'id="token"' not in shown.text
    assert 'id="new-location"' not in web.get("/console/vpp").text
    assert web.get(f"/console/vpp/main/licences?adam_id={PAGES}").status_code == 200
    other = sim.add_location(location_name="Annex")
    assert upload(web, "/console/vpp", csrf, other.encode(), name="annex").status_code == 403
    assert upload(web, "/console/vpp/main/token", csrf, other.encode()).status_code == 403
    syncs = sum(sim.calls.values())
    assert web.post("/console/vpp/main/sync", data={"csrf": csrf}).status_code == 403
    assert sum(sim.calls.values()) == syncs
    assert [loc["name"] for loc in russet.vpp.list_locations()] == ["main"]


def test_dashboard_links_each_location_token(web: TestClient, vpp: tuple[VppSimulator, Russet, str]) -> None:
    sim, russet, token = vpp
    add(russet, token)
    signed_in(web, russet, "auditor")
    assert (
        '<a href="/console/vpp/main">Apps and Books content token</a>' in web.get("/console/dashboard").text
    )


def test_browser_adds_a_location(
    playwright_api: Any,  # noqa: F811
    served: str,  # noqa: F811
    vpp: tuple[VppSimulator, Russet, str],
    tmp_path: Path,
) -> None:
    """A real browser: upload a content token as a new location, land on its assets."""
    sim, russet, token = vpp
    (tmp_path / "main.vpptoken").write_text(token)
    key = russet.storage.api_keys.create("alex")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/vpp")
            page.fill("input[name=api_key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/console/vpp")
            page.fill("#new-location input[name=name]", "main")
            page.set_input_files("#new-location input[name=token]", str(tmp_path / "main.vpptoken"))
            page.click("#new-location button[type=submit]")
            page.wait_for_url(f"{served}/console/vpp/main")
            assert "Content token loaded" in page.inner_text(".flash-ok")
            assert PAGES in page.inner_text("#assets")
            page.click("#sync button")
            page.wait_for_selector("text=Synced: 3 assets")
        finally:
            browser.close()
    assert [loc["name"] for loc in russet.vpp.list_locations()] == ["main"]


def test_assign_and_take_back_licences_and_register_a_person(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str]
) -> None:
    sim, russet, token = vpp
    add(russet, token)
    csrf = signed_in(web, russet)
    url = "/console/vpp/main/licences"
    page = web.get(f"{url}?adam_id={PAGES}")
    assert 'id="licence"' in page.text
    given = web.post(
        url, data={"csrf": csrf, "adam_id": PAGES, "serials": "C02AAA1\nC02AAA2", "action": "assign"}
    )
    assert given.status_code == 200 and "Assigning 2 licences: sent to Apple in 1 events" in given.text
    assert "<td>C02AAA1</td>" in given.text and "<td>C02AAA2</td>" in given.text
    assert {lic["subject"] for lic in licences_of(russet, PAGES)} == {"C02AAA1", "C02AAA2"}

    book = web.post(url, data={"csrf": csrf, "adam_id": BOOK, "serials": "C02AAA1", "action": "assign"})
    assert book.status_code == 400 and "cannot be assigned to devices" in book.text
    assert "C02AAA1</textarea>" in book.text  # the form again, as typed
    assert licences_of(russet, BOOK) == []
    nobody = web.post(url, data={"csrf": csrf, "adam_id": PAGES, "serials": " ", "action": "assign"})
    assert nobody.status_code == 400 and "flash-error" in nobody.text

    sim.process()  # Apple works the event and notifies Russet: the licences are assigned
    deliver(russet, sim)
    assert {lic["status"] for lic in licences_of(russet, PAGES)} == {"assigned"}
    back = web.post(url, data={"csrf": csrf, "adam_id": PAGES, "serials": "C02AAA2", "action": "unassign"})
    assert back.status_code == 200 and "Taking back 1 licences" in back.text

    registered = web.post("/console/vpp/main/users", data={"csrf": csrf, "email": "kim@example.org"})
    assert registered.status_code == 200 and "Registering kim@example.org" in registered.text
    assert "kim@example.org" in registered.text
    neither = web.post("/console/vpp/main/users", data={"csrf": csrf, "email": " "})
    assert neither.status_code == 400 and "needs an email or a Managed Apple ID" in neither.text
    assert [u["email"] for u in russet.vpp.list_users("main")["users"]] == ["kim@example.org"]


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_admins_assign_licences_or_register_people(
    web: TestClient, vpp: tuple[VppSimulator, Russet, str], role: str
) -> None:
    sim, russet, token = vpp
    add(russet, token)
    csrf = signed_in(web, russet, role)
    assert 'id="licence"' not in web.get(f"/console/vpp/main/licences?adam_id={PAGES}").text
    assert 'id="new-user"' not in web.get("/console/vpp/main").text
    given = web.post(
        "/console/vpp/main/licences",
        data={"csrf": csrf, "adam_id": PAGES, "serials": "C02AAA1", "action": "assign"},
    )
    assert given.status_code == 403 and licences_of(russet, PAGES) == []
    assert (
        web.post("/console/vpp/main/users", data={"csrf": csrf, "email": "kim@example.org"}).status_code
        == 403
    )
    assert russet.vpp.list_users("main")["users"] == []


def licences_of(russet: Russet, adam_id: str) -> list[dict[str, Any]]:
    return russet.vpp.list_licences("main", adam_id=adam_id)["licences"]
