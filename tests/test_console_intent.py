"""Console pages that manage by intent (issue #13): groups, the profile library, blueprints with
"reconcile now", and each device's desired vs actual state.

Each form posts to the same service the API calls; these tests check that every page renders,
every form acts (and the API or the service sees it), and every refusal is shown on the form with
the service's words and the API's status, nothing stored.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.blueprints.service import BlueprintService, BlueprintSpec, ProfileRef
from russet.blueprints.tables import blueprints as blueprint_table
from russet.groups.tables import groups as group_table
from russet.library.tables import library_profile_versions
from russet.runtime import Russet
from simulators.blueprint_ports import MemoryGroups, MemoryLibrary, MemoryReports, MemorySender
from simulators.device import SimDevice
from tests.groups_support import add_device
from tests.library_support import payload, profile, wifi, xml
from tests.test_apps import manifest
from tests.test_blueprints_e2e import Agent
from tests.test_console import csrf_of, log_in, seed


@pytest.fixture
def key(russet: Russet) -> str:
    return russet.storage.api_keys.create("alex")


@pytest.fixture
def console(client: TestClient, key: str) -> TestClient:
    log_in(client, key)
    return client


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def flash(html: str) -> list[str]:
    """The flash messages at the top of a page."""
    return [
        re.sub(r"\s+", " ", m) for m in re.findall(r'<p class="flash flash-\w+"[^>]*>(.*?)</p>', html, re.S)
    ]


def post(console: TestClient, url: str, **data: Any) -> Any:
    """A form posted with the session's CSRF token, following the redirect to the next page."""
    csrf = csrf_of(console.get("/console/groups").text)
    return console.post(url, data={"csrf": csrf, **data})


NEW_PAGES = ("/console/groups", "/console/profiles", "/console/blueprints", "/console/blueprints/new")


def test_new_pages_need_a_session_and_render(client: TestClient, key: str) -> None:
    for path in NEW_PAGES:
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
    csrf = csrf_of(client.get("/console/login").text)
    for path in ("/console/groups", "/console/profiles", "/console/blueprints/reconcile"):
        assert client.post(path, data={"csrf": csrf}, follow_redirects=False).status_code == 303
    log_in(client, key)
    for path in NEW_PAGES:
        page = client.get(path)
        assert page.status_code == 200, page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert 'href="/console/groups"' in page.text  # the navigation
    for path in ("/console/groups/nope", "/console/profiles/nope", "/console/blueprints/99"):
        assert client.get(path).status_code == 404


def test_every_new_form_refuses_a_missing_or_forged_csrf_token(
    console: TestClient,
    russet: Russet,
) -> None:
    russet.groups.create("Lab")
    russet.library.add(xml(profile(wifi())), name="wifi")
    made = russet.blueprints.create(BlueprintSpec(name="B"), created_by="t")
    posts = [
        "/console/groups",
        "/console/groups/Lab/edit",
        "/console/groups/Lab/members",
        "/console/groups/Lab/delete",
        "/console/profiles/wifi/delete",
        "/console/blueprints",
        f"/console/blueprints/{made['id']}",
        f"/console/blueprints/{made['id']}/delete",
        "/console/blueprints/reconcile",
    ]
    for url in posts:
        for data in ({"name": "X"}, {"name": "X", "csrf": "forged"}):
            response = console.post(url, data=data)
            assert response.status_code == 403 and "CSRF" in response.text, url
    for url in ("/console/groups/Lab/import", "/console/profiles"):
        response = console.post(url, files={"file": ("x", b"x")}, data={"csrf": "forged"})
        assert response.status_code == 403, url
    assert russet.groups.show("Lab")["name"] == "Lab" and len(russet.library.list_profiles()) == 1
    assert count(russet, blueprint_table) == 1


# -- groups -----------------------------------------------------------------------------------


def test_static_group_create_members_csv_and_delete(console: TestClient, russet: Russet) -> None:
    for i in range(3):
        add_device(russet, f"UDID-{i}", serial=f"SER{i}")
    made = post(console, "/console/groups", name="Front desk", kind="static", action="create")
    assert made.status_code == 200 and made.url.path == "/console/groups/Front desk"
    assert flash(made.text) == ["Group &#39;Front desk&#39; created (static, 0 members)."]
    assert "Front desk" in console.get("/console/groups").text
    assert flash(console.get("/console/groups").text) == []  # shown once

    added = post(console, "/console/groups/Front%20desk/members", devices="SER0\nUDID-1", action="add")
    assert "Added 2; the group has 2 members." in flash(added.text)
    assert russet.groups.show("Front desk")["members"] == ["UDID-0", "UDID-1"]
    assert '<a href="/console/devices/UDID-0"><code>UDID-0</code></a>' in added.text

    bad = post(console, "/console/groups/Front%20desk/members", devices="SER2, NOPE", action="add")
    assert bad.status_code == 400 and "no device with UDID or serial &#39;NOPE&#39;" in flash(bad.text)[0]
    assert "SER2, NOPE" in bad.text  # what was typed is kept
    assert russet.groups.show("Front desk")["member_count"] == 2  # all or none

    csrf = csrf_of(console.get("/console/groups").text)
    url = "/console/groups/Front%20desk/import"
    refused = console.post(url, data={"csrf": csrf}, files={"file": ("d.csv", b"udid\nSER2\nGHOST\n")})
    assert refused.status_code == 400 and "line 3" in refused.text and "GHOST" in refused.text
    assert russet.groups.show("Front desk")["member_count"] == 2
    replaced = console.post(
        url, data={"csrf": csrf, "replace": "on"}, files={"file": ("d.csv", b"udid\nSER2\n")}
    )
    assert "added 1, removed 2; the group has 1 members." in flash(replaced.text)[0]
    pasted = console.post(url, data={"csrf": csrf, "csv": "UDID-0\n"}, files={"file": ("", b"")})
    assert "the group has 2 members" in flash(pasted.text)[0]

    removed = post(console, "/console/groups/Front%20desk/members", devices="UDID-0", action="remove")
    assert "Removed 1; the group has 1 members." in flash(removed.text)
    assert russet.groups.show("Front desk")["members"] == ["UDID-2"]

    renamed = post(
        console, "/console/groups/Front%20desk/edit", name="Desk", description="lobby", action="save"
    )
    assert renamed.url.path == "/console/groups/Desk" and "lobby" in renamed.text
    gone = post(console, "/console/groups/Desk/delete")
    assert gone.url.path == "/console/groups" and flash(gone.text) == ["Group &#39;Desk&#39; deleted."]
    assert count(russet, group_table) == 0


def test_smart_group_preview_create_refusals_and_members_pages(
    console: TestClient,
    russet: Russet,
) -> None:
    seed(russet, 123, model="iPad13,1", product_name="iPad13,1", os_version="17.4")
    seed_other = add_device(russet, "PHONE", product="iPhone15,2")
    query = 'model ~ "iPad"'
    preview = post(console, "/console/groups", name="iPads", kind="smart", query=query, action="preview")
    assert preview.status_code == 200
    assert re.search(r"Matches <strong>123</strong> devices now", preview.text)
    assert count(russet, group_table) == 0  # a preview stores nothing
    assert 'value="iPads"' in preview.text and "model ~ &#34;iPad&#34;" in preview.text  # kept

    for data, reason, status in (
        ({"name": "Bad", "query": 'model ~~ "x"'}, "query", 400),
        ({"name": "Loop", "query": 'in_group("Loop")'}, "cyclic group definition", 400),
        ({"name": "Ghost", "query": 'in_group("Nobody")'}, "in_group names no group", 400),
        ({"name": "", "query": query}, "group name", 400),
    ):
        refused = post(console, "/console/groups", kind="smart", action="create", **data)
        assert refused.status_code == status and reason in flash(refused.text)[0], refused.text
    assert count(russet, group_table) == 0

    made = post(console, "/console/groups", name="iPads", kind="smart", query=query, action="create")
    assert "created (smart, 123 members)" in flash(made.text)[0]
    dup = post(console, "/console/groups", name="iPads", kind="static", action="create")
    assert dup.status_code == 409 and "exists already" in flash(dup.text)[0]

    pages, url = [], "/console/groups/iPads"
    while url:
        html = console.get(url).text
        pages.append(re.findall(r'<tr><td><a href="/console/devices/[^"]+"><code>([^<]+)</code>', html))
        found = re.search(r'<a href="([^"]+)" rel="next">', html)
        url = found.group(1).replace("&amp;", "&") if found else ""
    assert [len(p) for p in pages] == [50, 50, 23] and len({d for p in pages for d in p}) == 123

    edited = post(
        console, "/console/groups/iPads/edit", name="iPads", query='model ~ "iPhone"', action="preview"
    )
    assert re.search(r"Matches <strong>1</strong> device now", edited.text) and seed_other in edited.text
    assert russet.groups.show("iPads")["member_count"] == 123  # not saved
    saved = post(console, "/console/groups/iPads/edit", name="iPads", query='model ~ "iPhone"', action="save")
    assert "(1 members)" in flash(saved.text)[0] and russet.groups.show("iPads")["members"] == ["PHONE"]
    # A static group's page has the members forms; a smart group's has none.
    assert 'id="members"' not in saved.text and 'id="import"' not in saved.text


def test_a_group_in_use_is_not_deleted(console: TestClient, russet: Russet) -> None:
    russet.groups.create("Base")
    russet.groups.create("Uses", query='in_group("Base")')
    refused = post(console, "/console/groups/Base/delete")
    assert refused.status_code == 409 and "Uses" in flash(refused.text)[0]
    assert count(russet, group_table) == 2


# -- the profile library ----------------------------------------------------------------------


def upload(console: TestClient, content: bytes, name: str = "") -> Any:
    csrf = csrf_of(console.get("/console/profiles").text)
    return console.post(
        "/console/profiles", data={"csrf": csrf, "name": name}, files={"file": ("p.mobileconfig", content)}
    )


def test_profile_upload_versions_refusals_and_delete(console: TestClient, russet: Russet) -> None:
    first = upload(console, xml(profile(wifi(), identifier="com.example.wifi")), name="wifi")
    assert first.url.path == "/console/profiles/wifi"
    assert flash(first.text) == ["Profile &#39;wifi&#39;: version 1 added."]
    assert "com.apple.wifi.managed" in first.text
    second = upload(console, xml(profile(wifi(SSID_STR="Guest"), identifier="com.example.wifi")))
    assert flash(second.text) == ["Profile &#39;wifi&#39;: version 2 added."]
    assert re.findall(r"<td>v(\d+)</td>", second.text) == ["2", "1"]
    download = console.get("/console/profiles/wifi/download?version=1")
    assert download.status_code == 200 and b"Office" in download.content
    assert "wifi" in console.get("/console/profiles").text

    versions = count(russet, library_profile_versions)
    for content, words in (
        (
            xml(profile(wifi(AutoJion=True))),
            "AutoJion: not a key of Wi-Fi (com.apple.wifi.managed) in Apple&#39;s schema",
        ),
        (
            xml(profile(payload("com.apple.wifi.manged", "com.example.x"))),
            "did you mean &#39;com.apple.wifi.managed&#39;?",
        ),
        (b"not a plist", "not a property list"),
    ):
        refused = upload(console, content)
        assert refused.status_code == 400 and words in flash(refused.text)[0], refused.text
    empty = console.post(
        "/console/profiles",
        data={"csrf": csrf_of(console.get("/console/profiles").text)},
        files={"file": ("", b"")},
    )
    assert empty.status_code == 400 and "choose a .mobileconfig file" in empty.text
    clash = upload(console, xml(profile(wifi(), identifier="com.example.other")), name="wifi")
    assert clash.status_code == 409 and "upload it under another name" in flash(clash.text)[0]
    assert count(russet, library_profile_versions) == versions

    gone = post(console, "/console/profiles/wifi/delete")
    assert gone.url.path == "/console/profiles" and "2 versions deleted" in flash(gone.text)[0]
    assert russet.library.list_profiles() == []


# -- blueprints -------------------------------------------------------------------------------


def blueprint_form(**fields: Any) -> dict[str, Any]:
    return {"name": "Office", "description": "", "device_name": "", "time_zone": "", "apps": "", **fields}


def test_blueprint_create_edit_refusals_reconcile_and_delete(
    console: TestClient,
    russet: Russet,
    make_device: Any,
) -> None:
    mac: SimDevice = make_device()
    mac.enroll(console)
    russet.groups.create("Lab")
    russet.groups.add_members("Lab", [mac.udid])
    russet.library.add(xml(profile(wifi(), identifier="com.example.wifi")), name="wifi")
    russet.library.add(xml(profile(wifi(), identifier="com.example.wifi2")), name="wifi2")
    new = console.get("/console/blueprints/new").text
    assert 'name="profile" value="wifi"' in new and "latest is v1" in new

    for fields, words, status in (
        ({"time_zone": "Mars/Olympus"}, "is not an IANA time zone", 400),
        ({"include": "Nobody"}, "scope include: no group named &#39;Nobody&#39;", 400),
        ({"profile": "wifi", "version:wifi": "x"}, "version must be a positive number", 400),
        ({"profile": "wifi", "version:wifi": "7"}, "version 7", 400),
        ({"device_name": "$NOPE"}, "unknown variable $NOPE", 400),
        ({"name": "123"}, "not only digits", 400),
        ({"apps": "app-1"}, "app &#39;app-1&#39;: no app &#39;app-1&#39; in the catalogue", 400),
    ):
        refused = post(console, "/console/blueprints", **blueprint_form(**fields))
        assert refused.status_code == status and words in flash(refused.text)[0], refused.text
    assert count(russet, blueprint_table) == 0
    kept = post(console, "/console/blueprints", **blueprint_form(time_zone="Mars/Olympus", include="Lab"))
    assert ">Lab</textarea>" in kept.text and 'value="Mars/Olympus"' in kept.text  # typed values kept
    russet.apps.add_manifest("app-1", manifest(), created_by="tests")

    made = post(
        console,
        "/console/blueprints",
        **blueprint_form(profile="wifi", time_zone="Europe/Paris", include="Lab", apps="app-1"),
    )
    assert made.status_code == 200 and flash(made.text) == ["Blueprint &#39;Office&#39; created."]
    [bp] = russet.blueprints.list_blueprints()
    assert (bp["profiles"], bp["settings"], bp["apps"]) == (1, 1, 1)
    assert russet.blueprints.get(bp["id"])["scope"]["include"] == [russet.groups.show("Lab")["id"]]
    assert ">Lab</textarea>" in made.text  # the scope is shown by group name
    assert "Lab" in console.get("/console/blueprints").text

    # A PayloadIdentifier belongs to one blueprint: a second one naming it is a 409, nothing stored.
    dup = post(console, "/console/blueprints", **blueprint_form(name="Copy", profile="wifi"))
    assert dup.status_code == 409 and "com.example.wifi" in flash(dup.text)[0]
    assert "&#39;Office&#39;" in flash(dup.text)[0] and count(russet, blueprint_table) == 1

    # Reconcile now: the dry run lists what would be queued and queues nothing; then it runs.
    preview = post(console, "/console/blueprints/reconcile", action="preview")
    assert preview.status_code == 200
    commands = r"<dt>Commands</dt><dd>1 install_application, 1 install_profile, 1 settings</dd>"
    assert re.search(commands, preview.text), preview.text
    assert mac.udid in preview.text and "com.example.wifi" in preview.text
    assert russet.storage.queue.for_enrollment(mac.udid, 10) == []
    ran = post(console, "/console/blueprints/reconcile", action="run")
    queued = "Reconciled 1 devices: queued 1 install_application, 1 install_profile, 1 settings."
    assert queued in flash(ran.text)[0]
    assert sorted(c["request_type"] for c in russet.storage.queue.for_enrollment(mac.udid, 10)) == [
        "InstallApplication",
        "InstallProfile",
        "Settings",
    ]

    saved = post(
        console,
        f"/console/blueprints/{bp['id']}",
        **blueprint_form(name="Office 2", profile=["wifi", "wifi2"], include="Lab"),
    )
    assert flash(saved.text) == ["Blueprint &#39;Office 2&#39; saved."]
    assert [p["ref"] for p in russet.blueprints.get(bp["id"])["profiles"]] == ["wifi", "wifi2"]
    used = post(console, "/console/profiles/wifi/delete")
    assert used.status_code == 409 and "in use" in flash(used.text)[0]
    gone = post(console, f"/console/blueprints/{bp['id']}/delete")
    assert "the next pass removes what it installed" in flash(gone.text)[0]
    assert count(russet, blueprint_table) == 0


# -- desired vs actual on the device page ------------------------------------------------------


class FailingAgent(Agent):
    """A device that refuses InstallProfile with an ErrorChain until told otherwise."""

    failing = True

    def drain(self) -> None:
        reply = self.device.connect(self.client, self.device.report_message("Idle"))
        for _ in range(50):
            command = self.device.command_of(reply)
            if command is None:
                return
            if self.failing and command["Command"]["RequestType"] == "InstallProfile":
                chain = [
                    {
                        "ErrorCode": 4001,
                        "ErrorDomain": "MCInstallationErrorDomain",
                        "LocalizedDescription": "The profile “Office network” could not be installed.",
                        "USEnglishDescription": "The profile “Office network” could not be installed.",
                    }
                ]
                message = self.device.report_message("Error", command["CommandUUID"], ErrorChain=chain)
            else:
                message = self.device.report_message(
                    "Acknowledged", command["CommandUUID"], **self.answer(command)
                )
            reply = self.device.connect(self.client, message)
        raise AssertionError("the server kept sending commands")


def items(html: str) -> dict[str, tuple[str, str]]:
    """The device page's desired-vs-actual rows: item -> (row class, state cell)."""
    table = re.search(r'<table id="items">(.*?)</table>', html, re.S)
    assert table, "no desired vs actual table"
    rows = re.findall(
        r'<tr class="(\w+)">\s*<td>\w+ <code>([^<]+)</code></td>\s*<td class="[^"]+">([^<]+)</td>',
        table.group(1),
    )
    return {item: (cls, state) for cls, item, state in rows}


def test_device_page_shows_desired_vs_actual_failed_in_sync_drifted_and_conflicts(
    console: TestClient,
    russet: Russet,
    make_device: Any,
) -> None:
    mac: SimDevice = make_device()
    mac.enroll(console)
    agent = FailingAgent(mac, console, russet, model="Mac14,2")
    page = console.get(f"/console/devices/{mac.udid}").text
    assert "No blueprint applies to this device." in page or "Nothing is declared" in page

    russet.groups.create("Lab")
    russet.groups.add_members("Lab", [mac.udid])
    russet.library.add(xml(profile(wifi(), identifier="com.example.wifi")), name="wifi")
    lab = russet.groups.show("Lab")["id"]
    form = blueprint_form(profile="wifi", include="Lab")
    assert post(console, "/console/blueprints", **form).status_code == 200

    russet.blueprints.reconcile()
    assert items(console.get(f"/console/devices/{mac.udid}").text) == {
        "com.example.wifi": ("pending", "pending")
    }
    agent.drain()
    page = console.get(f"/console/devices/{mac.udid}").text
    assert items(page) == {"com.example.wifi": ("failed", "failed")}
    assert "MCInstallationErrorDomain 4001: The profile “Office network” could not be installed." in page

    agent.failing = False
    retried = post(
        console, "/console/blueprints/reconcile", action="run", retry_failed="on", devices=mac.udid
    )
    assert "queued 1 install_profile" in flash(retried.text)[0]
    for _ in range(3):
        agent.drain()
        russet.blueprints.reconcile()
    assert items(console.get(f"/console/devices/{mac.udid}").text) == {
        "com.example.wifi": ("in_sync", "in sync")
    }

    del agent.profiles["com.example.wifi"]  # removed on the device; its next ProfileList shows it
    russet.devices.send_command([mac.udid], {"RequestType": "ProfileList"}, created_by="tests")
    agent.drain()
    page = console.get(f"/console/devices/{mac.udid}").text
    assert items(page) == {"com.example.wifi": ("drifted", "pending · drifted")}  # highlighted
    assert "install_profile queued (drifted)" in page
    assert "The next pass would queue: install_profile <code>com.example.wifi</code>" in page

    # Two blueprints set the time zone differently on this device: a conflict, shown, not resolved.
    for name, zone in (("Paris", "Europe/Paris"), ("Tokyo", "Asia/Tokyo")):
        russet.blueprints.create(BlueprintSpec(name=name, time_zone=zone, include=(lab,)), created_by="t")
    page = console.get(f"/console/devices/{mac.udid}").text
    assert items(page)["TimeZone"] == ("conflict", "conflict")
    preview = post(console, "/console/blueprints/reconcile", action="preview")
    assert re.search(r"<dt>Devices with conflicts</dt><dd class=\"state-conflict\">1</dd>", preview.text)
    assert '<tr class="conflict">' in preview.text


def test_nul_in_a_page_address_is_refused_as_the_api_does(console: TestClient) -> None:
    for path in ("/console/groups?after=%00", "/console/groups/x%00y", "/console/profiles/x%00y"):
        response = console.get(path)
        assert response.status_code == 422 and "NUL" in response.text, path  # the API's check_params


def test_flash_messages_are_sealed_and_a_nul_in_a_form_is_refused(
    console: TestClient,
    russet: Russet,
) -> None:
    console.cookies.set("russet_flash", "eyJrIjoib2siLCJ0IjoiZm9yZ2VkIn0=", path="/console")  # plain JSON
    assert flash(console.get("/console/groups").text) == []
    refused = post(console, "/console/groups", name="A\x00B", kind="static", action="create")
    assert refused.status_code == 400 and "NUL" in refused.text
    assert count(russet, group_table) == 0


def test_one_devices_state_reads_its_groups_not_every_scopes_devices(russet: Russet) -> None:
    """The device page's desired vs actual must not read every device of every scope (100,000
    devices): `device_state` finds the device's blueprints from the groups it is in, with the
    same answer as a pass (in an included group and in no excluded one)."""

    class NoWholeScopes(MemoryGroups):
        strict = False

        def devices_in(self, include: Any, exclude: Any) -> set[str]:
            if self.strict:
                raise AssertionError("device_state read a whole scope")
            return super().devices_in(include, exclude)

    groups = NoWholeScopes({1: {"dev-a", "dev-b"}, 2: {"dev-b"}, 3: {"dev-c"}})
    library = MemoryLibrary()
    library.add("wifi")
    service = BlueprintService(russet.storage.engine, groups, library, MemorySender(), MemoryReports())
    service.create(
        BlueprintSpec(name="Lab", profiles=(ProfileRef("wifi"),), include=(1, 3), exclude=(2,)),
        created_by="t",
    )
    service.create(BlueprintSpec(name="Zone", time_zone="Europe/Paris", include=(2,)), created_by="t")
    whole = {
        p["device"]: sorted(a["blueprint"] for a in p["actions"])
        for p in service.reconcile(dry_run=True)["plan"]
    }
    groups.strict = True
    for device in ("dev-a", "dev-b", "dev-c"):
        state = service.device_state(device)
        assert sorted(b["id"] for b in state["blueprints"]) == whole[device], device
    assert [b["name"] for b in service.device_state("dev-b")["blueprints"]] == ["Zone"]  # excluded from Lab
