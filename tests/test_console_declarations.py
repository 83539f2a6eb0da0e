"""Console pages for declarative device management (issue #14): the declarations list, one
declaration's fleet view (declared vs reported, failures grouped by reason), the device page's
declarations, the software-update fleet view, blueprints listing declarations, and the forms
(create, edit, assign, delete) with their refusals shown on the form, nothing stored."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from russet.runtime import Russet
from simulators.device import SimDevice
from tests.test_console import csrf_of, log_in
from tests.test_declarative import pending

PASSCODE = "com.apple.configuration.passcode.settings"
ENFORCEMENT = "com.apple.configuration.softwareupdate.enforcement.specific"
PAGES = ("/console/declarations", "/console/software-updates")


@pytest.fixture
def key(russet: Russet) -> str:
    return russet.storage.api_keys.create("alex")


@pytest.fixture
def console(client: TestClient, key: str) -> TestClient:
    log_in(client, key)
    return client


def post(console: TestClient, url: str, **data: Any) -> Any:
    csrf = csrf_of(console.get("/console/declarations").text)
    return console.post(url, data={"csrf": csrf, **data})


def flash(html: str) -> list[str]:
    return [
        re.sub(r"\s+", " ", m) for m in re.findall(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', html, re.S)
    ]


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_the_pages_need_a_session_and_forms_a_csrf_token(
    client: TestClient, key: str, russet: Russet
) -> None:
    for path in (*PAGES, "/console/declarations/x"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
    log_in(client, key)
    for path in PAGES:
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'href="/console/declarations"' in page.text
    assert client.get("/console/declarations/nope").status_code == 404
    for data in ({"type": PASSCODE, "payload": "{}"}, {"type": PASSCODE, "payload": "{}", "csrf": "forged"}):
        assert client.post("/console/declarations", data=data).status_code == 403
    assert russet.declarations.list_declarations()["declarations"] == []


def test_create_edit_assign_and_the_fleet_view(
    console: TestClient, device: SimDevice, russet: Russet
) -> None:
    device.enroll(console)
    # A payload the schema refuses: the schema's words on the form, the typed text kept, nothing stored.
    refused = post(
        console,
        "/console/declarations",
        type=PASSCODE,
        identifier="pc",
        payload='{"MinimumLength": "six"}',
    )
    assert refused.status_code == 400
    assert any("Minimum Passcode Length" in f for f in flash(refused.text)), flash(refused.text)
    assert "&#34;six&#34;" in refused.text or "&quot;six&quot;" in refused.text
    not_json = post(console, "/console/declarations", type=PASSCODE, identifier="pc", payload="{")
    assert not_json.status_code == 400 and any("not JSON" in f for f in flash(not_json.text))
    assert russet.declarations.list_declarations()["declarations"] == []

    made = post(
        console, "/console/declarations", type=PASSCODE, identifier="pc", payload='{"MinimumLength": 6}'
    )
    assert made.status_code == 200 and "Declaration &#39;pc&#39; created." in made.text
    listed = console.get("/console/declarations").text
    token = russet.declarations.show("pc")["server_token"]
    assert "com.apple.configuration.passcode.settings" in listed and token in listed
    assert "nothing (an activation or configuration may bring it)" in listed

    # Assign to the device: it is told, syncs, and reports a failure.
    assigned = post(console, "/console/declarations/pc/assignments", devices=device.udid, action="assign")
    assert "1 assignments added; 1 devices told" in text(assigned.text)
    assert pending(console, device) == ["DeclarativeManagement"]
    device.ddm.failures["pc"] = [
        {"code": "Error.ConfigurationCannotBeApplied", "description": "<b>not</b> applied"}
    ]
    device.ddm_sync(console, {"device.operating-system.version": "18.1"})

    page = console.get("/console/declarations/pc").text
    shown = text(page)
    assert "Declared to 1 devices." in shown
    assert "1 devices on 18.1" in shown and "1 devices failed" in shown
    assert "1 failed: Error.ConfigurationCannotBeApplied: <b>not</b> applied" in shown.replace(
        "&lt;", "<"
    ).replace("&gt;", ">")
    assert "<b>not</b>" not in page  # the device's words are escaped
    assert "1 devices" in text(console.get("/console/declarations").text)

    device_page = console.get(f"/console/devices/{device.udid}").text
    table = device_page.split('id="device-declarations"')[1].split("</table>")[0]
    assert "pc" in table and "failed" in table and "Error.ConfigurationCannotBeApplied" in table
    assert "device" in text(table)  # where it comes from: assigned to the device itself

    # Editing the payload: a new version; the same text again changes nothing.
    saved = post(console, "/console/declarations/pc", payload='{"MinimumLength": 8}')
    assert "Version 2 saved." in saved.text
    assert russet.declarations.show("pc")["payload"] == {"MinimumLength": 8}
    again = post(console, "/console/declarations/pc", payload='{"MinimumLength": 8}')
    assert "Nothing changed." in again.text
    bad = post(console, "/console/declarations/pc", payload='{"MinimumLength": "x"}')
    assert bad.status_code == 400 and russet.declarations.show("pc")["version"] == 2

    # Unassigning an unknown device is refused on the page; unassigning the device works.
    ghost = post(console, "/console/declarations/pc/assignments", devices="GHOST", action="unassign")
    assert ghost.status_code == 404 and any("GHOST" in f for f in flash(ghost.text))
    gone = post(console, "/console/declarations/pc/assignments", devices=device.udid, action="unassign")
    assert "1 assignments removed" in text(gone.text)


def test_a_blueprint_lists_declarations_from_the_console(
    console: TestClient, device: SimDevice, russet: Russet
) -> None:
    device.enroll(console)
    russet.declarations.create(PASSCODE, {"MinimumLength": 6}, identifier="pc", created_by="t")
    russet.groups.create("Staff")
    russet.groups.add_members("Staff", [device.udid])
    form = console.get("/console/blueprints/new").text
    assert 'name="declaration" value="pc"' in form
    made = post(console, "/console/blueprints", name="Office", declaration="pc", include="Staff")
    assert made.status_code == 200, made.text
    assert russet.blueprints.get("Office")["declarations"] == ["pc"]
    assert 'href="/console/declarations/pc"' in made.text
    assert pending(console, device) == ["DeclarativeManagement"]
    assert device.ddm_sync(console) == ["pc"]
    device_page = text(console.get(f"/console/devices/{device.udid}").text)
    assert "blueprint 'Office'" in device_page.replace("&#39;", "'")
    assert "blueprint Office" in text(console.get("/console/declarations").text)

    # Saved again from the form with its box still ticked, it keeps the declaration.
    bp = russet.blueprints.get("Office")
    kept = post(console, f"/console/blueprints/{bp['id']}", name="Office", declaration="pc", include="Staff")
    assert kept.status_code == 200 and russet.blueprints.get("Office")["declarations"] == ["pc"]

    # Not deleted while a blueprint lists it: the refusal on the declaration's page.
    refused = post(console, "/console/declarations/pc/delete")
    assert refused.status_code == 409 and any(
        "'Office'" in f.replace("&#39;", "'") for f in flash(refused.text)
    )
    assert russet.declarations.show("pc")
    # A second blueprint cannot list it too.
    other = post(console, "/console/blueprints", name="Lab", declaration="pc")
    assert other.status_code == 409 and "Lab" not in [b["name"] for b in russet.blueprints.list_blueprints()]

    # Taken out of the blueprint: the device drops it, and the declaration can go.
    post(console, f"/console/blueprints/{bp['id']}", name="Office", include="Staff")
    assert russet.blueprints.get("Office")["declarations"] == []
    assert pending(console, device) == ["DeclarativeManagement"]
    device.ddm_sync(console)
    assert device.ddm.held == {}
    deleted = post(console, "/console/declarations/pc/delete")
    assert "Declaration &#39;pc&#39; deleted" in deleted.text


def test_the_software_update_fleet_view(console: TestClient, make_device: Any, russet: Russet) -> None:
    done, late = make_device(), make_device()
    for d in (done, late):
        d.enroll(console)
    russet.declarations.create(
        ENFORCEMENT,
        {"TargetOSVersion": "18.2", "TargetLocalDateTime": "2026-12-31T18:00:00"},
        identifier="update-18.2",
        created_by="t",
    )
    russet.declarations.assign("update-18.2", devices=[done.udid, late.udid])
    done.ddm_sync(console, {"device.operating-system.version": "18.2"})
    late.ddm_sync(console, {"device.operating-system.version": "18.1"})
    page = console.get("/console/software-updates").text
    rows = {
        udid: text(page.split(f'href="/console/devices/{udid}"')[1].split("</tr>")[0])
        for udid in (done.udid, late.udid)
    }
    assert "2 devices told to update, 1 updated" in text(page)
    assert "18.2" in rows[done.udid] and "2026-12-31T18:00:00" in rows[done.udid]
    assert rows[done.udid].rstrip().endswith("yes") and rows[late.udid].rstrip().endswith("no")
    assert "18.1" in rows[late.udid]
