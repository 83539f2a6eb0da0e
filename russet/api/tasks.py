"""Admin REST API for the server's periodic tasks: GET /api/v1/tasks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])


@router.get(
    "",
    summary="The periodic tasks: interval, where they run, and (for once-across-nodes tasks) the last "
    "run of all nodes, its holder and error",
)
def tasks(request: Request, _: Caller) -> dict[str, Any]:
    return _russet(request).schedule.overview()
