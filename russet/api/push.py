"""Admin REST API for APNs pushes, under /api/v1/push.

Pushing on demand is `async`: it runs on the server's event loop, where the pusher keeps its
HTTP/2 connections to APNs.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.api.models import ApiModel, EnrollmentId
from russet.api.routes import Caller, _russet
from russet.apns import admin

router = APIRouter(prefix="/api/v1/push", tags=["apns"])


class PushRequest(ApiModel):
    devices: list[EnrollmentId] = Field(min_length=1, description="Enrollment ids (UDID or EnrollmentID)")


@router.post("", summary="Push these devices now; returns each device's outcome")
async def push(request: Request, _: Caller, body: PushRequest) -> dict[str, Any]:
    return await admin.push_devices(_russet(request), body.devices)


@router.get("/status", summary="Push certificate, whether pushing runs (or why not), outcome counts")
def status(request: Request, _: Caller) -> dict[str, Any]:
    return admin.push_status(_russet(request))
