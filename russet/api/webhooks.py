"""Admin REST API for webhooks, under /api/v1/webhooks: receivers (the secret is in the creation's
answer only), and the delivery log. Reading needs auditor, changing admin (the routers' default)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from russet.api.models import MAX_DB_INT, ApiModel
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

EndpointId = Annotated[int, Path(ge=1, le=MAX_DB_INT)]


class WebhookCreate(ApiModel):
    url: str = Field(min_length=1, max_length=2000, description="The receiver: http:// or https://")
    events: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        None, max_length=20, description="Event types to send (default: all)"
    )
    format: Literal["russet", "nanomdm"] = Field(
        "russet", description="Russet's JSON or NanoMDM's webhook shape"
    )


@router.get("", summary="Webhook receivers and how many events each still has to receive")
def list_webhooks(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).webhooks.endpoints()


@router.post("", status_code=201, summary="Add a receiver; the answer holds its signing secret, shown once")
def add_webhook(request: Request, _: Caller, body: WebhookCreate) -> dict[str, Any]:
    return _russet(request).webhooks.add(body.url, body.events, body.format)


@router.delete("/{endpoint_id}", summary="Remove a receiver and its undelivered events")
def remove_webhook(request: Request, _: Caller, endpoint_id: EndpointId) -> dict[str, Any]:
    return _russet(request).webhooks.remove(endpoint_id)


@router.get("/deliveries", summary="The delivery log, newest first (every attempt and its outcome)")
def deliveries(
    request: Request,
    _: Caller,
    endpoint: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict[str, Any]]:
    return _russet(request).webhooks.deliveries(endpoint, limit)
