"""What the benchmarks share: a fresh database per run, CPU time from /proc, timers around
stages, and min/median of runs.

On a shared 2-core machine wall-clock figures move with whatever else runs; the CPU a process
spent per push or per device moves far less, so every benchmark prints both, and how busy the
rest of the machine was meanwhile ("other").
"""

from __future__ import annotations

import contextlib
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

PG_URL = os.environ.get("RUSSET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """The URL of an empty database for one run: a SQLite file in a temporary directory, or a
    throwaway schema in PostgreSQL (`RUSSET_BENCH_POSTGRES_URL`), removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    schema = "bench_" + secrets.token_hex(4)
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def postgres_cpu() -> float:
    """CPU seconds so far of every PostgreSQL server process on this machine (its backends do the
    database's share of the work; other users of the same server count too, if there are any)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(") ")
        if name == "postgres":
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def machine_busy_cpu() -> float:
    """CPU seconds all cores of the machine spent busy (anything but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants (uvicorn serves from child processes when --workers > 1)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            children = [
                int(c)
                for task in Path(f"/proc/{current}/task").iterdir()
                for c in (task / "children").read_text().split()
            ]
        except OSError:
            continue
        found.append(current)
        stack.extend(children)
    return found


def peak_rss_kib(pids: Sequence[int]) -> int:
    """Sum of the peak resident set sizes (VmHWM) of `pids` and their descendants, in KiB: what the
    server needed at its fullest, each process counted at its own peak (an upper bound of the sum)."""
    total = 0
    for pid in {p for root in pids for p in process_tree(root)}:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def reset_peak_rss(pids: Sequence[int]) -> bool:
    """Start the peak RSS of `pids` and descendants afresh (`5` to /proc/PID/clear_refs, Linux 4.0+),
    so a phase's peak is its own. False if the kernel or permissions refused: peaks then run from
    the process's start."""
    done = True
    for pid in {p for root in pids for p in process_tree(root)}:
        try:
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        except OSError:
            done = False
    return done


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Timer:
    """Wall time and CPU time (of the calling thread) spent inside a wrapped callable, summed
    over calls and threads. Thread CPU says what a stage cost even when stages overlap."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu = 0.0
        self.calls = 0

    def wrap(self, func: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start, cpu = time.perf_counter(), time.thread_time()
            try:
                return func(*args, **kwargs)
            finally:
                self.cpu += time.thread_time() - cpu
                self.seconds += time.perf_counter() - start
                self.calls += 1

        return timed

    def patch(self, owner: Any, name: str) -> Callable[[], None]:
        """Wrap `owner.name` in place; returns the function that puts the original back."""
        real = getattr(owner, name)
        setattr(owner, name, self.wrap(real))
        return lambda: setattr(owner, name, real)


def spread(values: Sequence[float]) -> str:
    """min / median / max of repeated runs."""
    if len(values) == 1:
        return f"{values[0]:,.1f}"
    return f"min {min(values):,.1f} / median {statistics.median(values):,.1f} / max {max(values):,.1f}"
