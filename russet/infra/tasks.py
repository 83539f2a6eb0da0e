"""The runner of periodic tasks, and the schedule `russet tasks` and `GET /api/v1/tasks` show.

The server's lifespan starts one `TaskRunner` over every `PeriodicTask` the composition root
gathers (`Russet.tasks()`). Each task gets a small asyncio loop of its own:

* a per-process task (`once_across_nodes=False`) runs every `every_seconds` in each process;
* a once-across-nodes task is run by whichever process first claims its lease
  (`russet.storage.leases.TaskLeases.claim`: nobody holds it and its last run started at least
  `every_seconds` ago). The others find it taken and sleep until its next run is due, read from
  the row, so however many `russet serve` nodes and workers share the database, each due run
  happens once. While it runs, its holder renews the lease every third of `lease_seconds`; a
  holder that crashed stops holding it `lease_seconds` later, and another process takes over.

A run that raises is logged and recorded in its row (`last_error`); the loop goes on and the
task runs again at its next interval. Nothing here knows what the tasks do.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import platform
import secrets
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from russet.kernel.tasks import PeriodicTask

log = logging.getLogger("russet.tasks")

LEASE_SECONDS = 60.0  # how long a crashed holder keeps a task; a live one renews every third of it
STOP_SECONDS = 5.0  # how long shutdown waits for a cancelled loop before going on without it
RETRY_FLOOR = 0.05  # never poll a lease row faster than this
STOPPED = "interrupted: the server stopped during the run"


class Leases(Protocol):
    """Where once-across-nodes tasks are claimed and their runs recorded: the `task_leases` table
    (`russet.storage.leases.TaskLeases`, which the composition root hands in; see there for why
    one conditional statement makes each claim exclusive on SQLite and PostgreSQL)."""

    def claim(self, name: str, holder: str, now: datetime, every: timedelta, ttl: timedelta) -> bool: ...

    def renew(self, name: str, holder: str, now: datetime, ttl: timedelta) -> bool: ...

    def release(self, name: str, holder: str, now: datetime, error: str | None) -> bool: ...

    def get(self, name: str) -> Mapping[str, Any] | None: ...

    def rows(self, names: Sequence[str] | None = None) -> Mapping[str, Mapping[str, Any]]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


def process_holder() -> str:
    """A name for this process in lease rows, telling people which node and process ran a task:
    host, pid, and a random tag (pids repeat across containers and restarts)."""
    return f"{platform.node()[:100]}:{os.getpid()}:{secrets.token_hex(3)}"


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def wait_stopped(tasks: Collection[asyncio.Task[Any]], seconds: float) -> bool:
    """Wait for cancelled `tasks` to end, at most `seconds`: a task that swallowed its
    cancellation (as asyncio.wait_for may on Python 3.11) must not hang the server's shutdown.
    Those left running are logged by name; False when there are any."""
    if not tasks:
        return True
    done, pending = await asyncio.wait(tasks, timeout=seconds)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved: a loop's failure was logged where it happened
    for task in pending:
        log.error(
            "%s did not stop within %gs of being cancelled; shutting down without it",
            task.get_name(),
            seconds,
        )
    return not pending


async def call(run: Callable[[], Awaitable[Any] | Any]) -> Any:
    """Run a task's callable: a coroutine function on the event loop, anything else in a thread
    (sync database work must not hold up device requests); an awaitable it returns is awaited."""
    if inspect.iscoroutinefunction(run):
        return await run()
    result = await asyncio.to_thread(run)
    if inspect.isawaitable(result):
        result = await result
    return result


class TaskRunner:
    """Runs a set of periodic tasks in this process until stopped."""

    def __init__(
        self,
        tasks: Sequence[PeriodicTask],
        leases: Leases,
        holder: str | None = None,
        *,
        lease_seconds: float = LEASE_SECONDS,
        clock: Callable[[], datetime] = utcnow,
        stop_seconds: float = STOP_SECONDS,
    ) -> None:
        names = [t.name for t in tasks]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"two periodic tasks with one name: {', '.join(duplicates)}")
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        self.tasks = list(tasks)
        self.leases = leases
        self.holder = holder or process_holder()
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self.stop_seconds = stop_seconds
        self._running: list[asyncio.Task[None]] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start each task's loop on the running event loop."""
        if self._running:
            raise RuntimeError("the task runner is already running")
        self._running = [asyncio.create_task(self._loop(t), name=f"russet task {t.name}") for t in self.tasks]
        log.debug("running %d periodic tasks as %s", len(self.tasks), self.holder)

    async def stop(self) -> None:
        """Cancel every loop and wait for them: a run in progress is interrupted and its lease
        released (recorded as interrupted), so another process need not wait for it to expire."""
        running, self._running = self._running, []
        for loop in running:
            loop.cancel()
        await wait_stopped(running, self.stop_seconds)

    # -- one attempt ---------------------------------------------------------------------------

    async def attempt(self, task: PeriodicTask) -> bool:
        """Run `task` now if it is this process's to run: always for a per-process task; for a
        once-across-nodes task only when its lease is claimed. True when it ran (even if it failed)."""
        if not task.once_across_nodes:
            await self._execute(task)
            return True
        every = timedelta(seconds=task.every_seconds)
        claimed = await asyncio.to_thread(
            self.leases.claim, task.name, self.holder, self.clock(), every, self.lease
        )
        if not claimed:
            return False
        keeper = asyncio.create_task(self._keep(task.name))
        error: str | None = STOPPED
        try:
            error = await self._execute(task)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await self._release(task.name, error)
        return True

    async def _execute(self, task: PeriodicTask) -> str | None:
        """Run the task's callable; what it raised, described, or None when it succeeded."""
        try:
            result = await call(task.run)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing task must not stop its loop, nor the others
            log.exception("periodic task %s failed; it runs again in %gs", task.name, task.every_seconds)
            return describe(exc)
        if result is not None:
            log.debug("periodic task %s: %s", task.name, result)
        return None

    async def _keep(self, name: str) -> None:
        """Renew the lease of a run in progress, so a long run is not taken over as crashed."""
        while True:
            await asyncio.sleep(self.lease.total_seconds() / 3)
            try:
                held = await asyncio.to_thread(self.leases.renew, name, self.holder, self.clock(), self.lease)
            except Exception:
                log.exception("could not renew the lease of periodic task %s", name)
                continue
            if not held:
                log.warning("periodic task %s: this process's lease expired; finishing the run anyway", name)
                return

    async def _release(self, name: str, error: str | None) -> None:
        try:
            mine = await asyncio.to_thread(self.leases.release, name, self.holder, self.clock(), error)
        except Exception:  # it expires by itself; another process takes over then
            log.exception("could not release the lease of periodic task %s", name)
            return
        if not mine:
            log.warning("periodic task %s finished after another process took it over", name)

    # -- the loops -------------------------------------------------------------------------------

    async def _loop(self, task: PeriodicTask) -> None:
        await asyncio.sleep(task.first_delay)
        while True:
            try:
                await self.attempt(task)
                wait = task.every_seconds
                if task.once_across_nodes:
                    wait = await asyncio.to_thread(self._wait, task)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database is unreachable, say: try again later
                log.exception("periodic task %s: could not claim or read its lease", task.name)
                wait = min(task.every_seconds, self.lease.total_seconds() / 3)
            await asyncio.sleep(wait)

    def _wait(self, task: PeriodicTask) -> float:
        """Seconds until this process should try a once-across-nodes task again: when its next
        run is due by the shared row; when it is overdue but held (a run longer than the
        interval), soon, to take it over once it is released or its holder's lease expires."""
        row = self.leases.get(task.name)
        now = self.clock()
        every = timedelta(seconds=task.every_seconds)
        if row is None or row["last_started"] is None:
            return RETRY_FLOOR
        due = row["last_started"] + every
        if due > now:
            return max(RETRY_FLOOR, (due - now).total_seconds())
        return max(RETRY_FLOOR, min(task.every_seconds, self.lease.total_seconds() / 3))


class Schedule:
    """The server's periodic tasks with their shared state: what the runner runs, what people see."""

    def __init__(
        self,
        leases: Leases,
        declared: Callable[[], Sequence[PeriodicTask]],
        *,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self._leases = leases
        self._declared = declared
        self._lease_seconds = lease_seconds

    def tasks(self) -> list[PeriodicTask]:
        return list(self._declared())

    def runner(self, holder: str | None = None) -> TaskRunner:
        return TaskRunner(self.tasks(), self._leases, holder, lease_seconds=self._lease_seconds)

    def overview(self, now: datetime | None = None) -> dict[str, Any]:
        """Each task: what it does, how often, where it runs; for once-across-nodes tasks also
        the last run (all nodes together: when, by which process, its error) and who holds it now.
        Per-process tasks keep no shared record, so only their definition is shown."""
        now = now or utcnow()
        tasks = self.tasks()
        rows = self._leases.rows([t.name for t in tasks if t.once_across_nodes])
        listed = []
        for task in tasks:
            row = rows.get(task.name) if task.once_across_nodes else None
            held = row is not None and row["until"] is not None and row["until"] > now
            last = None if row is None else row["last_started"]
            listed.append(
                {
                    "name": task.name,
                    "description": task.description,
                    "every_seconds": task.every_seconds,
                    "scope": "once across nodes" if task.once_across_nodes else "each process",
                    "running": held,
                    "holder": row["holder"] if row is not None and held else None,
                    "held_until": _iso(row["until"]) if row is not None and held else None,
                    "last_holder": None if row is None else row["holder"],
                    "last_started": _iso(last),
                    "last_finished": _iso(None if row is None else row["last_finished"]),
                    "last_error": None if row is None else row["last_error"],
                    "runs": 0 if row is None else row["runs"],
                    "next_due": _iso(None if last is None else last + timedelta(seconds=task.every_seconds))
                    if task.once_across_nodes
                    else None,
                }
            )
        return {"tasks": listed}


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
