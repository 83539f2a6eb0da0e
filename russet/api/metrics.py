"""GET /metrics: Prometheus' text format (russet.metrics), when RUSSET_METRICS=on.

Behind an API key like the admin API (any role: auditor is enough), so a scraper gets a key of
its own (`russet apikey create prometheus --role auditor`) and sends it as a bearer token. Off,
the path answers 404 as any unknown one. Nothing in it is secret: route templates, counts,
statuses, connection names and days to expiry.
"""

from __future__ import annotations

from typing import Protocol

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from russet.web.deps import Caller


class Rendering(Protocol):
    """What the route needs of `russet.metrics.Metrics`, named so that this module does not load
    prometheus_client: the app installs it only where metrics are on (`russet.app`)."""

    def render(self) -> tuple[bytes, str]: ...


router = APIRouter(tags=["metrics"])


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, _: Caller) -> Response:
    found: Rendering | None = getattr(request.app.state, "metrics", None)
    if found is None:
        raise HTTPException(404, "Not Found")
    body, content_type = await run_in_threadpool(found.render)  # the gauges read the database
    return Response(body, media_type=content_type)
