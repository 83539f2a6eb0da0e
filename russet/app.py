"""The ASGI application: device endpoints, the admin API, and background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from russet import __version__
from russet.api import routes as api_routes
from russet.config import Settings
from russet.mdm.http import device_routes
from russet.runtime import Russet

log = logging.getLogger("russet")
LAST_SEEN_FLUSH_SECONDS = 1.0


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

        task = asyncio.create_task(flush_forever())
        try:
            yield
        finally:
            task.cancel()
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
    api_routes.install(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory russet.app:app_from_env` (each server worker opens its own)."""
    return create_app(Russet.open(Settings.from_env(), migrate_db=False))
