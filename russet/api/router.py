"""The admin REST API under /api/v1: the one module that includes every router.

Routers import their shared dependencies from `russet.web.deps` and never each other, so this
module can import them all at the top and the app only calls `install`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from russet.api.abm import router as abm_router
from russet.api.actions import router as actions_router
from russet.api.apps import router as app_catalogue_router
from russet.api.blueprints import router as blueprints_router
from russet.api.declarations import router as declarations_router
from russet.api.devices import router as devices_router
from russet.api.enrollment import router as enrollment_router
from russet.api.escrow import router as escrow_router
from russet.api.groups import router as groups_router
from russet.api.ledger import router as ledger_router
from russet.api.models import document_errors
from russet.api.profiles import router as profiles_router
from russet.api.push import router as push_router
from russet.api.tasks import router as tasks_router
from russet.api.vpp import apps as apps_router
from russet.api.vpp import router as vpp_router
from russet.web import errors as web_errors

health_router = APIRouter(prefix="/api/v1")


@health_router.get("/health", summary="Liveness (no authentication)")
def health() -> dict[str, str]:
    return {"status": "ok"}


ROUTERS: tuple[APIRouter, ...] = (
    health_router,
    devices_router,
    actions_router,
    ledger_router,
    abm_router,
    push_router,
    vpp_router,
    apps_router,  # /api/v1/apps/install(s) first: the catalogue's /{ident} would match them
    app_catalogue_router,
    enrollment_router,
    tasks_router,
    groups_router,
    profiles_router,
    blueprints_router,
    declarations_router,
    escrow_router,
)


def install(app: FastAPI) -> None:
    """Include every API router (with its error answers documented) and the error-kind handler."""
    for api_router in ROUTERS:
        document_errors(api_router)
        app.include_router(api_router)
    web_errors.install(app)
