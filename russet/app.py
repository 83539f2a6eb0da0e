"""The ASGI application: device endpoints, the admin API, and the background work's runner."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.routing import Router
from starlette.types import ASGIApp, Receive, Scope, Send

from russet import __version__
from russet.accesslog import access_logged
from russet.api import router as api_router
from russet.apps.http import TOKEN_SEGMENT as APP_DOWNLOAD_TOKEN
from russet.apps.http import app_download_routes
from russet.bodylimit import BodyLimit
from russet.config import Settings
from russet.console import views as console_views
from russet.declarative.http import TOKEN_SEGMENT as DATA_URL_TOKEN
from russet.declarative.http import data_routes
from russet.enrollment.account import WELL_KNOWN_PATH
from russet.enrollment.account_http import account_routes
from russet.enrollment.http import enrollment_routes
from russet.enrollment.signin_http import signin_routes
from russet.infra.tasks import STOP_SECONDS, wait_stopped
from russet.mdm.http import device_routes
from russet.runtime import Russet
from russet.scep.http import scep_routes
from russet.storage.db import on_this_host
from russet.storage.secretbox import SecretBox
from russet.vpp.notify import vpp_routes
from russet.web.audit import Audited
from russet.web.offload import Offload

log = logging.getLogger("russet")


def create_app(russet: Russet) -> ASGIApp:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Periodic work is declared as data (Russet.tasks()); the runner runs each task on its
        # interval, the once-across-nodes ones under a lease shared by every process on the database.
        runner = russet.schedule.runner()
        runner.start()
        # The pusher's drain loop stays a long-running coroutine in every process: it wakes on each
        # enqueue (no interval would be prompt enough) and claims request rows one winner at a time.
        pusher = asyncio.create_task(russet.pusher.run(sweep=False))
        try:
            yield
        finally:
            pusher.cancel()
            await runner.stop()
            await wait_stopped([pusher], STOP_SECONDS)
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

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """A browser opening the server's address lands on the console (its sign-in if need be)."""
        return RedirectResponse("/console", 303)

    settings = russet.settings
    profiles = russet.enrollment.profile_server(settings.ade_ca_file)
    # Sign-in during Setup Assistant keeps its pending sign-in sealed under the master key.
    signins = russet.enrollment.signin_server(
        profiles, SecretBox.load(settings.data_dir, settings.master_key)
    )
    # SQLite: device requests and the admin API's light calls on the event loop; a database on
    # this host: single reads too (web/offload.py).
    engine = russet.storage.engine
    offload = Offload(inline=engine.dialect.name == "sqlite", reads_inline=on_this_host(engine))
    app.state.offload = offload
    devices = [
        *device_routes(
            russet.mdm,
            russet.identities,
            settings.max_body_bytes,
            inline=offload.inline,
            quiet_inline=offload.reads_inline,  # mdm.http: an Idle that changes nothing, one read
        ),
        *signin_routes(signins, settings.public_url),  # before /mdm/enroll: its own paths
        *enrollment_routes(profiles, settings.max_body_bytes),
        *account_routes(russet.accounts, settings.max_body_bytes),
        *scep_routes(russet.authority, russet.storage.challenges),
        *vpp_routes(russet.vpp),
        *app_download_routes(russet.apps),
        *data_routes(russet.declarations),
    ]
    # Admin bodies: see bodylimit.ADMIN_LIMITS; actions that change something: the audit log.
    front: ASGIApp = DeviceFront(Router(routes=devices), BodyLimit(Audited(app, russet.access, offload)))
    if settings.metrics:  # off: not installed, /metrics answers 404, prometheus_client not loaded
        from russet.metrics import Metrics

        metrics = Metrics.for_russet(russet)
        app.state.metrics = metrics
        front = metrics.middleware(front)  # inside the access log: both see every request
    capabilities = (APP_DOWNLOAD_TOKEN, DATA_URL_TOKEN)  # bearer tokens in paths, never logged
    return access_logged(front, settings.access_log, settings.access_log_format, capabilities)


class DeviceFront:
    """Sends device traffic (/mdm/, /scep, /vpp/, /apps/download/) to its routes, the rest to FastAPI.

    Device requests are the server's hot path; FastAPI's middleware stack and route table cost
    them 10-15% for nothing they use. Lifespan events go to FastAPI, which runs the background work.
    """

    # The well-known path: account-driven enrollment's discovery (russet/enrollment/account.py).
    DEVICE_PREFIXES = ("/mdm/", "/scep", "/vpp/", "/apps/download/", WELL_KNOWN_PATH)

    def __init__(self, devices: Router, api: ASGIApp) -> None:
        self.devices = devices
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.DEVICE_PREFIXES):
            await self.devices(scope, receive, send)
        else:
            await self.api(scope, receive, send)


def app_from_env() -> ASGIApp:
    """Factory for `uvicorn --factory russet.app:app_from_env` (each server worker opens its own).

    Each worker sets the database up under the first-start lock (a no-op once done), so workers
    started together, also without `russet serve`, neither race the migrations nor make two CAs.
    """
    os.umask(0o077)
    return create_app(Russet.open(Settings.from_env()))
