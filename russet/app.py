"""The ASGI application: device endpoints, the admin API, and background work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from russet import __version__, operations
from russet.api import router as api_router
from russet.bodylimit import BodyLimit
from russet.config import Settings
from russet.console import views as console_views
from russet.enrollment.http import enrollment_routes
from russet.mdm.http import device_routes
from russet.runtime import Russet
from russet.scep.http import scep_routes
from russet.vpp.notify import vpp_routes

log = logging.getLogger("russet")
LAST_SEEN_FLUSH_SECONDS = 1.0
HOUSEKEEPING_SECONDS = 6 * 3600
ABM_SYNC_CHECK_SECONDS = 60.0


def create_app(russet: Russet) -> DeviceFront:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async def flush_forever() -> None:
            while True:
                await asyncio.sleep(LAST_SEEN_FLUSH_SECONDS)
                try:
                    await run_in_threadpool(russet.flush_last_seen)
                except Exception:  # keep flushing; a lost batch is only a few stale last-seen times
                    log.exception("could not record last-seen times")

        async def housekeeping_forever() -> None:
            while True:
                try:
                    removed = await run_in_threadpool(operations.housekeeping, russet)
                    if any(removed.values()):
                        log.info("housekeeping removed %s", removed)
                except Exception:
                    log.exception("could not do housekeeping (ledger retention, expired challenges)")
                await asyncio.sleep(HOUSEKEEPING_SECONDS)

        async def sync_abm_forever() -> None:
            while True:
                await asyncio.sleep(ABM_SYNC_CHECK_SECONDS)
                try:  # each connection is synced when RUSSET_ABM_SYNC_MINUTES have passed, under its lease
                    await russet.abm.sync_scheduled()
                except Exception:
                    log.exception("could not sync Apple Business Manager devices")

        async def vpp_forever() -> None:
            while True:
                await asyncio.sleep(russet.settings.vpp_poll_seconds)
                try:  # events not answered by a notification, departed devices, asset sync, installs
                    await russet.vpp.tick()
                except Exception:
                    log.exception("could not do the Apps and Books periodic work")

        tasks = [
            asyncio.create_task(work)
            for work in (
                flush_forever(),
                housekeeping_forever(),
                sync_abm_forever(),
                vpp_forever(),
                russet.pusher.run(),  # APNs: requested pushes, sweep
            )
        ]
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
    api_router.install(app)
    console_views.install(app)  # the web console under /console
    devices = [
        *device_routes(russet),
        *enrollment_routes(russet),
        *scep_routes(russet),
        *vpp_routes(russet.vpp),
    ]
    return DeviceFront(Router(routes=devices), BodyLimit(app))  # admin bodies: see bodylimit.ADMIN_LIMITS


class DeviceFront:
    """Sends device traffic (/mdm/, /scep, /vpp/) straight to its routes, everything else to FastAPI.

    Device requests are the server's hot path; FastAPI's middleware stack and route table cost
    them 10-15% for nothing they use. Lifespan events go to FastAPI, which runs the background work.
    """

    DEVICE_PREFIXES = ("/mdm/", "/scep", "/vpp/")

    def __init__(self, devices: Router, api: ASGIApp) -> None:
        self.devices = devices
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.DEVICE_PREFIXES):
            await self.devices(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def app_from_env() -> DeviceFront:
    """Factory for `uvicorn --factory russet.app:app_from_env` (each server worker opens its own).

    Each worker sets the database up under the first-start lock (a no-op once done), so workers
    started together, also without `russet serve`, neither race the migrations nor make two CAs.
    """
    os.umask(0o077)
    return create_app(Russet.open(Settings.from_env()))
