"""Periodic work declared as data: what to run, how often, and whether once for the whole cluster.

A feature's service says what it needs done in the background by returning `PeriodicTask`s; the
composition root gathers them and the server's runner (`russet.infra.tasks`) runs them. No feature
writes its own `while True: sleep()` loop, so how work is scheduled, logged, recorded and shared
between several server processes is decided in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

MAX_NAME = 100  # the width of task_leases.name


@dataclass(frozen=True)
class PeriodicTask:
    """One piece of background work.

    `run` takes no arguments and returns either an awaitable (async work, run on the server's
    event loop) or a plain value (sync work, which the runner calls in a thread so it never
    blocks device requests). Whatever it returns is logged at debug level; what it raises is
    logged and recorded, and the task runs again at its next interval.

    `once_across_nodes`: True for cluster-wide work (ABM sync, housekeeping, Apps and Books
    polling, the push sweep): each due run happens in one process of all those sharing the
    database. False for per-process work (flushing this process's own last-seen buffer).
    `first_delay`: seconds after start before this process first considers the task.
    """

    name: str
    every_seconds: float
    run: Callable[[], Awaitable[Any] | Any]
    once_across_nodes: bool
    first_delay: float = 0.0
    description: str = ""  # one line for people (`russet tasks`)

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME or not self.name.isprintable():
            raise ValueError(f"a task name is 1 to {MAX_NAME} printable characters: {self.name!r}")
        if not self.every_seconds > 0:
            raise ValueError(f"task {self.name!r}: every_seconds must be positive")
        if not self.first_delay >= 0:
            raise ValueError(f"task {self.name!r}: first_delay must not be negative")
