"""Where the admin API's blocking calls run (russet.web.offload): on the event loop only where the
app chose it (SQLite) and for light work, or for a single read from a database on this host; in
the thread pool otherwise."""

from __future__ import annotations

import asyncio
import threading

from russet.web.offload import THREADS, Offload


def _thread() -> int:
    return threading.get_ident()


def test_inline_runs_light_calls_on_the_loop_and_heavy_ones_in_the_pool() -> None:
    async def where() -> tuple[int, int, int]:
        offload = Offload(inline=True)
        return threading.get_ident(), await offload.run(_thread), await offload.run_heavy(_thread)

    loop, light, heavy = asyncio.run(where())
    assert light == loop
    assert heavy != loop


def test_threads_run_every_call_in_the_pool() -> None:
    async def where() -> tuple[int, int, int, int]:
        ran = [await THREADS.run(_thread), await THREADS.run_heavy(_thread), await THREADS.run_read(_thread)]
        return threading.get_ident(), *ran

    loop, light, heavy, read = asyncio.run(where())
    assert loop not in (light, heavy, read)


def test_reads_from_a_database_on_this_host_run_on_the_loop_and_writes_in_the_pool() -> None:
    async def where() -> tuple[int, int, int]:
        offload = Offload(inline=False, reads_inline=True)  # PostgreSQL on this host
        return threading.get_ident(), await offload.run_read(_thread), await offload.run(_thread)

    loop, read, light = asyncio.run(where())
    assert read == loop
    assert light != loop


def test_arguments_and_errors_pass_through() -> None:
    def divide(a: int, *, by: int) -> float:
        return a / by

    async def calls(offload: Offload) -> float:
        assert await offload.run(divide, 6, by=3) == 2
        try:
            await offload.run(divide, 1, by=0)
        except ZeroDivisionError:
            return 1.0
        return 0.0

    assert asyncio.run(calls(Offload(inline=True))) == 1.0
    assert asyncio.run(calls(THREADS)) == 1.0
