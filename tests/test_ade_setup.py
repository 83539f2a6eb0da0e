"""The ADE setup rules on BlueprintService (real storage, in-memory ports, a test clock): which
devices an ADE profile's blueprint covers, when DeviceConfigured is queued, and that it is queued
once per enrollment. The whole path over HTTP is in tests/test_ade_setup_e2e.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from russet.blueprints.ade import AdeSetupStore
from russet.blueprints.service import BlueprintService, BlueprintSpec, ProfileRef
from russet.kernel.errors import Invalid, NotFound
from russet.kernel.events import CommandAnswered, DeviceAwaitingConfiguration
from russet.runtime import Russet
from simulators.blueprint_ports import MemoryGroups, MemoryLibrary, MemoryReports, MemorySender

ENROLLED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class MemoryAde:
    """The ABM side of the AdeBlueprints port: device -> the blueprint its ADE profile names."""

    def __init__(self) -> None:
        self.devices: dict[str, int] = {}

    def ade_blueprints(self) -> Mapping[str, int]:
        return dict(self.devices)


class World:
    def __init__(self, russet: Russet, **kw: Any) -> None:
        self.groups = MemoryGroups({1: {"dev-g"}, 2: {"dev-x"}})
        self.library = MemoryLibrary()
        self.library.add("wifi")
        self.library.add("vpn")
        self.sender = MemorySender()
        self.ade = MemoryAde()
        self.clock = Clock()
        self.answered: set[str] = set()
        self.service = BlueprintService(
            russet.storage.engine,
            self.groups,
            self.library,
            self.sender,
            MemoryReports(),
            clock=self.clock,
            ade=self.ade,
            ade_release_after=timedelta(minutes=15),
            **kw,
        )

    def blueprint(self, name: str, *refs: str, **kw: Any) -> int:
        made = self.service.create(
            BlueprintSpec(name=name, profiles=tuple(ProfileRef(r) for r in refs), **kw), created_by="tests"
        )
        return int(made["id"])

    def awaiting(self, device_id: str, enrolled_at: datetime = ENROLLED) -> None:
        self.service.on_awaiting_configuration(DeviceAwaitingConfiguration(device_id, enrolled_at))

    def kinds(self, device_id: str) -> list[str]:
        return [c["RequestType"] for _, c in self.sender.commands_for(device_id)]

    def answer(self, device_id: str, request_type: str, status: str = "Acknowledged") -> None:
        """Answer, as the MDM core publishes it, every command of that type not answered yet."""
        for uuid, command in self.sender.commands_for(device_id):
            if command["RequestType"] == request_type and uuid not in self.answered:
                self.answered.add(uuid)
                self.service.on_command_answered(
                    CommandAnswered(device_id, uuid, request_type, status, {"Status": status})
                )


@pytest.fixture
def world(russet: Russet) -> World:
    return World(russet)


def test_an_ade_profile_s_blueprint_adds_its_devices_to_the_scope(world: World) -> None:
    staff = world.blueprint("Staff", "wifi", exclude=(2,))
    world.blueprint("Groups", "vpn", include=(1,))
    world.ade.devices = {"dev-a": staff, "dev-g": staff, "dev-x": staff, "dev-old": 999}
    answer = world.service.reconcile()
    assert answer["commands"] == {"install_profile": 3}
    # dev-a by its ADE profile only; dev-g by both; dev-x excluded by the blueprint's exclude group;
    # a blueprint deleted since (999) is ignored.
    assert sorted(d for d, _, _ in world.sender.by_type("InstallProfile")) == ["dev-a", "dev-g", "dev-g"]
    assert [b["name"] for b in world.service.device_state("dev-g")["blueprints"]] == ["Staff", "Groups"]
    with pytest.raises(NotFound):  # in no blueprint's scope
        world.service.device_state("dev-x")


def test_items_first_then_device_configured_once(russet: Russet) -> None:
    world = World(russet, max_in_flight=1)  # one command at a time: the second item waits its turn
    staff = world.blueprint("Staff", "wifi", "vpn")
    world.ade.devices = {"dev-a": staff}
    world.awaiting("dev-a")
    assert world.kinds("dev-a") == ["InstallProfile"]
    assert world.service.setup_of("dev-a")["state"] == "waiting"  # type: ignore[index]
    world.answer("dev-a", "InstallProfile")  # then the reconciler's ProfileList check
    assert world.kinds("dev-a") == ["InstallProfile", "ProfileList"]
    world.answer("dev-a", "ProfileList")  # the next item goes at once, not at the next pass
    assert world.kinds("dev-a") == ["InstallProfile", "ProfileList", "InstallProfile"]
    world.answer("dev-a", "InstallProfile", "Error")
    assert world.kinds("dev-a")[-1] == "DeviceConfigured"
    setup = world.service.setup_of("dev-a")
    assert setup is not None and setup["state"] == "device_configured_queued"
    assert setup["reason"] == "items_done" and [i["state"] for i in setup["incomplete"]] == ["failed"]

    # Neither a repeated TokenUpdate nor the periodic check queues it again; the answer is kept.
    world.awaiting("dev-a")
    assert world.service.setups.advance_waiting() == {"waiting": 0, "released": {}}
    world.answer("dev-a", "DeviceConfigured")
    assert world.kinds("dev-a").count("DeviceConfigured") == 1
    assert world.service.setup_of("dev-a")["state"] == "device_configured_acknowledged"  # type: ignore[index]

    # The device is erased and enrolls again (a new Authenticate time): a new round, in which
    # its items are installed again (it holds none of them), then a DeviceConfigured of its own.
    world.awaiting("dev-a", ENROLLED + timedelta(days=1))
    assert world.service.setup_of("dev-a")["state"] == "waiting"  # type: ignore[index]
    assert world.kinds("dev-a")[-1] == "InstallProfile"
    world.answer("dev-a", "InstallProfile")
    world.answer("dev-a", "ProfileList")
    world.answer("dev-a", "InstallProfile")
    assert world.kinds("dev-a").count("DeviceConfigured") == 2
    assert world.service.setup_of("dev-a")["incomplete"] == []  # type: ignore[index]


def test_no_blueprint_is_released_at_once_and_a_timeout_releases_the_rest(world: World) -> None:
    staff = world.blueprint("Staff", "wifi")
    world.ade.devices = {"dev-a": staff}
    world.awaiting("dev-none")
    assert world.kinds("dev-none") == ["DeviceConfigured"]
    assert world.service.setup_of("dev-none")["reason"] == "no_blueprint"  # type: ignore[index]

    world.awaiting("dev-a")  # its InstallProfile is never answered
    world.clock.now += timedelta(minutes=14)
    assert world.service.setups.advance_waiting() == {"waiting": 1, "released": {}}
    world.clock.now += timedelta(minutes=1)
    assert world.service.setups.advance_waiting() == {"waiting": 0, "released": {"timeout": 1}}
    assert world.kinds("dev-a") == ["InstallProfile", "DeviceConfigured"]
    setup = world.service.setup_of("dev-a")
    assert setup is not None and setup["reason"] == "timeout"
    assert [(i["item"], i["state"]) for i in setup["incomplete"]] == [("com.example.wifi", "pending")]


def test_a_refused_device_configured_is_shown_and_tried_again_on_the_next_tokenupdate(world: World) -> None:
    world.sender.fail_with = Invalid("DeviceConfigured needs a device enrolled through ADE")
    world.awaiting("dev-a")
    setup = world.service.setup_of("dev-a")
    assert setup is not None and setup["state"] == "not_queued" and setup["command_uuid"] is None
    assert world.service.setups.advance_waiting() == {"waiting": 0, "released": {}}  # not retried by itself
    world.sender.fail_with = None
    world.awaiting("dev-a")
    assert world.kinds("dev-a") == ["DeviceConfigured"]


def test_only_one_claim_wins(russet: Russet) -> None:
    store = AdeSetupStore(russet.storage.engine)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    store.open("dev-a", None, now)
    assert store.claim("dev-a", now, "items_done", [])
    assert not store.claim("dev-a", now, "timeout", [])
    row = store.get("dev-a")
    assert row is not None and row.reason == "items_done"
