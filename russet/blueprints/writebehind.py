"""Write a pass's batch on a second thread while the next batch is read and planned.

A pass alternates Python work (decoding records, planning, grouping commands) with waits on the
database (writing the batch's records). Run one after the other, the database and Python take
turns on the machine's cores; with the write of batch N running on a thread while batch N+1 is
read and planned, both work at once (the driver gives up the GIL while it waits on the server).

Only one write is ever in flight, and `wait` is called before the next batch's commands are
queued: a batch's commands go out only once the previous batch's records are durable, so a
failed write stops the pass at the same point as it would without the thread (the error is
raised by `wait`), and no command is queued whose record could be lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)


class WriteBehind:
    """At most one write running on a worker thread; `inline` runs each write at once instead."""

    def __init__(self, *, inline: bool = False) -> None:
        self._pool = None if inline else ThreadPoolExecutor(1, thread_name_prefix="russet-reconcile-write")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[..., None], /, **kwargs: Any) -> None:
        """Start `write(**kwargs)` after the previous write has finished (raising its error)."""
        self.wait()
        if self._pool is None:
            write(**kwargs)
            return
        self._pending = self._pool.submit(write, **kwargs)

    def wait(self) -> None:
        """Block until the write in flight, if any, is done; re-raise its exception."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Finish the write in flight (its error raised) and stop the thread. Always called, so
        that no write outlives the pass (and its lease)."""
        try:
            self.wait()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # the pass failed already: finish the write but keep the pass's error
            self.close()
        except Exception as error:  # noqa: BLE001 - the pass's own exception is the one raised
            log.warning("reconcile: a batch's write failed as well: %s", type(error).__name__)
