"""Admin REST API for enrollment URLs, under /api/v1/enrollment: tokens and profiles handed out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from pydantic import Field

from russet.api.models import MAX_DB_INT, ApiModel
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
