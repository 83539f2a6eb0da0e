"""The ASGI application: device endpoints, the admin API, and background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from russet import __version__, operations
from russet.api import routes as api_routes
from russet.config import Settings
from russet.mdm.http import device_routes
from russet.scep.http import scep_routes
from russet.runtime import Russet

log = logging.getLogger("russet")
LAST_SEEN_FLUSH_SECONDS = 1.0
LEDGER_PRUNE_SECONDS = 6 * 3600


def create_app(russet: Russet) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def flush_forever() -> None:
            while True:
                await asyncio.sleep(LAST_SEEN_FLUSH_SECONDS)
                try:
                    await run_in_threadpool(russet.flush_last_seen)
                except Exception:  # keep flushing; a lost batch is only a few stale last-seen times
                    log.exception("could not record last-seen times")

        async def prune_ledger_forever() -> None:
            while True:
                try:
                    removed = await run_in_threadpool(
                        operations.prune_ledger, russet, russet.settings.ledger_retention_days
                    )
                    if removed:
                        log.info("pruned %d ledger rows past the retention period", removed)
                except Exception:
                    log.exception("could not prune the ledger")
                await asyncio.sleep(LEDGER_PRUNE_SECONDS)

        tasks = [asyncio.create_task(flush_forever()), asyncio.create_task(prune_ledger_forever())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await russet.gateway.aclose()
            await run_in_threadpool(russet.close)

    app = FastAPI(
        title="Russet admin API",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    app.state.russet = russet
    app.router.routes.extend(device_routes(russet))
    app.router.routes.extend(scep_routes(russet))
    api_routes.install(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory russet.app:app_from_env` (each server worker opens its own)."""
    return create_app(Russet.open(Settings.from_env(), migrate_db=False))
