"""App items in the reconciler: the pure decision (`russet.blueprints.reconcile`) and the executor
with an in-memory catalogue (`simulators/blueprint_ports.MemoryApps`) on the test database —
licences first, failure with the reason when none is left, the ManagedApplicationList re-check,
drift, removal and the licence given back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from russet.blueprints.ports import DeviceReport
from russet.blueprints.reconcile import (
    APP,
    APP_LIST,
    DRIFTED,
    FAILED,
    IN_SYNC,
    INSTALL_APP,
    PENDING,
    REMOVE_APP,
    Desired,
    Policy,
    Record,
    merge,
    plan_device,
)
from russet.blueprints.service import AppRef, BlueprintService, BlueprintSpec
from russet.blueprints.tables import blueprint_device_items, blueprints
from russet.kernel.errors import Conflict, Invalid
from russet.runtime import Russet
from simulators.blueprint_ports import MemoryApps, MemoryGroups, MemoryLibrary, MemoryReports, MemorySender

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(hours=2)
POLICY = Policy(max_in_flight=5)


def app(bundle: str = "com.example.a", bp: int = 1, content: str = "h1") -> Desired:
    return Desired(APP, bundle, bp, ref=f"ref-{bundle}", content_hash=content)


def record(d: Desired, *, installed: bool = True, state: str = IN_SYNC, action: str = INSTALL_APP) -> Record:
    return Record(
        APP,
        d.ident,
        d.blueprint_id,
        state,
        action,
        installed,
        ref=d.ref,
        content_hash=d.content_hash,
        acked_at=EARLIER,
    )


def plan(desired: list[Desired], records: list[Record], report: DeviceReport | None, **kw: Any) -> Any:
    return plan_device("dev1", merge(desired), {r.key: r for r in records}, report, POLICY, NOW, **kw)


def test_a_missing_app_is_installed_and_then_checked_by_managed_application_list() -> None:
    a = app()
    first = plan([a], [], DeviceReport())
    assert [(x.action, x.ident, x.reason) for x in first.actions] == [(INSTALL_APP, a.ident, "missing")]
    # Acknowledged, not listed since: in sync but unverified, and the list is asked.
    after = plan([a], [record(a)], DeviceReport(apps={}, apps_at=EARLIER - timedelta(minutes=1)))
    assert [x.action for x in after.actions] == [APP_LIST] and not after.settled
    verified = plan([a], [record(a)], DeviceReport(apps={a.ident: "Managed"}, apps_at=NOW))
    assert verified.actions == [] and verified.settled
    assert verified.states[0].state == IN_SYNC and verified.states[0].actual == "Managed"


@pytest.mark.parametrize("status", [None, "ManagedButUninstalled"])
def test_an_app_gone_from_the_device_is_drift_and_reinstalled(status: str | None) -> None:
    a = app()
    apps = {} if status is None else {a.ident: status}
    out = plan([a], [record(a)], DeviceReport(apps=apps, apps_at=NOW))
    assert [(x.action, x.reason) for x in out.actions] == [(INSTALL_APP, "drifted")]
    busy = plan([a], [record(a)], DeviceReport(apps=apps, apps_at=NOW, in_flight=5))
    assert busy.actions == [] and busy.states[0].state == DRIFTED


def test_a_failure_the_device_reports_is_failed_not_retried_until_asked() -> None:
    a = app()
    report = DeviceReport(apps={a.ident: "UserRejected"}, apps_at=NOW)
    out = plan([a], [record(a)], report)
    assert out.actions == [] and out.states[0].state == FAILED and "UserRejected" in out.states[0].detail
    retry = plan_device(
        "dev1", merge([a]), {record(a).key: record(a)}, report, Policy(retry_failed=True), NOW
    )
    assert [x.reason for x in retry.actions] == ["retry"]


def test_installing_is_pending_and_asked_again_after_the_poll_interval() -> None:
    a = app()
    soon = plan(
        [a], [record(a)], DeviceReport(apps={a.ident: "Installing"}, apps_at=NOW - timedelta(minutes=1))
    )
    assert soon.actions == [] and soon.states[0].state == PENDING
    later = plan(
        [a], [record(a)], DeviceReport(apps={a.ident: "Installing"}, apps_at=NOW - timedelta(minutes=6))
    )
    assert [x.action for x in later.actions] == [APP_LIST]


def test_a_new_configuration_reinstalls() -> None:
    a = app()
    out = plan(
        [a._replace(content_hash="h2")], [record(a)], DeviceReport(apps={a.ident: "Managed"}, apps_at=NOW)
    )
    assert [(x.action, x.reason) for x in out.actions] == [(INSTALL_APP, "new version")]


def test_leaving_scope_removes_what_the_reconciler_installed_and_releases_the_rest() -> None:
    a, b = app("com.example.a"), app("com.example.b")
    out = plan(
        [], [record(a), record(b, installed=False, state=FAILED)], DeviceReport(apps={a.ident: "Managed"})
    )
    assert [(x.action, x.ident) for x in out.actions] == [(REMOVE_APP, a.ident)]
    assert out.forget == [(APP, b.ident)] and out.released == [b.ref]
    gone = plan([], [record(a)], DeviceReport(apps={}, apps_at=NOW))
    assert gone.actions == [] and gone.forget == [(APP, a.ident)] and gone.released == [a.ref]


def test_two_blueprints_wanting_one_app_with_different_configurations_conflict() -> None:
    out = plan([app(bp=1, content="x"), app(bp=2, content="y")], [], DeviceReport())
    assert out.actions == [] and out.states[0].state == "conflict" and "bundle id" in out.states[0].detail


# -- the executor with an in-memory catalogue -----------------------------------------------------


class World:
    def __init__(self, russet: Russet) -> None:
        self.engine = russet.storage.engine
        self.groups = MemoryGroups({1: {"dev-a", "dev-b"}, 2: set()})
        self.sender = MemorySender()
        self.reports = MemoryReports()
        self.apps = MemoryApps()
        self.apps.add("pages", "com.apple.Pages", licences=1)
        self.apps.add("demo", "com.example.demo")
        self.now = NOW
        self.service = BlueprintService(
            self.engine,
            self.groups,
            MemoryLibrary(),
            self.sender,
            self.reports,
            clock=lambda: self.now,
            apps=self.apps,
        )

    def records(self) -> dict[tuple[str, str], Any]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(blueprint_device_items)).all()
        return {(r.device_id, r.ident): r for r in rows}

    def answer(self, device: str, request_type: str, status: str = "Acknowledged", **result: Any) -> None:
        [(uuid, _)] = [
            (u, c) for u, c in self.sender.commands_for(device) if c["RequestType"] == request_type
        ][-1:]
        self.service.on_command_result(device, uuid, status, result)


@pytest.fixture
def world(russet: Russet) -> World:
    return World(russet)


def test_assigning_more_devices_than_licences_is_refused_naming_the_app(world: World) -> None:
    spec = BlueprintSpec("Office", apps=(AppRef("pages"),), include=(1,))
    with pytest.raises(Conflict, match="'pages'.*2 devices in scope need a licence, 1 left"):
        world.service.create(spec, created_by="tests")
    with pytest.raises(Invalid, match="app 'nope'"):
        world.service.create(BlueprintSpec("X", apps=("nope",)), created_by="tests")
    with pytest.raises(Invalid, match="nests deeper"):
        deep: dict[str, Any] = {}
        cur = deep
        for _ in range(12):
            cur["k"] = {}
            cur = cur["k"]
        world.service.create(BlueprintSpec("X", apps=(AppRef("demo", deep),)), created_by="tests")
    with pytest.raises(Invalid, match="null"):
        world.service.create(BlueprintSpec("X", apps=(AppRef("demo", {"a": None}),)), created_by="tests")
    with pytest.raises(Invalid, match="larger than 64 KiB"):
        world.service.create(
            BlueprintSpec("X", apps=(AppRef("demo", {"a": "x" * 70_000}),)), created_by="tests"
        )
    assert world.service.list_blueprints() == []
    with world.engine.connect() as conn:
        assert conn.execute(select(blueprints)).first() is None


def test_no_licence_left_at_reconcile_time_is_failed_with_the_reason(world: World) -> None:
    # The scope grows after the blueprint was saved (the count is checked when assigning only).
    world.groups.groups[1] = {"dev-a"}
    world.service.create(
        BlueprintSpec("Office", apps=(AppRef("pages"), AppRef("demo", {"Mode": "kiosk"})), include=(1,)),
        created_by="tests",
    )
    world.groups.groups[1] = {"dev-a", "dev-b"}
    answer = world.service.reconcile()
    assert answer["commands"] == {"install_application": 3}  # pages once (one licence), demo twice
    failed = world.records()[("dev-b", "com.apple.Pages")]
    assert (failed.state, failed.action) == (FAILED, "await_licence") and "no licence left" in failed.error
    assert any("'pages'" in e and "no licence left" in e for e in answer["errors"])
    [(_, demo)] = [
        (u, c) for u, c in world.sender.commands_for("dev-a") if c.get("Identifier") == "com.example.demo"
    ]
    assert demo["Configuration"] == {"Mode": "kiosk"}
    # Not retried by itself; the device's state names the reason.
    again = world.service.reconcile(["dev-b"])
    assert again["commands"] == {}
    state = world.service.device_state("dev-b")
    [pages] = [i for i in state["items"] if i["item"] == "com.apple.Pages"]
    assert pages["state"] == FAILED and "no licence left" in pages["error"]["reason"]


def test_install_recheck_drift_and_removal_with_the_licence_given_back(world: World) -> None:
    world.groups.groups[1] = {"dev-a"}
    made = world.service.create(
        BlueprintSpec("Office", apps=(AppRef("pages"),), include=(1,)), created_by="t"
    )
    assert world.service.reconcile()["commands"] == {"install_application": 1}
    assert ("dev-a", "pages") in world.apps.held
    world.answer("dev-a", "InstallApplication", Identifier="com.apple.Pages", State="Managed")
    assert world.records()[("dev-a", "com.apple.Pages")].installed
    world.answer("dev-a", "ManagedApplicationList")  # the re-check the answer queued
    world.now += timedelta(minutes=1)
    world.reports.app_list("dev-a", {"com.apple.Pages": "Managed"}, world.now)
    world.now += timedelta(minutes=1)
    assert world.service.reconcile()["commands"] == {}
    # Drift.
    world.reports.app_list("dev-a", {}, world.now)
    world.now += timedelta(minutes=1)
    assert world.service.reconcile()["commands"] == {"install_application": 1}
    world.answer("dev-a", "InstallApplication")
    # Leaving scope: RemoveApplication, and once acknowledged the licence goes back.
    world.service.update(made["id"], BlueprintSpec("Office", apps=(AppRef("pages"),), include=(2,)))
    assert world.service.reconcile()["commands"] == {"remove_application": 1}
    assert world.apps.released == []
    world.answer("dev-a", "RemoveApplication")
    assert world.apps.released == [("dev-a", "pages")] and world.apps.held == set()
    assert world.records() == {}
