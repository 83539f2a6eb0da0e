"""Admin REST API for enrollment, under /api/v1/enrollment: tokens, profiles handed out, and the
minimum OS ADE devices need (admin role to change, like every mutation here)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from russet.api.models import MAX_DB_INT, ApiModel
from russet.enrollment.minimum_os import MAX_VERSION_CHARS, PLATFORMS
from russet.enrollment.service import DEFAULT_LIFETIME, MAX_NOTE_CHARS, MAX_USES
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/enrollment", tags=["enrollment"])


class TokenRequest(ApiModel):
    expires: str = Field(
        DEFAULT_LIFETIME, description="How long the token works: 30m, 12h, 7d (at most 365d)"
    )
    uses: int | None = Field(
        None, ge=1, le=MAX_USES, description="Profiles it may fetch; null: any number until it expires"
    )
    note: str | None = Field(None, max_length=MAX_NOTE_CHARS, description="What it is for, shown in listings")


@router.post(
    "/tokens",
    status_code=201,
    summary="Create an enrollment token; the answer is the only time its value and URL are shown",
)
def create_token(request: Request, _: Caller, body: TokenRequest) -> dict[str, Any]:
    return _russet(request).enrollment.create_token(expires=body.expires, uses=body.uses, note=body.note)


@router.get("/tokens", summary="Enrollment tokens with status and uses (never the tokens themselves)")
def list_tokens(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).enrollment.list_tokens()


@router.post("/tokens/{token_id}/revoke", summary="Revoke an enrollment token at once")
def revoke_token(
    request: Request, _: Caller, token_id: Annotated[int, Path(ge=1, le=MAX_DB_INT)]
) -> dict[str, Any]:
    return _russet(request).enrollment.revoke_token(token_id)


@router.get("/requests", summary="Profiles handed out at /mdm/enroll (OTA and ADE), newest first")
def requests(
    request: Request, _: Caller, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    return _russet(request).enrollment.recent_requests(limit)


class MinimumOsRequest(ApiModel):
    version: str = Field(
        ..., max_length=MAX_VERSION_CHARS, description="The lowest OS version that may enroll: 17.4, 14.6.1"
    )


BlueprintRef = Annotated[
    str | None,
    Query(
        max_length=100,
        description="A blueprint (name or id): the minimum for devices whose ADE profile names it",
    ),
]


@router.get("/minimum-os", summary="The minimum OS an ADE device of each platform needs to enroll")
def minimum_os(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).enrollment.minimum_os()


@router.put(
    "/minimum-os/{platform}",
    summary="Set a platform's minimum OS: ADE devices below it are asked to update before they enroll",
)
def set_minimum_os(
    request: Request,
    _: Caller,
    platform: Annotated[str, Path(max_length=20, description=", ".join(PLATFORMS))],
    body: MinimumOsRequest,
    blueprint: BlueprintRef = None,
) -> dict[str, Any]:
    return _russet(request).enrollment.set_minimum_os(platform, body.version, blueprint=blueprint)


@router.delete("/minimum-os/{platform}", summary="Remove a platform's minimum OS")
def clear_minimum_os(
    request: Request,
    _: Caller,
    platform: Annotated[str, Path(max_length=20)],
    blueprint: BlueprintRef = None,
) -> dict[str, Any]:
    return _russet(request).enrollment.clear_minimum_os(platform, blueprint=blueprint)
