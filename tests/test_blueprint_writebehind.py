"""A reconcile pass writes batch N on a second thread while it plans batch N+1 (`WriteBehind`):
the same outcome as writing inline, no command of a batch queued before the previous batch's
records are stored, a failed write stopping the pass there, and no write outliving the pass.
Also the batch read behind it (`HotRead.all`): records come back as the planner's own values.

Runs on SQLite, or PostgreSQL with RUSSET_TEST_DATABASE_URL; the ports are the in-memory ones.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest
from sqlalchemy import select

from russet.blueprints.service import BlueprintSpec, ProfileRef
from russet.blueprints.tables import blueprint_device_items, blueprint_devices
from russet.blueprints.writebehind import WriteBehind
from russet.runtime import Russet
from tests.test_blueprints import World

DEVICES = ["dev-a", "dev-b", "dev-c"]  # groups 1 (dev-a, dev-b) and 2 (dev-c) of World


def _world(russet: Russet, **kw: Any) -> World:
    kw.setdefault("write_behind", True)  # the default on PostgreSQL; SQLite writes inline
    world = World(russet, batch_size=1, **kw)  # one device per batch: three batches
    world.library.add("wifi")
    world.library.add("vpn")
    world.service.create(
        BlueprintSpec("Fleet", profiles=(ProfileRef("wifi"), ProfileRef("vpn")), include=(1, 2)),
        created_by="t",
    )
    return world


def _stored(world: World) -> list[tuple[Any, ...]]:
    d = blueprint_device_items.c
    with world.engine.connect() as conn:
        return [
            tuple(r)
            for r in conn.execute(
                select(d.device_id, d.ident, d.state, d.action, d.command_uuid).order_by(d.device_id, d.ident)
            )
        ]


def test_writes_run_on_a_second_thread_and_errors_come_back() -> None:
    names: list[str] = []
    with WriteBehind() as writer:
        writer.submit(lambda **kw: names.append(threading.current_thread().name), x=1)
        writer.wait()
        assert names and names[0] != threading.current_thread().name

        def fail(**_: Any) -> None:
            raise RuntimeError("disk full")

        writer.submit(fail)
        with pytest.raises(RuntimeError, match="disk full"):
            writer.submit(names.append)  # the next write does not start after a failed one
    assert len(names) == 1

    inline: list[str] = []
    with WriteBehind(inline=True) as writer:
        writer.submit(lambda **kw: inline.append(threading.current_thread().name))
        assert inline == [threading.current_thread().name]  # done before submit returns


def test_the_pass_error_wins_and_the_write_error_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def fail(**_: Any) -> None:
        raise OSError("connection lost")

    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="planning"):
        with WriteBehind() as writer:
            writer.submit(fail)
            raise ValueError("planning failed")
    assert "a batch's write failed as well: OSError" in caplog.text


def test_same_outcome_as_writing_inline(russet: Russet) -> None:
    behind = _world(russet)
    answer = behind.service.reconcile()
    assert answer["devices"] == 3 and answer["commands"] == {"install_profile": 6}
    # every batch's write is done when the pass returns, the last one included
    stored = _stored(behind)
    assert len(stored) == 6 and {row[2] for row in stored} == {"pending"}
    assert {row[0] for row in stored} == set(DEVICES)

    with behind.engine.begin() as conn:  # start again, writing inline this time
        conn.execute(blueprint_device_items.delete())
        conn.execute(blueprint_devices.delete())
    inline = World(russet, batch_size=1, write_behind=False)  # the same blueprint, stored already
    inline.library.add("wifi")
    inline.library.add("vpn")
    assert inline.service.reconcile() == answer
    again = _stored(inline)
    assert [row[:4] for row in again] == [row[:4] for row in stored]


def test_a_failed_write_stops_the_pass_before_the_next_batch_s_commands(russet: Russet) -> None:
    world = _world(russet)
    real = world.service.items.write
    writes: list[list[str]] = []

    def write(**kw: Any) -> None:
        writes.append(sorted({u["device_id"] for u in kw["upserts"]}))
        if len(writes) == 1:
            raise RuntimeError("the database went away")
        real(**kw)

    world.service.items.write = write  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="went away"):
        world.service.reconcile()
    # batch 1 (dev-a) was queued and its write failed; batch 2 (dev-b) was planned meanwhile but
    # its commands never went out, nor any of batch 3's
    queued = {d for s in world.sender.sent for d in s.targets}
    assert queued == {"dev-a"} and writes == [["dev-a"]]
    assert _stored(world) == []
    # the lease was given back: the next pass runs, and queues what is missing everywhere
    world.service.items.write = real  # type: ignore[method-assign]
    again = world.service.reconcile()
    assert again["commands"] == {"install_profile": 6}


def test_records_read_in_bulk_are_the_planner_s_values(russet: Russet) -> None:
    world = _world(russet)
    world.service.reconcile()
    world.clock.tick(minutes=1)
    assert world.ack_all("InstallProfile") == 6
    records = world.service.items.records(["dev-c", "dev-a", "nobody"])
    assert sorted(records) == ["dev-a", "dev-c"]
    wifi = records["dev-a"][("profile", "com.example.wifi")]
    assert wifi.installed is True and wifi.state == "in_sync"
    assert wifi.blueprint_id == world.service.get("Fleet")["id"]
    assert wifi.acked_at == world.clock.now and wifi.acked_at.utcoffset() is not None  # aware, UTC
    assert wifi.queued_at is not None and wifi.queued_at < wifi.acked_at and wifi.command_uuid is None
    assert records["dev-a"] == {r.key: r for r in records["dev-a"].values()}
