"""Where a web request's blocking work runs: on the event loop, or in the thread pool.

A thread hop (hand the call to a worker thread, wake the loop with its answer, GIL hand-offs
both ways) cost ~0.14 ms of CPU per call on this project's machine; an admin API call that made
three of them (the API key's check, the route, the audit row) spent a third of its CPU on hops.
Where the database never makes a call wait on the network or a disk flush (SQLite in WAL,
commits without fsync), short work is cheaper on the loop itself: the device routes do the same
(`russet.mdm.http.device_routes`, measured in bench/README). On PostgreSQL every statement is a
round trip and every commit waits for its WAL flush, which threads overlap: there it stays in the
pool. Work that may be long (a command for thousands of devices) goes to the pool either way, so
that it never holds up the device requests served by the same loop.

A read alone (one indexed SELECT, no commit) from a PostgreSQL server on this host is a round
trip of tens of microseconds: cheaper on the loop than the hop (140-180 us of CPU measured on a
later machine of the same kind), so `run_read` keeps it there; a remote server's read goes to the
pool, where its milliseconds do not hold the loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

P = ParamSpec("P")
T = TypeVar("T")


class Offload:
    """Runs a request's blocking calls: inline when `inline` (chosen by the app's composition
    for its database) and the caller says the call is light, else in the thread pool."""

    def __init__(self, *, inline: bool, reads_inline: bool = False) -> None:
        self.inline = inline
        self.reads_inline = inline or reads_inline  # the database answers from this host

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)`, a light call: a few indexed statements."""
        if self.inline:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    async def run_read(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)`, a single indexed read that writes nothing."""
        if self.reads_inline:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    async def run_heavy(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in the thread pool, whatever the database."""
        return await run_in_threadpool(fn, *args, **kwargs)


THREADS = Offload(inline=False)  # an app assembled without a choice (tests of single routers)
