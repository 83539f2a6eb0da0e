"""BlueprintService on real storage (SQLite, or PostgreSQL with RUSSET_TEST_DATABASE_URL): definitions
and their refusals, and the executor from a scope change to in sync, drift, failure and removal.

The ports are the in-memory ones of `tests/blueprint_support.py` (the groups, library and device
services live on other branches); everything the service stores goes through the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from russet.blueprints.service import BlueprintService, BlueprintSpec, ProfileRef
from russet.blueprints.tables import blueprint_device_items, blueprint_items, blueprints
from russet.kernel.errors import Conflict, Invalid, NotFound
from russet.runtime import Russet
from simulators.blueprint_ports import MemoryApps, MemoryGroups, MemoryLibrary, MemoryReports, MemorySender


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class World:
    """A BlueprintService on the test database with in-memory ports around it."""

    def __init__(self, russet: Russet, **kw: Any) -> None:
        self.engine = russet.storage.engine
        self.groups = MemoryGroups({1: {"dev-a", "dev-b"}, 2: {"dev-c"}, 3: set()})
        self.library = MemoryLibrary()
        self.sender = MemorySender()
        self.reports = MemoryReports()
        self.clock = Clock()
        self.apps = MemoryApps()
        for ref in ("app-1", "a"):
            self.apps.add(ref)
        self.service = BlueprintService(
            self.engine,
            self.groups,
            self.library,
            self.sender,
            self.reports,
            clock=self.clock,
            apps=self.apps,
            **kw,
        )

    def count(self, table: Any) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    def records(self, device_id: str) -> dict[str, dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(blueprint_device_items).where(blueprint_device_items.c.device_id == device_id)
            ).mappings()
            return {r["ident"]: dict(r) for r in rows}

    def ack_all(self, request_type: str, status: str = "Acknowledged", result: Any = None) -> int:
        """Answer every command of this type queued so far (as the MDM core would report them)."""
        done = 0
        for device_id, command_uuid, _ in self.sender.by_type(request_type):
            if self.service.on_command_result(device_id, command_uuid, status, result or {"Status": status}):
                done += 1
        return done

    def device_reports_profiles(self, device_id: str, profiles: dict[str, str]) -> None:
        self.reports.profile_list(device_id, profiles, self.clock.tick(seconds=1))


@pytest.fixture
def world(russet: Russet) -> World:
    return World(russet)


def spec(**kw: Any) -> BlueprintSpec:
    base: dict[str, Any] = {"name": "Office Macs", "description": "the office"}
    base.update(kw)
    return BlueprintSpec(**base)


# -- definitions --------------------------------------------------------------------------------


def test_create_show_list_update_delete(world: World) -> None:
    world.library.add("wifi")
    world.library.add("vpn")
    world.library.add("vpn")
    made = world.service.create(
        spec(
            profiles=(ProfileRef("wifi"), ProfileRef("vpn", 1)),
            device_name="Mac-$SERIAL",
            time_zone="Europe/Paris",
            apps=("app-1",),
            include=(1,),
            exclude=(2,),
        ),
        created_by="tests",
    )
    assert made["name"] == "Office Macs" and made["created_by"] == "tests"
    assert made["profiles"] == [
        {"ref": "wifi", "version": "latest", "payload_identifier": "com.example.wifi"},
        {"ref": "vpn", "version": 1, "payload_identifier": "com.example.vpn"},
    ]
    assert made["settings"] == {"device_name": "Mac-$SERIAL", "time_zone": "Europe/Paris"}
    assert made["apps"] == ["app-1"] and made["scope"] == {"include": [1], "exclude": [2]}
    assert world.service.get("Office Macs") == world.service.get(made["id"]) == made
    [listed] = world.service.list_blueprints()
    assert (listed["profiles"], listed["settings"], listed["apps"]) == (2, 2, 1)

    updated = world.service.update(made["id"], spec(name="Macs", profiles=(ProfileRef("vpn"),), include=(2,)))
    assert updated["name"] == "Macs" and [p["ref"] for p in updated["profiles"]] == ["vpn"]
    assert updated["settings"] == {"device_name": None, "time_zone": None}
    assert world.service.delete("Macs") == {"deleted": made["id"], "name": "Macs"}
    assert world.count(blueprints) == world.count(blueprint_items) == 0
    with pytest.raises(NotFound):
        world.service.get(made["id"])


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"profiles": (ProfileRef("nope"),)}, "profile 'nope'"),
        ({"profiles": (ProfileRef("wifi", 7),)}, "version 7"),
        ({"profiles": (ProfileRef("wifi"), ProfileRef("wifi"))}, "named twice"),
        ({"profiles": (ProfileRef("wifi"), ProfileRef("wifi-copy"))}, "same PayloadIdentifier"),
        ({"include": (99,)}, "no group 99"),
        ({"include": (1,), "exclude": (1,)}, "both included and excluded"),
        ({"include": (0,)}, "not a group id"),
        ({"time_zone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"device_name": "Mac-$USERNAME"}, "unknown variable $USERNAME"),
        ({"name": "12"}, "only digits"),
        ({"name": ""}, "must not be empty"),
        ({"name": "x" * 101}, "longer than 100"),
        ({"name": "a\x00b"}, "NUL"),
        ({"apps": ("a", "a")}, "named twice"),
    ],
)
def test_bad_definitions_are_refused_and_nothing_is_stored(
    world: World, kw: dict[str, Any], message: str
) -> None:
    world.library.add("wifi")
    world.library.add("wifi-copy", identifier="com.example.wifi")
    with pytest.raises(Invalid, match=message.replace("$", r"\$")):
        world.service.create(spec(**kw), created_by="tests")
    assert world.count(blueprints) == world.count(blueprint_items) == 0


def test_a_payload_identifier_belongs_to_one_blueprint(world: World) -> None:
    world.library.add("wifi")
    world.library.add("wifi-copy", identifier="com.example.wifi")
    world.service.create(spec(name="First", profiles=(ProfileRef("wifi"),), include=(1,)), created_by="t")
    # a different profile with the same identifier, in a blueprint scoped elsewhere: still refused
    with pytest.raises(Conflict) as refused:
        world.service.create(
            spec(name="Second", profiles=(ProfileRef("wifi-copy"),), include=(2,)), created_by="t"
        )
    assert "'First'" in str(refused.value) and "'Second'" in str(refused.value)
    assert "com.example.wifi" in str(refused.value)
    assert world.count(blueprints) == 1 and world.count(blueprint_items) == 1
    # updating another blueprint to claim it is refused too; updating the owner itself is fine
    world.library.add("vpn")
    second = world.service.create(spec(name="Second", profiles=(ProfileRef("vpn"),)), created_by="t")
    with pytest.raises(Conflict, match="'First'"):
        world.service.update(second["id"], spec(name="Second", profiles=(ProfileRef("wifi"),)))
    assert world.service.get("Second")["profiles"][0]["ref"] == "vpn"
    world.service.update("First", spec(name="First", profiles=(ProfileRef("wifi", 1),)))


def test_names_are_unique(world: World) -> None:
    world.service.create(spec(), created_by="t")
    with pytest.raises(Conflict, match="name"):
        world.service.create(spec(), created_by="t")


# -- the executor -------------------------------------------------------------------------------


def test_scope_change_to_in_sync_then_drift_then_leaving_scope(world: World) -> None:
    wifi, vpn = world.library.add("wifi"), world.library.add("vpn")
    world.reports.set("dev-a", profiles={"com.foreign.mail": "F1"}, profiles_at=world.clock())
    world.service.create(spec(profiles=(ProfileRef("wifi"), ProfileRef("vpn"))), created_by="t")
    assert world.service.reconcile()["commands_total"] == 0  # no scope: nothing to do

    world.service.update("Office Macs", spec(profiles=(ProfileRef("wifi"), ProfileRef("vpn")), include=(1,)))
    first = world.service.reconcile()
    assert first["devices"] == 2 and first["commands"] == {"install_profile": 4}
    installs = world.sender.by_type("InstallProfile")
    # a profile without variables renders the same bytes: one command for both devices
    assert len([s for s in world.sender.sent if s.command["RequestType"] == "InstallProfile"]) == 2
    assert {c["Payload"] for _, _, c in installs} == {b"signed:UUID-wifi-1", b"signed:UUID-vpn-1"}
    assert {r["state"] for r in world.records("dev-a").values()} == {"pending"}
    assert world.service.reconcile()["commands_total"] == 0  # in flight: nothing queued twice

    world.clock.tick(minutes=1)
    assert world.ack_all("InstallProfile") == 4
    recs = world.records("dev-a")
    assert {r["state"] for r in recs.values()} == {"in_sync"} and all(r["installed"] for r in recs.values())
    rechecks = world.sender.by_type("ProfileList")
    assert sorted(d for d, _, _ in rechecks) == ["dev-a", "dev-b"]  # one re-check per device, not per ack

    # the devices answer ProfileList: all there, verified; a pass now changes nothing
    for device_id, command_uuid, _ in rechecks:
        world.device_reports_profiles(
            device_id,
            {
                wifi.payload_identifier: wifi.payload_uuid,
                vpn.payload_identifier: vpn.payload_uuid,
                "com.foreign.mail": "F1",
            },
        )
        assert world.service.on_command_result(
            device_id, command_uuid, "Acknowledged", {"Status": "Acknowledged"}
        )
    idle = world.service.reconcile()
    assert idle["commands_total"] == 0 and idle["states"] == {"in_sync": 4}
    # settled: the next full pass skips both devices, reading none of their records
    again = world.service.reconcile()
    assert again["devices_settled_skipped"] == 2 and again["states"] == {"in_sync": 4}
    assert again["commands_total"] == 0
    # a new library version changes the desired state: re-planned, the new version installed
    world.library.add("wifi")
    upgraded = world.service.reconcile(dry_run=True)
    assert upgraded["devices_settled_skipped"] == 0 and upgraded["commands"] == {"install_profile": 2}
    world.library.versions["wifi"].pop()

    # drift: the user removed the VPN profile on dev-b; the next ProfileList shows it
    world.device_reports_profiles("dev-b", {wifi.payload_identifier: wifi.payload_uuid})
    state = world.service.device_state("dev-b")
    vpn_state = next(i for i in state["items"] if i["item"] == "com.example.vpn")
    assert vpn_state["state"] == "pending" and "drifted" in vpn_state["detail"]
    assert state["next_pass"] == [
        {
            "action": "install_profile",
            "reason": "drifted",
            "kind": "profile",
            "item": "com.example.vpn",
            "blueprint": 1,
            "profile": "vpn",
            "version": 1,
            "payload_uuid": "UUID-vpn-1",
        }
    ]
    before = len(world.sender.sent)
    assert world.service.reconcile()["commands"] == {"install_profile": 1}
    [(device, _, command)] = [
        (d, u, c)
        for s in world.sender.sent[before:]
        for d, u, c in [(t, s.uuids[t], s.command) for t in s.targets]
    ]
    assert device == "dev-b" and command["Payload"] == b"signed:UUID-vpn-1"

    # dev-a leaves the group: what the blueprint put there goes, the foreign profile stays
    world.groups.groups[1] = {"dev-b"}
    before = len(world.sender.sent)
    left = world.service.reconcile()
    removes = [(s.targets, s.command) for s in world.sender.sent[before:]]
    assert left["commands"] == {"remove_profile": 2}
    assert sorted(c["Identifier"] for t, c in removes) == ["com.example.vpn", "com.example.wifi"]
    assert all(t == ["dev-a"] for t, _ in removes)
    assert not any("com.foreign" in str(c) for _, c in removes)
    for device_id, command_uuid, _ in world.sender.by_type("RemoveProfile"):
        world.service.on_command_result(device_id, command_uuid, "Acknowledged", {"Status": "Acknowledged"})
    assert world.records("dev-a") == {}


def test_failure_keeps_apple_s_error_chain_and_is_not_retried_by_itself(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(2,)), created_by="t")
    world.service.reconcile()
    chain = [
        {
            "ErrorCode": 4001,
            "ErrorDomain": "MCProfileErrorDomain",
            "LocalizedDescription": "The profile is invalid.",
            "USEnglishDescription": "The profile is invalid.",
            "Extra": "dropped",
        }
    ]
    assert world.ack_all("InstallProfile", "Error", {"Status": "Error", "ErrorChain": chain}) == 1
    [rec] = world.records("dev-c").values()
    assert rec["state"] == "failed" and not rec["installed"]
    [item] = world.service.device_state("dev-c")["items"]
    assert item["state"] == "failed"
    assert item["error"]["error_chain"] == [{k: v for k, v in chain[0].items() if k != "Extra"}]
    assert world.service.reconcile()["commands_total"] == 0
    assert world.service.reconcile(retry_failed=True)["commands"] == {"install_profile": 1}


def test_a_command_that_ends_without_an_answer_fails_with_the_reason(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(2,)), created_by="t")
    world.service.reconcile()
    [(device, command_uuid, _)] = world.sender.by_type("InstallProfile")
    assert world.service.on_command_result(device, command_uuid, "NotNow", {"Status": "NotNow"})
    assert world.records("dev-c")["com.example.wifi"]["state"] == "pending"
    assert world.service.on_command_result(device, command_uuid, "undeliverable", None)
    assert "undeliverable" in world.records("dev-c")["com.example.wifi"]["error"]
    # a duplicate or foreign answer changes nothing
    assert world.service.on_command_result(device, "not-ours", "Acknowledged", None) is False


def test_dry_run_plans_without_queueing_or_storing(world: World) -> None:
    world.library.add("wifi")
    world.service.create(
        spec(profiles=(ProfileRef("wifi"),), time_zone="Europe/Paris", include=(1,)), created_by="t"
    )
    plan = world.service.reconcile(dry_run=True)
    assert plan["dry_run"] and plan["commands"] == {"install_profile": 2, "settings": 2}
    assert sorted(p["device"] for p in plan["plan"]) == ["dev-a", "dev-b"]
    assert world.sender.sent == [] and world.count(blueprint_device_items) == 0


def test_in_flight_bound_holds_across_passes(russet: Russet) -> None:
    world = World(russet, max_in_flight=2)
    refs = [world.library.add(f"p{n}").ref for n in range(5)]
    world.service.create(spec(profiles=tuple(ProfileRef(r) for r in refs), include=(2,)), created_by="t")
    first = world.service.reconcile()
    assert first["commands"] == {"install_profile": 2} and first["deferred"] == 3
    assert world.service.reconcile()["commands_total"] == 0  # two still in flight
    world.reports.set("dev-c", in_flight=1)  # say an admin's command is queued too
    sent = world.sender.by_type("InstallProfile")
    world.service.on_command_result("dev-c", sent[0][1], "Acknowledged", None)
    # the ack asked a ProfileList re-check, which is in flight too: 2 - (1 install + 1 ProfileList)
    assert world.service.reconcile(["dev-c"])["commands_total"] == 0
    [(_, recheck, _)] = world.sender.by_type("ProfileList")
    world.device_reports_profiles("dev-c", {"com.example.p0": "UUID-p0-1"})
    world.service.on_command_result("dev-c", recheck, "Acknowledged", None)
    again = world.service.reconcile(["dev-c"])
    assert again["commands"] == {"install_profile": 1}  # 2 - max(1 the core counts, 1 ours)


def test_conflict_appearing_later_is_reported_per_device_not_resolved(world: World) -> None:
    world.library.add("wifi")
    world.library.add("guest")
    world.service.create(spec(name="A", profiles=(ProfileRef("wifi"),), include=(1,)), created_by="t")
    world.service.create(spec(name="B", profiles=(ProfileRef("guest"),), include=(1, 2)), created_by="t")
    world.library.add("guest", identifier="com.example.wifi")  # the latest guest now claims wifi's identifier
    plan = world.service.reconcile()
    assert plan["devices_with_conflicts"] == 2  # dev-a and dev-b hold both blueprints
    installs = world.sender.by_type("InstallProfile")
    assert [(d, c["Payload"]) for d, _, c in installs] == [("dev-c", b"signed:UUID-guest-2")]
    state = world.service.device_state("dev-a")
    [conflict] = [i for i in state["items"] if i["state"] == "conflict"]
    assert conflict["item"] == "com.example.wifi"
    assert [b["name"] for b in conflict["blueprints"]] == ["A", "B"]


def test_deleting_a_blueprint_removes_what_it_installed(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(2,)), created_by="t")
    world.service.reconcile()
    world.ack_all("InstallProfile")
    world.service.delete("Office Macs")
    assert world.service.reconcile()["commands"] == {"remove_profile": 1}
    [(device, _, command)] = world.sender.by_type("RemoveProfile")
    assert device == "dev-c" and command == {"RequestType": "RemoveProfile", "Identifier": "com.example.wifi"}


def test_profiles_with_variables_get_one_command_per_device(world: World) -> None:
    world.library.add("mail")
    world.library.with_variables.add("mail")
    world.service.create(spec(profiles=(ProfileRef("mail"),), include=(1,)), created_by="t")
    world.service.reconcile()
    payloads = {d: c["Payload"] for d, _, c in world.sender.by_type("InstallProfile")}
    assert payloads == {"dev-a": b"signed:UUID-mail-1:dev-a", "dev-b": b"signed:UUID-mail-1:dev-b"}


def test_settings_device_name_waits_for_facts_then_applies(world: World) -> None:
    world.service.create(spec(device_name="Mac-$SERIAL", include=(2,)), created_by="t")
    assert world.service.reconcile()["commands_total"] == 0
    world.reports.set("dev-c", serial_number="C02XYZ", facts_at=world.clock())
    assert world.service.reconcile()["commands"] == {"settings": 1}
    [(_, _, command)] = world.sender.by_type("Settings")
    assert command == {
        "RequestType": "Settings",
        "Settings": [{"Item": "DeviceName", "DeviceName": "Mac-C02XYZ"}],
    }


def test_a_refused_send_is_reported_and_nothing_recorded(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(1,)), created_by="t")
    world.sender.fail_with = NotFound("no device 'dev-a'")
    run = world.service.reconcile()
    assert run["commands_total"] == 0 and "no device 'dev-a'" in run["errors"][0]
    assert world.count(blueprint_device_items) == 0


def test_a_profile_gone_from_the_library_leaves_its_devices_alone(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(2,)), created_by="t")
    world.service.reconcile()
    world.ack_all("InstallProfile")
    del world.library.versions["wifi"]
    run = world.service.reconcile()
    assert run["commands_total"] == 0 and "left as they are" in run["errors"][0]


def test_one_pass_at_a_time(world: World) -> None:
    assert world.service.items.acquire(
        "someone", world.clock(), world.clock.now + timedelta(minutes=5), full=True
    )
    with pytest.raises(Conflict, match="another reconcile pass"):
        world.service.reconcile()
    assert world.service.reconcile(dry_run=True)["dry_run"]  # a dry run takes no lease
    world.clock.tick(minutes=6)  # the other holder died: its lease ran out
    world.service.reconcile()


def test_periodic_pass_is_full_after_a_change_else_only_answered_devices(world: World) -> None:
    world.library.add("wifi")
    world.service.create(spec(profiles=(ProfileRef("wifi"),), include=(1, 2)), created_by="t")
    world.clock.tick(seconds=1)
    assert world.service.reconcile_due()["devices"] == 3  # changed since the last full pass
    world.clock.tick(seconds=1)
    assert world.service.reconcile_due() == {"skipped": "nothing to do"}
    [(device, command_uuid, _), *_] = world.sender.by_type("InstallProfile")
    world.service.on_command_result(device, command_uuid, "Acknowledged", None)
    world.clock.tick(seconds=1)
    assert world.service.reconcile_due()["devices"] == 1  # only the device that answered
    world.service.mark_changed()
    world.clock.tick(seconds=1)
    assert world.service.reconcile_due()["devices"] == 3


def test_device_state_of_an_unknown_device(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.device_state("nobody")


def test_every_command_the_reconciler_queues_is_one_russet_can_build(world: World) -> None:
    """The device service validates commands with russet.commands: what the reconciler sends passes."""
    from russet.commands import build_command

    world.library.add("wifi")
    world.reports.set("dev-c", serial_number="C02XYZ", facts_at=world.clock())
    world.service.create(
        spec(
            profiles=(ProfileRef("wifi"),), device_name="Mac-$SERIAL", time_zone="Europe/Paris", include=(2,)
        ),
        created_by="t",
    )
    world.service.reconcile()
    world.ack_all("InstallProfile")
    world.service.delete("Office Macs")
    world.service.reconcile()
    kinds = {s.command["RequestType"] for s in world.sender.sent}
    assert kinds == {"InstallProfile", "Settings", "ProfileList", "RemoveProfile"}
    for sent in world.sender.sent:
        assert build_command(sent.command)["RequestType"] == sent.command["RequestType"]
