"""The blueprints API (/api/v1/blueprints) and CLI (`russet blueprint …`, `russet reconcile`).

Most tests put a BlueprintService on the in-memory ports of `simulators/blueprint_ports.py` in
place of the runtime's; the last one checks the runtime's wiring to the real groups, library and
device services (tests/test_blueprints_e2e.py drives it with simulated devices).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import Result
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from russet.blueprints.service import BlueprintService
from russet.blueprints.tables import blueprint_device_items, blueprints
from russet.cli import blueprints as cli_blueprints
from russet.kernel.errors import Conflict
from russet.runtime import Russet
from simulators.blueprint_ports import MemoryApps, MemoryGroups, MemoryLibrary, MemoryReports, MemorySender
from tests.library_support import profile, wifi, xml


class Ports:
    def __init__(self) -> None:
        self.groups = MemoryGroups({1: {"dev-a", "dev-b"}, 2: {"dev-c"}})
        self.library = MemoryLibrary()
        self.library.add("wifi")
        self.library.add("vpn")
        self.library.add("wifi-copy", identifier="com.example.wifi")
        self.sender = MemorySender()
        self.reports = MemoryReports()
        self.apps = MemoryApps()
        self.apps.add("app-1")

    def service(self, russet: Russet) -> BlueprintService:
        return BlueprintService(
            russet.storage.engine, self.groups, self.library, self.sender, self.reports, apps=self.apps
        )


def count(russet: Russet, table: Any) -> int:
    with russet.storage.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


@pytest.fixture
def ports(russet: Russet) -> Ports:
    p = Ports()
    russet.blueprints = p.service(russet)
    return p


BODY = {
    "name": "Office",
    "description": "office Macs",
    "profiles": [{"ref": "wifi"}, {"ref": "vpn", "version": 1}],
    "settings": {"time_zone": "Europe/Paris"},
    "apps": ["app-1"],
    "scope": {"include": [1], "exclude": [2]},
}


def test_api_crud(ports: Ports, client: TestClient, api_headers: dict[str, str]) -> None:
    made = client.post("/api/v1/blueprints", json=BODY, headers=api_headers)
    assert made.status_code == 201, made.text
    bp = made.json()
    assert bp["created_by"] == "tests" and bp["settings"]["time_zone"] == "Europe/Paris"
    assert [p["payload_identifier"] for p in bp["profiles"]] == ["com.example.wifi", "com.example.vpn"]
    assert client.get(f"/api/v1/blueprints/{bp['id']}", headers=api_headers).json() == bp
    assert client.get("/api/v1/blueprints/Office", headers=api_headers).json() == bp
    [listed] = client.get("/api/v1/blueprints", headers=api_headers).json()
    assert listed["name"] == "Office" and listed["profiles"] == 2

    put = client.put(
        f"/api/v1/blueprints/{bp['id']}", json={"name": "Office 2", "profiles": []}, headers=api_headers
    )
    assert put.status_code == 200 and put.json()["profiles"] == [] and put.json()["scope"]["include"] == []
    assert client.delete("/api/v1/blueprints/Office%202", headers=api_headers).json()["name"] == "Office 2"
    assert client.get(f"/api/v1/blueprints/{bp['id']}", headers=api_headers).status_code == 404


@pytest.mark.parametrize(
    ("change", "status", "words"),
    [
        ({"profiles": [{"ref": "nope"}]}, 400, "profile 'nope'"),
        ({"scope": {"include": [42]}}, 400, "no group 42"),
        ({"settings": {"time_zone": "Nowhere/Else"}}, 400, "IANA"),
        ({"profiles": [{"ref": "wifi", "version": 0}]}, 422, ""),
        ({"scope": {"include": [0]}}, 422, ""),
        ({"colour": "red"}, 422, ""),
        ({"name": "7"}, 400, "digits"),
    ],
)
def test_api_bad_input_is_a_clear_4xx_and_nothing_is_stored(
    ports: Ports,
    client: TestClient,
    api_headers: dict[str, str],
    russet: Russet,
    change: dict[str, Any],
    status: int,
    words: str,
) -> None:
    answer = client.post("/api/v1/blueprints", json={**BODY, **change}, headers=api_headers)
    assert answer.status_code == status, answer.text
    assert words in json.dumps(answer.json()["detail"])
    assert count(russet, blueprints) == 0


def test_api_duplicate_payload_identifier_across_blueprints_is_409_naming_both(
    ports: Ports, client: TestClient, api_headers: dict[str, str], russet: Russet
) -> None:
    assert client.post("/api/v1/blueprints", json=BODY, headers=api_headers).status_code == 201
    other = {"name": "Elsewhere", "profiles": [{"ref": "wifi-copy"}], "scope": {"include": [2]}}
    answer = client.post("/api/v1/blueprints", json=other, headers=api_headers)
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert "'Office'" in detail and "'Elsewhere'" in detail and "com.example.wifi" in detail
    assert count(russet, blueprints) == 1


def test_api_reconcile_dry_run_then_real_and_device_state(
    ports: Ports, client: TestClient, api_headers: dict[str, str], russet: Russet
) -> None:
    client.post("/api/v1/blueprints", json=BODY, headers=api_headers)
    dry = client.post("/api/v1/blueprints/reconcile", json={"dry_run": True}, headers=api_headers).json()
    expected = {"install_profile": 4, "settings": 2, "install_application": 2}
    assert dry["dry_run"] and dry["commands"] == expected
    assert ports.sender.sent == [] and count(russet, blueprint_device_items) == 0

    run = client.post("/api/v1/blueprints/reconcile", json={"devices": ["dev-a"]}, headers=api_headers).json()
    assert run["devices"] == 1
    assert run["commands"] == {"install_profile": 2, "settings": 1, "install_application": 1}
    assert all(s.created_by == "reconcile:tests" for s in ports.sender.sent)

    state = client.get("/api/v1/blueprints/devices/dev-a", headers=api_headers).json()
    assert [b["name"] for b in state["blueprints"]] == ["Office"]
    assert {i["item"]: i["state"] for i in state["items"]} == {
        "com.example.wifi": "pending",
        "com.example.vpn": "pending",
        "TimeZone": "pending",
        "com.example.app-1": "pending",
    }
    assert state["apps"][0]["ref"] == "app-1"
    assert client.get("/api/v1/blueprints/devices/nobody", headers=api_headers).status_code == 404
    bad = client.post("/api/v1/blueprints/reconcile", json={"devices": []}, headers=api_headers)
    assert bad.status_code == 422


# -- CLI ------------------------------------------------------------------------------------------


@pytest.fixture
def run(invoke_cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`russet ARGS…` as (exit code, output), the blueprint commands' service on test ports."""
    ports = Ports()
    real_open = cli_blueprints.open_russet

    def open_with_ports(**kw: Any) -> Russet:
        opened = real_open(**kw)
        opened.blueprints = ports.service(opened)
        return opened

    monkeypatch.setattr(cli_blueprints, "open_russet", open_with_ports)

    def invoke(*args: str) -> tuple[int, str]:
        result = invoke_cli(*args)
        return result.exit_code, result.output

    invoke.ports = ports  # type: ignore[attr-defined]
    return invoke


def test_cli_blueprint_lifecycle_and_reconcile(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run(
        "blueprint",
        "create",
        "Office",
        "--profile",
        "wifi",
        "--profile",
        "vpn@1",
        "--time-zone",
        "Europe/Paris",
        "--include",
        "1",
        "--json",
    )
    assert code == 0, out
    made = json.loads(out)
    assert [p["version"] for p in made["profiles"]] == ["latest", 1]
    code, out = run("blueprint", "list")
    assert code == 0 and "Office" in out and "PROFILES" in out
    code, out = run("blueprint", "show", "Office")
    assert code == 0 and "com.example.vpn" in out and "Europe/Paris" in out

    code, out = run("reconcile", "--dry-run")
    assert code == 0 and "would queue 4 install_profile, 2 settings" in out
    assert "dev-a: install_profile com.example.wifi (missing)" in out
    assert run.ports.sender.sent == []
    code, out = run("reconcile", "--device", "dev-b", "--json")
    assert code == 0 and json.loads(out)["commands"] == {"install_profile": 2, "settings": 1}
    code, out = run("blueprint", "device", "dev-b")
    assert code == 0 and "com.example.wifi" in out and "pending" in out

    code, out = run("blueprint", "update", "Office", "--clear", "time-zone", "--include", "2", "--json")
    assert code == 0, out
    updated = json.loads(out)
    assert updated["settings"]["time_zone"] is None and updated["scope"]["include"] == [2]
    assert len(updated["profiles"]) == 2  # not given: kept
    code, out = run("blueprint", "delete", str(made["id"]))
    assert code == 0 and "deleted blueprint 'Office'" in out


def test_cli_errors_are_one_line(run) -> None:  # type: ignore[no-untyped-def]
    assert run("blueprint", "create", "Office", "--profile", "wifi")[0] == 0
    code, out = run("blueprint", "create", "Other", "--profile", "wifi-copy")
    assert (
        code == 1 and out.startswith("Error: PayloadIdentifier 'com.example.wifi'") and out.count("\n") == 1
    )
    assert "'Office'" in out and "'Other'" in out
    code, out = run("blueprint", "create", "Third", "--profile", "nope")
    assert code == 1 and out == "Error: profile 'nope': no profile 'nope' in the library\n"
    code, out = run("blueprint", "create", "Fourth", "--profile", "wifi@x")
    assert code == 1 and "REF@VERSION" in out
    code, out = run("blueprint", "show", "Missing")
    assert code == 1 and out == "Error: no blueprint 'Missing'\n"


# -- the runtime's wiring: the real groups, library and device services ---------------------------


def test_runtime_refuses_unknown_groups_and_profiles_and_the_library_keeps_used_profiles(
    client: TestClient, api_headers: dict[str, str], russet: Russet
) -> None:
    answer = client.post(
        "/api/v1/blueprints", json={"name": "A", "profiles": [{"ref": "wifi"}]}, headers=api_headers
    )
    assert answer.status_code == 400 and answer.json()["detail"] == (
        "profile 'wifi': no profile named 'wifi' in the library"
    )
    answer = client.post(
        "/api/v1/blueprints", json={"name": "A", "scope": {"include": [1]}}, headers=api_headers
    )
    assert answer.status_code == 400 and answer.json()["detail"] == "scope: no group with id 1"
    assert count(russet, blueprints) == 0

    russet.library.add(xml(profile(wifi())), name="wifi")
    group = russet.groups.create("Macs", query='model = "Mac14,2"')
    body = {"name": "A", "profiles": [{"ref": "wifi"}], "scope": {"include": [group["id"]]}}
    made = client.post("/api/v1/blueprints", json=body, headers=api_headers)
    assert made.status_code == 201, made.text
    assert made.json()["profiles"][0]["payload_identifier"] == "com.example.wifi"
    with pytest.raises(Conflict, match="profile 'wifi' is in use: blueprint 'A'"):
        russet.library.delete("wifi")
    run = client.post("/api/v1/blueprints/reconcile", json={}, headers=api_headers).json()
    assert run["devices"] == 0 and run["commands_total"] == 0 and run["errors"] == []
    assert client.delete("/api/v1/blueprints/A", headers=api_headers).status_code == 200
    assert russet.library.delete("wifi")["deleted"] == "wifi"
