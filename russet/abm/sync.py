"""Device sync: a full listing first, then incremental changes on a schedule (§e.6).

The cursor is saved with each page applied, so a crash or a throttled run resumes where it
stopped. INVALID_CURSOR / EXPIRED_CURSOR (or CURSOR_REQUIRED) start a fresh full listing, whose
last page removes the devices it no longer lists. Newly added devices without a profile get the
connection's default profile; they are marked PENDING in the page's own transaction, so that
survives a crash too, and devices Apple answered THROTTLED for are retried on the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

from russet import bulkgc
from russet.abm import profiles
from russet.abm.client import AbmClient
from russet.abm.errors import AbmError, CursorError, Throttled
from russet.abm.records import DevicePage, page_limit
from russet.abm.store import AbmStore, Applied
from russet.apple.connection.client import Reply
from russet.apple.connections import ConnectionRefused, ConnectionRegistry
from russet.apple.ledger import Ledger
from russet.storage.db import utcnow

log = logging.getLogger("russet.abm")
PAGE_LIMIT = 1000
LEASE = timedelta(hours=1)
RESTART_CODES = frozenset({"INVALID_CURSOR", "EXPIRED_CURSOR", "CURSOR_REQUIRED"})
LEDGER_ROWS_PER_WRITE = 30_000  # about three pages of devices (12 fields each)


@dataclass
class SyncReport:
    connection: str
    mode: str  # full | full (resumed) | incremental
    restarted_because: str | None = None  # Apple's cursor error that forced a fresh full listing
    pages: int = 0
    devices: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    default_profile: dict[str, int] = field(default_factory=dict)  # per-device results, counted
    ignored_fields: list[str] = field(default_factory=list)  # sent by Apple, not in the catalogue
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def sync_connection(
    connections: ConnectionRegistry,
    ledger: Ledger,
    store: AbmStore,
    client: AbmClient,
    *,
    full: bool = False,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    """One sync run for one connection, holding its lease (a purge waits for it). `progress` is
    told the report so far after each page (the CLI prints it: a long listing is not silent)."""
    name = client.name
    started = time.perf_counter()
    with connections.lease("abm", name, "sync", ttl=LEASE):
        try:
            with bulkgc.relaxed():  # a full listing allocates a lot; see russet.bulkgc
                report = await _run(store, client, full, ledger, progress)
        except Throttled as exc:
            store.note_attempt(name, error=str(exc), retry_at=exc.retry_at)
            raise
        except Exception as exc:
            store.note_attempt(name, error=str(exc) or type(exc).__name__)
            raise
        store.note_attempt(name, completed=True)
        server = store.require(name)
        if server["default_profile_uuid"]:
            report.default_profile = await _assign_default(store, client, server["default_profile_uuid"])
    report.seconds = round(time.perf_counter() - started, 3)
    return report


async def _run(
    store: AbmStore,
    client: AbmClient,
    full: bool,
    ledger: Ledger,
    progress: Callable[[SyncReport], None] | None = None,
) -> SyncReport:
    name = client.name
    state = store.sync_state(name)
    if full or state is None or (state.phase == "sync" and not state.cursor):
        state = store.start_full_fetch(name)
        report = SyncReport(name, "full")
    elif state.phase == "fetch":
        report = SyncReport(name, "full (resumed)" if state.cursor else "full")
    else:
        report = SyncReport(name, "incremental")
    account = store.account(name)
    want_new = store.require(name)["default_profile_uuid"] is not None
    ignored: set[str] = set()
    cursor, generation, sync = state.cursor, state.generation, state.phase == "sync"
    before = None if sync else store.total(name)  # a listing's additions: the growth of the table
    ahead: asyncio.Task[Reply] | None = None  # the next page, asked for while this one is applied
    writing: asyncio.Future[None] | None = None  # the previous page's ledger rows being written
    try:
        while True:
            path = "/devices/sync" if sync else "/server/devices"
            limit = page_limit(account["urls"] if account else None, path, PAGE_LIMIT)
            try:
                reply = await (ahead or client.fetch_devices(cursor, limit, sync=sync))
            except CursorError as exc:
                ahead = None
                if exc.code in RESTART_CODES and report.restarted_because is None:
                    log.warning("ABM %r: %s; starting a fresh full device listing", name, exc.code)
                    report = SyncReport(name, "full", restarted_because=exc.code)
                    state = store.start_full_fetch(name)
                    cursor, generation, sync = None, state.generation, False
                    before = store.total(name)
                    continue
                if exc.code == "EXHAUSTED_CURSOR" and cursor:
                    # Everything was listed already: a listing is complete, a sync has nothing new.
                    if not sync:
                        done = DevicePage([], [], cursor, False, None)
                        await asyncio.to_thread(
                            store.apply_page, name, done, generation, sync=False, want_new=False
                        )
                    break
                raise
            ahead = _ask_ahead(client, reply, limit, sync)
            page, applied = await asyncio.to_thread(
                _take_page, store, client, reply, generation, sync, want_new
            )
            # Back-pressure: the ledger rows of a few pages at most are written while the next page
            # is processed, so a listing of 100,000 devices never piles a million rows up in memory;
            # a few pages per write, because bigger ledger transactions cost less per row.
            if ledger.pending() >= LEDGER_ROWS_PER_WRITE or not page.more_to_follow:
                if writing is not None:
                    await writing
                writing = asyncio.ensure_future(asyncio.to_thread(_write_ledger, ledger.flush, name))
            report.pages += 1
            report.devices += len(page.devices)
            report.added += applied.added
            report.modified += applied.modified
            report.deleted += applied.deleted
            ignored |= page.ignored_fields
            cursor = page.cursor
            if progress is not None:
                progress(report)
            if not page.more_to_follow:
                break
    finally:
        if ahead is not None:  # this page failed: the one asked for ahead is not used
            ahead.cancel()
            with contextlib.suppress(BaseException):
                await ahead
        if writing is not None:
            await writing
    if before is not None and not sync:  # a listing ran (to its end, or until it stopped)
        report.added = store.total(name) - before + report.deleted
        report.modified = report.devices - report.added
    if ignored:
        log.warning(
            "ABM %r: Apple sent fields the catalogue does not declare (dropped): %s", name, sorted(ignored)
        )
    report.ignored_fields = sorted(ignored)
    return report


def _ask_ahead(client: AbmClient, reply: Reply, limit: int, sync: bool) -> asyncio.Task[Reply] | None:
    """Start fetching the next page at once, with the cursor this answer seems to carry; the page
    itself is checked afterwards, and if it is refused the early request is dropped."""
    body = reply.body
    if not isinstance(body, dict) or body.get("more_to_follow") is not True:
        return None
    cursor = body.get("cursor")
    if not isinstance(cursor, str) or not cursor:
        return None
    return asyncio.create_task(client.fetch_devices(cursor, limit, sync=sync))


def _take_page(
    store: AbmStore, client: AbmClient, reply: Reply, generation: int, sync: bool, want_new: bool
) -> tuple[DevicePage, Applied]:
    """Check, record and apply one page (CPU and database work, in a worker thread)."""
    page = client.device_page(reply, sync=sync)
    return page, store.apply_page(client.name, page, generation, sync=sync, want_new=want_new)


def _write_ledger(flush: Callable[[], object], name: str) -> None:
    try:
        flush()
    except Exception:  # the rows stay buffered; the ledger's own writer retries them
        log.exception("ABM %r: could not write ledger rows now", name)


async def _assign_default(store: AbmStore, client: AbmClient, profile_uuid: str) -> dict[str, int]:
    """Give the default profile to the devices marked PENDING (new) or THROTTLED (earlier)."""
    serials = store.pending_default(client.name)
    if not serials:
        return {}
    try:
        outcome = await profiles.assign(client, store, client.name, profile_uuid, serials)
    except AbmError as exc:  # the sync itself succeeded; the devices stay PENDING for next time
        log.warning("ABM %r: could not assign the default profile: %s", client.name, exc)
        return {"error": len(serials)}
    return dict(Counter(outcome["results"].values()))


async def sync_due(
    connections: ConnectionRegistry,
    ledger: Ledger,
    store: AbmStore,
    make_client: Callable[[str], AbmClient],
    interval: timedelta,
) -> dict[str, Any]:
    """The scheduler's tick: sync each active connection whose `interval` has passed.

    Several server processes may tick at once; the lease lets one of them run and the others
    skip. A connection Apple throttled waits until the time Apple named.
    """
    now = utcnow()
    outcome: dict[str, Any] = {}
    for name in store.active_names():
        state = store.sync_state(name)
        if state is not None:
            if state.retry_at is not None:
                if state.retry_at > now:  # Apple said when; resume from the saved cursor then
                    continue
            else:
                last = state.last_attempt_at
                interrupted = state.phase == "fetch" and state.last_error is None  # the process stopped
                if last is not None and now - last < interval and not interrupted:
                    continue
        try:
            report = await sync_connection(connections, ledger, store, make_client(name))
        except ConnectionRefused as exc:  # another process holds the lease
            outcome[name] = f"skipped: {exc}"
            continue
        except Exception as exc:
            log.warning("ABM %r: sync failed: %s", name, exc)
            outcome[name] = f"failed: {exc}"
            continue
        outcome[name] = report.as_dict()
    return outcome
