"""Admin REST API for the audit log (`russet.access`): GET /api/v1/audit (newest first, paged)
and GET /api/v1/audit/verify (the hash chain walked). Auditors may read both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", summary="Audit log rows, newest first: who did what, to what, when, from where, outcome")
def audit(
    request: Request,
    _: Caller,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="`next` of the previous page")
    ] = None,
    actor: Annotated[str | None, Query(max_length=300, description="api:NAME, user:EMAIL, cli:USER…")] = None,
    surface: Annotated[str | None, Query(pattern="^(api|console|cli|task|system)$")] = None,
    since: Annotated[datetime | None, Query(description="ISO 8601 time; rows at or after it")] = None,
) -> dict[str, Any]:
    return _russet(request).access.audit_page(
        limit=limit, before=before, actor=actor, surface=surface, since=since
    )


@router.get("/verify", summary="Walk the hash chain: ok, or the first broken row and why")
def verify(request: Request, _: Caller) -> dict[str, Any]:
    verdict = _russet(request).access.audit_verify()
    return {
        "ok": verdict.ok,
        "rows": verdict.rows,
        "broken_row": verdict.broken_seq,
        "reason": verdict.reason,
    }
