"""The console's ADE enrollment profiles on an ABM connection's page (issue #19 item 5): the list,
defining one (Apple's fields as JSON, the default flag, a blueprint) and assigning serial numbers
to one or removing their assignment, all through `russet.abm` as the API does, against the DEP
simulator; refusals shown on the page with nothing defined or assigned; only admins act."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.app import create_app
from russet.config import Settings
from russet.runtime import Russet
from simulators.dep import DepSimulator
from tests.abm_support import connect, simulated
from tests.conftest import PUBLIC_URL
from tests.test_console import CHROMIUM, log_in, playwright_api, served  # noqa: F401  (fixtures)


@pytest.fixture
def dep(tmp_path: Path, settings: Settings) -> Iterator[tuple[DepSimulator, Russet]]:
    with simulated(tmp_path, settings, devices=5) as (sim, russet):
        connect(russet, sim)
        yield sim, russet


@pytest.fixture
def web(dep: tuple[DepSimulator, Russet]) -> Iterator[TestClient]:
    with TestClient(create_app(dep[1]), base_url=PUBLIC_URL) as client:
        yield client


@pytest.fixture
def russet(dep: tuple[DepSimulator, Russet]) -> Russet:
    return dep[1]


def signed_in(client: TestClient, russet: Russet, role: str = "admin") -> str:
    return log_in(client, russet.storage.api_keys.create(f"{role}-person", role=role))


def define(client: TestClient, csrf: str, profile: str, **fields: str) -> Any:
    return client.post("/console/abm/main/profiles", data={"csrf": csrf, "profile": profile, **fields})


def test_define_a_profile_then_assign_and_remove_serials(
    web: TestClient, dep: tuple[DepSimulator, Russet]
) -> None:
    sim, russet = dep
    csrf = signed_in(web, russet)
    made = define(web, csrf, '{"profile_name": "Staff iPads", "is_supervised": true}', default="on")
    assert made.status_code == 200 and "Profile &#39;Staff iPads&#39; defined" in made.text
    [uuid] = sim.profiles
    assert sim.profiles[uuid]["url"].startswith(PUBLIC_URL)
    listed = russet.abm.list_profiles("main")
    assert listed["default_profile_uuid"] == uuid
    assert re.search(rf'<tr data-profile="{uuid}"><td>Staff iPads</td>.*?default', made.text, re.S)

    assigned = web.post(
        "/console/abm/main/assign",
        data={
            "csrf": csrf,
            "profile_uuid": uuid,
            "serials": "sim00000001, SIM00000002\nNOPE0001",
            "action": "assign",
        },
    )
    assert assigned.status_code == 200
    assert "Assignment: 1 NOT_ACCESSIBLE, 2 SUCCESS." in assigned.text
    assert "<tr><td>NOPE0001</td><td>NOT_ACCESSIBLE</td></tr>" in assigned.text
    assert sim.devices["SIM00000001"]["profile_uuid"] == uuid
    assert sim.devices["SIM00000002"]["profile_uuid"] == uuid

    removed = web.post(
        "/console/abm/main/assign", data={"csrf": csrf, "serials": "SIM00000002", "action": "remove"}
    )
    assert removed.status_code == 200 and "Removal: 1 SUCCESS." in removed.text
    assert sim.devices["SIM00000002"]["profile_uuid"] == ""
    assert sim.devices["SIM00000001"]["profile_uuid"] == uuid


def test_refusals_are_shown_as_typed_and_nothing_is_defined(
    web: TestClient, dep: tuple[DepSimulator, Russet]
) -> None:
    sim, russet = dep
    csrf = signed_in(web, russet)
    cases = [
        ("{not json", "the profile is not JSON"),
        ("[1, 2]", "a profile is a JSON object"),
        ('{"is_supervised": true}', "profile_name: required"),
        ('{"profile_name": "X", "devices": ["A"]}', "define the profile first"),
        ("[" * 100 + "]" * 100, "the profile is not JSON"),
    ]
    for typed, words in cases:
        refused = define(web, csrf, typed)
        assert refused.status_code == 400, (typed, refused.text)
        assert "flash-error" in refused.text and words in refused.text
    unknown_blueprint = define(web, csrf, '{"profile_name": "Kept as typed"}', blueprint="nope")
    assert unknown_blueprint.status_code in (400, 404) and "flash-error" in unknown_blueprint.text
    assert "Kept as typed" in unknown_blueprint.text  # the form again, as typed
    assert sim.profiles == {} and russet.abm.list_profiles("main")["profiles"] == []

    no_serials = web.post(
        "/console/abm/main/assign",
        data={"csrf": csrf, "profile_uuid": "ABC", "serials": " ", "action": "assign"},
    )
    assert no_serials.status_code == 400 and "at least one serial" in no_serials.text
    bad_uuid = web.post(
        "/console/abm/main/assign",
        data={"csrf": csrf, "profile_uuid": "<x>", "serials": "SIM00000001", "action": "assign"},
    )
    assert bad_uuid.status_code == 400 and "profile_uuid" in bad_uuid.text
    assert sim.devices["SIM00000001"]["profile_uuid"] == ""
    stale = define(web, "wrong", '{"profile_name": "Staff"}')
    assert stale.status_code == 403 and sim.profiles == {}


@pytest.mark.parametrize("role", ["operator", "auditor"])
def test_only_admins_define_or_assign(web: TestClient, dep: tuple[DepSimulator, Russet], role: str) -> None:
    sim, russet = dep
    uuid = russet.run(russet.abm.define_profile("main", {"profile_name": "Staff"}))["profile_uuid"]
    csrf = signed_in(web, russet, role)
    shown = web.get("/console/abm/main")
    assert shown.status_code == 200 and "Staff" in shown.text
    assert 'id="assign"' not in shown.text and 'id="new-profile"' not in shown.text
    assert define(web, csrf, '{"profile_name": "Other"}').status_code == 403
    refused = web.post(
        "/console/abm/main/assign",
        data={"csrf": csrf, "profile_uuid": uuid, "serials": "SIM00000001", "action": "assign"},
    )
    assert refused.status_code == 403
    assert list(sim.profiles) == [uuid] and sim.devices["SIM00000001"]["profile_uuid"] == ""


def test_browser_assigns_a_device_to_a_profile(
    playwright_api: Any,  # noqa: F811
    served: str,  # noqa: F811
    dep: tuple[DepSimulator, Russet],
) -> None:
    """A real browser: define a profile, then assign a serial number to it and see Apple's answer."""
    sim, russet = dep
    key = russet.storage.api_keys.create("alex")
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(f"{served}/console/abm/main")
            page.fill("input[name=api_key]", key)
            page.click("button[type=submit]")
            page.wait_for_url(f"{served}/console/abm/main")
            page.fill("#new-profile textarea[name=profile]", '{"profile_name": "Lab Macs"}')
            page.click("#new-profile button[type=submit]")
            page.wait_for_selector("text=Profile 'Lab Macs' defined")
            page.fill("#assign textarea[name=serials]", "SIM00000003")
            page.click("#assign button[value=assign]")
            page.wait_for_selector("text=Assignment: 1 SUCCESS.")
            assert "SUCCESS" in page.inner_text("#assign-results")
        finally:
            browser.close()
    [uuid] = sim.profiles
    assert sim.devices["SIM00000003"]["profile_uuid"] == uuid


def test_choose_the_default_profile(web: TestClient, dep: tuple[DepSimulator, Russet]) -> None:
    sim, russet = dep
    uuid = russet.run(russet.abm.define_profile("main", {"profile_name": "Staff"}))["profile_uuid"]
    csrf = signed_in(web, russet)
    chosen = web.post("/console/abm/main/default-profile", data={"csrf": csrf, "profile_uuid": uuid})
    assert chosen.status_code == 200 and f"Newly added devices get profile {uuid}." in chosen.text
    assert russet.abm.list_profiles("main")["default_profile_uuid"] == uuid
    unknown = web.post("/console/abm/main/default-profile", data={"csrf": csrf, "profile_uuid": "NOPE"})
    assert unknown.status_code == 404 and "no profile &#39;NOPE&#39;" in unknown.text
    assert russet.abm.list_profiles("main")["default_profile_uuid"] == uuid
    cleared = web.post("/console/abm/main/default-profile", data={"csrf": csrf, "profile_uuid": ""})
    assert cleared.status_code == 200 and "get no profile" in cleared.text
    assert russet.abm.list_profiles("main")["default_profile_uuid"] is None
    csrf = signed_in(web, russet, "operator")
    refused = web.post("/console/abm/main/default-profile", data={"csrf": csrf, "profile_uuid": uuid})
    assert refused.status_code == 403 and russet.abm.list_profiles("main")["default_profile_uuid"] is None


def test_dashboard_links_each_abm_token(web: TestClient, dep: tuple[DepSimulator, Russet]) -> None:
    signed_in(web, dep[1], "auditor")
    assert '<a href="/console/abm/main">ABM/ASM server token</a>' in web.get("/console/dashboard").text


def test_a_profile_with_sign_in(web: TestClient, dep: tuple[DepSimulator, Russet]) -> None:
    """The Sign-in box sets configuration_web_url to Russet's sign-in page (ADE with sign-in)."""
    sim, russet = dep
    csrf = signed_in(web, russet)
    assert 'name="sign_in"' in web.get("/console/abm/main").text
    made = define(web, csrf, '{"profile_name": "Staff Macs"}', sign_in="on")
    assert made.status_code == 200 and "defined" in made.text
    [uuid] = sim.profiles
    assert sim.profiles[uuid]["configuration_web_url"] == f"{PUBLIC_URL}/mdm/enroll/signin"
    both = define(
        web, csrf, '{"profile_name": "X", "configuration_web_url": "https://x.example/"}', sign_in="on"
    )
    assert "configuration_web_url: set by sign-in" in both.text and len(sim.profiles) == 1
