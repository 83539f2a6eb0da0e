"""The admin REST API under /api/v1: the one module that includes every router.

Routers import their shared dependencies from `russet.web.deps` and never each other, so this
module can import them all at the top and the app only calls `install`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from russet.api.abm import router as abm_router
from russet.api.actions import router as actions_router
from russet.api.apps import router as app_catalogue_router
from russet.api.audit import router as audit_router
from russet.api.blueprints import router as blueprints_router
from russet.api.declarations import router as declarations_router
from russet.api.devices import router as devices_router
from russet.api.enrollment import router as enrollment_router
from russet.api.enrollment_domains import router as enrollment_domains_router
from russet.api.escrow import router as escrow_router
from russet.api.groups import router as groups_router
from russet.api.ledger import router as ledger_router
from russet.api.metrics import router as metrics_router
from russet.api.models import document_errors
from russet.api.profiles import router as profiles_router
from russet.api.push import router as push_router
from russet.api.tasks import router as tasks_router
from russet.api.vpp import apps as apps_router
from russet.api.vpp import router as vpp_router
from russet.api.webhooks import router as webhooks_router
from russet.web import errors as web_errors
from russet.web.deps import api_caller, role_of

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
    enrollment_domains_router,
    tasks_router,
    groups_router,
    profiles_router,
    blueprints_router,
    declarations_router,
    escrow_router,
    audit_router,
    webhooks_router,
    metrics_router,  # /metrics, outside /api/v1 where scrapers look; when RUSSET_METRICS=on
)
PUBLIC_PATHS = frozenset({"/api/v1/health"})  # no caller, no role


def _calls(dependant: Dependant | None) -> set[object]:
    if dependant is None:
        return set()
    found: set[object] = {dependant.call}
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _api_routes(app: FastAPI) -> list[tuple[RouteContext, APIRoute]]:
    """Every admin API route as the app serves it (included routers resolved), but the public ones."""
    return [
        (context, context.original_route)
        for context in iter_route_contexts(app.routes)
        if isinstance(context.original_route, APIRoute)
        and (context.path or "").startswith("/api/")
        and context.path not in PUBLIC_PATHS
    ]


def unguarded(app: FastAPI) -> list[str]:
    """Admin API routes that would run without the caller's role check (should be none)."""
    return sorted(
        f"{sorted(context.methods or ())} {context.path}"
        for context, _ in _api_routes(app)
        if api_caller not in _calls(context.dependant)
    )


def roles(app: FastAPI) -> dict[tuple[str, str], str]:
    """(method, path) -> the role each admin API route needs."""
    return {
        (method, context.path or ""): role_of(route).label
        for context, route in _api_routes(app)
        for method in sorted(context.methods or ())
    }


def document_roles(app: FastAPI) -> None:
    """Say in the OpenAPI document which role each route needs: `x-russet-role` on the operation,
    and a line in its description."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, cached after the first call: annotated once
        if not schema.get("x-russet-roles-documented"):
            for (method, path), role in roles(app).items():
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is None:
                    continue
                operation["x-russet-role"] = role
                line = f"Needs the **{role}** role or higher."
                operation["description"] = (
                    f"{operation['description']}\n\n{line}" if operation.get("description") else line
                )
            schema["x-russet-roles-documented"] = True
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install(app: FastAPI) -> None:
    """Include every API router (with its error answers documented) and the error-kind handler.

    Every route but the health check gets the caller dependency (authentication and the role
    check, `russet.web.deps.api_caller`) from here, so a router added to ROUTERS is covered
    without a line of its own; FastAPI calls it once per request however often a route names it.
    """
    for api_router in ROUTERS:
        document_errors(api_router)
        guarded = [] if api_router is health_router else [Depends(api_caller)]
        app.include_router(api_router, dependencies=guarded)
    document_roles(app)
    web_errors.install(app)
