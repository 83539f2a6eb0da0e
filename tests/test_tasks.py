"""Periodic tasks declared as data, run on their interval, once across every node sharing a database.

The lease rules are checked with explicit times on the store; the runner with real (short)
intervals, including two runners — each with its own engine and event loop, as two `russet serve`
nodes would have — on one database (a SQLite file, or a PostgreSQL schema when
RUSSET_TEST_DATABASE_URL names one).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from russet.cli.main import cli
from russet.config import Settings
from russet.infra.tasks import STOPPED, TaskRunner
from russet.kernel.tasks import PeriodicTask
from russet.runtime import Russet
from russet.storage.db import make_engine, migrate
from russet.storage.leases import TaskLeases

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
EVERY = timedelta(seconds=60)
TTL = timedelta(seconds=30)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url, pool_size=4)
    migrate(engine)
    yield engine
    engine.dispose()


def _second_engine(database_url: str) -> Engine:
    """Another node's engine on the same database (its own pool, its own SQLite writer lock)."""
    return make_engine(database_url, pool_size=4)


# -- the declaration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "", "every_seconds": 1},
        {"name": "x" * 101, "every_seconds": 1},
        {"name": "bad\nname", "every_seconds": 1},
        {"name": "t", "every_seconds": 0},
        {"name": "t", "every_seconds": 1, "first_delay": -1},
    ],
)
def test_a_task_declaration_is_checked(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PeriodicTask(run=lambda: None, once_across_nodes=True, **kwargs)  # type: ignore[arg-type]


def test_a_runner_refuses_two_tasks_with_one_name(engine: Engine) -> None:
    task = PeriodicTask("same", 1, lambda: None, once_across_nodes=True)
    with pytest.raises(ValueError, match="same"):
        TaskRunner([task, task], TaskLeases(engine))


# -- the lease rules, with explicit times ----------------------------------------------------------


def test_a_lease_is_taken_once_per_interval(engine: Engine) -> None:
    leases = TaskLeases(engine)
    assert leases.claim("sync", "a", T0, EVERY, TTL)  # no row yet: created holding the lease
    assert not leases.claim("sync", "b", T0, EVERY, TTL)  # held
    assert leases.release("sync", "a", T0 + timedelta(seconds=5), None)
    assert not leases.claim("sync", "b", T0 + timedelta(seconds=6), EVERY, TTL)  # free, but not due
    assert not leases.claim("sync", "a", T0 + EVERY - timedelta(microseconds=1), EVERY, TTL)
    assert leases.claim("sync", "b", T0 + EVERY, EVERY, TTL)
    row = leases.get("sync")
    assert row is not None
    assert (row["holder"], row["last_started"], row["runs"]) == ("b", T0 + EVERY, 2)
    assert row["until"] == T0 + EVERY + TTL
    assert row["last_finished"] == T0 + timedelta(seconds=5)


def test_a_crashed_holders_lease_expires_and_it_cannot_clobber_the_next_holder(engine: Engine) -> None:
    leases = TaskLeases(engine)
    assert leases.claim("sweep", "crashed", T0, EVERY, TTL)  # ...and never released
    late = T0 + EVERY  # due again, but still held: the holder might be running long
    assert not leases.claim("sweep", "b", late - TTL - timedelta(seconds=1), EVERY, TTL)
    assert not leases.claim("sweep", "b", T0 + TTL - timedelta(seconds=1), timedelta(seconds=1), TTL)
    # Past its `until` the lease is free, and the next due run goes to another process.
    assert leases.claim("sweep", "b", T0 + TTL + timedelta(seconds=1), timedelta(seconds=1), TTL)
    # The old holder (if it was only frozen) can neither renew nor release b's lease.
    assert not leases.renew("sweep", "crashed", T0 + TTL + timedelta(seconds=2), TTL)
    assert not leases.release("sweep", "crashed", T0 + TTL + timedelta(seconds=2), "late")
    row = leases.get("sweep")
    assert row is not None and row["holder"] == "b" and row["last_error"] is None and row["runs"] == 2


def test_a_renewed_lease_is_not_taken_over(engine: Engine) -> None:
    leases = TaskLeases(engine)
    assert leases.claim("long", "a", T0, timedelta(seconds=1), TTL)
    assert leases.renew("long", "a", T0 + TTL - timedelta(seconds=1), TTL)
    assert not leases.claim("long", "b", T0 + TTL + timedelta(seconds=1), timedelta(seconds=1), TTL)


def test_two_engines_racing_for_a_new_lease_get_one_between_them(engine: Engine, database_url: str) -> None:
    other = _second_engine(database_url)
    try:
        won: list[str] = []
        barrier = threading.Barrier(8)

        def race(name: str, leases: TaskLeases) -> None:
            barrier.wait()
            if leases.claim("race", name, T0, EVERY, TTL):
                won.append(name)

        threads = [
            threading.Thread(target=race, args=(f"n{i}", TaskLeases(engine if i % 2 else other)))
            for i in range(8)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(won) == 1
        row = TaskLeases(engine).get("race")
        assert row is not None and row["holder"] == won[0] and row["runs"] == 1
    finally:
        other.dispose()


# -- one runner ------------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_the_runner_runs_a_due_task_once(engine: Engine) -> None:
    calls: list[int] = []
    loop_thread: list[int] = []

    def work() -> str:
        calls.append(threading.get_ident())
        return "done"

    clock = Clock(T0)
    task = PeriodicTask("work", 60, work, once_across_nodes=True)
    runner = TaskRunner([task], TaskLeases(engine), "node-a", clock=clock)

    async def main() -> tuple[bool, bool]:
        loop_thread.append(threading.get_ident())
        return await runner.attempt(task), await runner.attempt(task)

    assert asyncio.run(main()) == (True, False)
    assert len(calls) == 1
    assert calls[0] != loop_thread[0]  # sync work runs in a thread, not on the event loop
    row = TaskLeases(engine).get("work")
    assert row is not None
    assert row["until"] is None and row["last_finished"] == T0 and row["last_error"] is None


def test_async_work_runs_on_the_loop(engine: Engine) -> None:
    seen: list[asyncio.AbstractEventLoop] = []

    async def work() -> None:
        seen.append(asyncio.get_running_loop())

    task = PeriodicTask("async", 60, work, once_across_nodes=False)
    runner = TaskRunner([task], TaskLeases(engine), "node-a")

    async def main() -> asyncio.AbstractEventLoop:
        await runner.attempt(task)
        return asyncio.get_running_loop()

    assert seen == [asyncio.run(main())]
    assert TaskLeases(engine).get("async") is None  # per-process work takes no lease


def test_a_failing_task_is_recorded_and_retried_next_interval(engine: Engine) -> None:
    outcomes = iter([RuntimeError("Apple said 503"), None])

    def flaky() -> None:
        failure = next(outcomes)
        if failure is not None:
            raise failure

    clock = Clock(T0)
    task = PeriodicTask("flaky", 60, flaky, once_across_nodes=True)
    runner = TaskRunner([task], TaskLeases(engine), "node-a", clock=clock)
    leases = TaskLeases(engine)

    assert asyncio.run(runner.attempt(task))
    row = leases.get("flaky")
    assert row is not None and row["last_error"] == "RuntimeError: Apple said 503" and row["until"] is None
    clock.now = T0 + timedelta(seconds=59)
    assert not asyncio.run(runner.attempt(task))  # not before its next interval
    clock.now = T0 + timedelta(seconds=60)
    assert asyncio.run(runner.attempt(task))
    row = leases.get("flaky")
    assert row is not None and row["last_error"] is None and row["runs"] == 2


def test_a_failing_task_does_not_stop_its_loop(engine: Engine) -> None:
    runs: list[float] = []

    def broken() -> None:
        runs.append(time.monotonic())
        raise ValueError("always")

    async def main() -> None:
        runner = TaskRunner(
            [
                PeriodicTask("broken.shared", 0.15, broken, once_across_nodes=True),
                PeriodicTask("broken.local", 0.15, broken, once_across_nodes=False),
            ],
            TaskLeases(engine),
            "node-a",
        )
        runner.start()
        await asyncio.sleep(0.8)
        await runner.stop()

    asyncio.run(main())
    assert len(runs) >= 4  # both loops went on after failing
    row = TaskLeases(engine).get("broken.shared")
    assert row is not None and row["runs"] >= 2 and row["last_error"] == "ValueError: always"


def test_stopping_during_a_run_releases_the_lease_as_interrupted(engine: Engine) -> None:
    async def main() -> None:
        begun = asyncio.Event()

        async def slow() -> None:
            begun.set()
            await asyncio.sleep(30)

        runner = TaskRunner([PeriodicTask("slow", 60, slow, once_across_nodes=True)], TaskLeases(engine), "a")
        runner.start()
        await asyncio.wait_for(begun.wait(), 10)
        await runner.stop()

    asyncio.run(main())
    row = TaskLeases(engine).get("slow")
    assert row is not None and row["until"] is None and row["last_error"] == STOPPED


# -- several nodes on one database -----------------------------------------------------------------


@dataclass
class Node:
    """A server process in miniature: its own engine, event loop (in a thread) and runner."""

    name: str
    engine: Engine
    tasks: list[PeriodicTask]
    lease_seconds: float = 60.0
    thread: threading.Thread | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    error: list[BaseException] = field(default_factory=list)

    def start(self) -> None:
        async def main() -> None:
            leases = TaskLeases(self.engine)
            runner = TaskRunner(self.tasks, leases, self.name, lease_seconds=self.lease_seconds)
            runner.start()
            while not self.stop.is_set():
                await asyncio.sleep(0.02)
            await runner.stop()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # surfaced by the test
                self.error.append(exc)

        self.thread = threading.Thread(target=run, name=self.name)
        self.thread.start()

    def join(self) -> None:
        self.stop.set()
        assert self.thread is not None
        self.thread.join(30)
        assert not self.thread.is_alive() and not self.error


def _recorder(
    log: list[tuple[str, str, float]], task: str, node: str, busy: float = 0.0
) -> Callable[[], object]:
    async def run() -> None:
        log.append((task, node, time.time()))
        if busy:
            await asyncio.sleep(busy)

    return run


def _tasks(log: list[tuple[str, str, float]], node: str) -> list[PeriodicTask]:
    return [
        PeriodicTask("fast", 0.5, _recorder(log, "fast", node), once_across_nodes=True),
        PeriodicTask("slow", 0.9, _recorder(log, "slow", node, busy=0.3), once_across_nodes=True),
        PeriodicTask("mine", 0.5, _recorder(log, "mine", node), once_across_nodes=False),
    ]


def test_two_nodes_run_each_shared_task_once_per_interval(engine: Engine, database_url: str) -> None:
    log: list[tuple[str, str, float]] = []
    other = _second_engine(database_url)
    nodes = [Node("node-a", engine, _tasks(log, "node-a")), Node("node-b", other, _tasks(log, "node-b"))]
    began = time.time()
    try:
        for node in nodes:
            node.start()
        time.sleep(3.2)
    finally:
        for node in nodes:
            node.join()
        other.dispose()
    elapsed = time.time() - began
    rows = TaskLeases(engine).rows()
    for name, every in (("fast", 0.5), ("slow", 0.9)):
        starts = sorted(at for task, _, at in log if task == name)
        # Never twice in one interval (a little slack for the event loop starting a claimed run
        # late), never a run skipped for long, and the row counts exactly the runs there were.
        gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
        assert all(gap >= every - 0.2 for gap in gaps), (name, gaps)
        assert 3 <= len(starts) <= elapsed / every + 1, (name, len(starts))
        assert rows[name]["runs"] == len(starts)
        assert rows[name]["until"] is None  # released when the nodes stopped
    # Per-process work runs in each process, and keeps no shared row.
    assert {node for task, node, _ in log if task == "mine"} == {"node-a", "node-b"}
    assert "mine" not in rows


def test_a_crashed_nodes_task_is_taken_over_when_its_lease_expires(engine: Engine) -> None:
    log: list[tuple[str, str, float]] = []
    leases = TaskLeases(engine)
    # node-a claimed the task and died without releasing it; its lease runs 1.2 s.
    began = time.time()
    crashed_at = datetime.now(UTC)
    assert leases.claim("fast", "node-a", crashed_at, timedelta(seconds=0.3), timedelta(seconds=1.2))
    node = Node("node-b", engine, [PeriodicTask("fast", 0.3, _recorder(log, "fast", "node-b"), True)], 1.2)
    node.start()
    try:
        deadline = time.time() + 15
        while not log and time.time() < deadline:
            time.sleep(0.05)
    finally:
        node.join()
    assert log, "the task was never taken over"
    assert log[0][2] - began >= 1.15  # not before the dead holder's lease ran out
    row = leases.get("fast")
    assert row is not None and row["holder"] == "node-b" and row["runs"] >= 2


def test_a_long_run_keeps_its_lease_against_another_node(engine: Engine, database_url: str) -> None:
    """A run longer than the lease renews it, so the other node does not take over a live holder."""
    log: list[tuple[str, str, float]] = []
    other = _second_engine(database_url)

    def tasks(node: str) -> list[PeriodicTask]:
        return [PeriodicTask("long", 0.2, _recorder(log, "long", node, busy=1.5), once_across_nodes=True)]

    nodes = [Node("node-a", engine, tasks("node-a"), 0.6), Node("node-b", other, tasks("node-b"), 0.6)]
    try:
        for node in nodes:
            node.start()
        time.sleep(2.5)
    finally:
        for node in nodes:
            node.join()
        other.dispose()
    starts = sorted(at for _, _, at in log)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert starts and all(gap >= 1.4 for gap in gaps), gaps  # one run at a time, each 1.5 s long


# -- the server, the API and the CLI ---------------------------------------------------------------

SERVER_TASKS = {
    "last_seen.flush",
    "audit.retention",
    "housekeeping",
    "apple.purge_sweep",
    "abm.sync",
    "vpp.tick",
    "apps.licences",
    "apns.sweep",
    "groups.clock",
    "groups.reconcile",
    "blueprints.reconcile",
    "blueprints.ade_release",
    "declarations.refresh",
    "webhooks.deliver",
    "webhooks.expiring",
    "checkins.sample",
}


def test_the_server_declares_its_background_work(russet: Russet) -> None:
    tasks = {t.name: t for t in russet.tasks()}
    assert set(tasks) == SERVER_TASKS
    assert not tasks["last_seen.flush"].once_across_nodes  # each process flushes its own buffer
    assert all(tasks[name].once_across_nodes for name in SERVER_TASKS - {"last_seen.flush"})
    assert tasks["vpp.tick"].every_seconds == russet.settings.vpp_poll_seconds
    # Cluster-wide runs are recorded in the audit log (russet.runtime.audited_task) around the work.
    assert tasks["blueprints.reconcile"].run.__wrapped__ == russet.blueprints.reconcile_due  # type: ignore[attr-defined]


def test_serving_runs_housekeeping_under_its_lease_and_the_api_shows_it(
    client: TestClient, api_headers: dict[str, str]
) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:  # housekeeping is due at start, once for every node
        body = client.get("/api/v1/tasks", headers=api_headers).json()
        listed = {t["name"]: t for t in body["tasks"]}
        if listed["housekeeping"]["last_finished"]:
            break
        time.sleep(0.05)
    assert set(listed) == SERVER_TASKS
    house = listed["housekeeping"]
    assert house["runs"] == 1 and house["last_error"] is None and house["scope"] == "once across nodes"
    assert house["last_holder"] and house["every_seconds"] == 6 * 3600
    assert listed["last_seen.flush"]["scope"] == "each process" and listed["last_seen.flush"]["runs"] == 0
    assert listed["abm.sync"]["last_started"] is None  # its first run waits a minute
    assert client.get("/api/v1/tasks").status_code == 401


def test_cli_lists_tasks_with_their_last_run(
    settings: Settings, migrated: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "RUSSET_DATA_DIR": str(settings.data_dir),
        "RUSSET_DATABASE_URL": settings.database_url,
        "RUSSET_PUBLIC_URL": settings.public_url,
    }.items():
        monkeypatch.setenv(name, value)
    engine = make_engine(settings.database_url, pool_size=2)
    try:
        leases = TaskLeases(engine)
        now = datetime.now(UTC)
        assert leases.claim("vpp.tick", "node-b:77:abc", now, timedelta(seconds=60), TTL)
        leases.release("vpp.tick", "node-b:77:abc", now, "UpstreamFailed: Apple answered 500")
        assert leases.claim("abm.sync", "node-a:12:def", now, timedelta(seconds=60), TTL)
    finally:
        engine.dispose()
    result = CliRunner().invoke(cli, ["tasks", "--json"])
    assert result.exit_code == 0, result.output
    listed = {t["name"]: t for t in json.loads(result.output)["tasks"]}
    assert set(listed) == SERVER_TASKS
    assert listed["vpp.tick"]["last_error"] == "UpstreamFailed: Apple answered 500"
    assert listed["vpp.tick"]["running"] is False and listed["vpp.tick"]["last_holder"] == "node-b:77:abc"
    assert listed["abm.sync"]["running"] is True and listed["abm.sync"]["holder"] == "node-a:12:def"
    result = CliRunner().invoke(cli, ["tasks"])
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert set(lines) == SERVER_TASKS
    assert "running on node-a:12:def" in lines["abm.sync"]
    assert "Apple answered 500" in lines["vpp.tick"] and "1m" in lines["vpp.tick"]
    assert "never" in lines["housekeeping"] and "6h" in lines["housekeeping"]


def test_stopping_does_not_hang_on_a_task_that_swallows_its_cancellation(engine: Engine) -> None:
    """A loop that ignores being cancelled is left behind, logged, after `stop_seconds`: the
    server's shutdown (the lifespan awaits `stop`) must end whatever a task does."""

    async def stubborn() -> None:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:  # swallowed, as Python 3.11's asyncio.wait_for may
            await asyncio.sleep(30)

    async def main() -> float:
        runner = TaskRunner(
            [PeriodicTask("stubborn", 60, stubborn, once_across_nodes=False)],
            TaskLeases(engine),
            "node-a",
            stop_seconds=0.2,
        )
        runner.start()
        await asyncio.sleep(0.05)  # it is running now
        started = time.monotonic()
        await runner.stop()
        return time.monotonic() - started

    assert asyncio.run(main()) < 2
