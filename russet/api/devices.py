"""Admin REST API for device identities: open re-enrollment, forget a device, refused takeovers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from russet.api.models import ApiModel
from russet.mdm import admin
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1", tags=["devices"])


class ReenrollRequest(ApiModel):
    for_: str = Field(
        admin.DEFAULT_OPENING, alias="for", max_length=20, description="How long it stays open: 30m, 24h, 7d"
    )


@router.post(
    "/devices/{device_id}/allow-reenroll",
    summary="Accept one enrollment of this device with another identity certificate, until it expires",
)
def allow_reenroll(
    request: Request, _: Caller, device_id: str, body: ReenrollRequest | None = None
) -> dict[str, Any]:
    return admin.allow_reenroll(_russet(request), device_id, body.for_ if body else None)


@router.post(
    "/devices/{device_id}/forget",
    summary="Forget a device: its next request is told ErrorUnrecognizedDevice, and it unenrolls",
)
def forget(request: Request, _: Caller, device_id: str) -> dict[str, Any]:
    return admin.forget(_russet(request), device_id)


@router.get("/refusals", summary="Refused re-enrollments (another identity for an enrolled device)")
def refusals(
    request: Request,
    _: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    device: str | None = None,
) -> list[dict[str, Any]]:
    return admin.refusals(_russet(request), limit, device)
