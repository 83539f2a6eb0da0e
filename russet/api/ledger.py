"""Admin REST API for what Russet tells Apple (`russet.ledger_admin`): the ledger's report and
subject view, and the connections to Apple with their disconnect, purge and receipts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field

from russet.api.models import ApiModel
from russet.web.deps import Caller
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1", tags=["ledger"])


@router.get(
    "/ledger/report", summary="Every catalogue field: times exchanged with Apple, subjects, first/last"
)
def ledger_report(
    request: Request, _: Caller, since: str | None = None, service: str | None = None
) -> list[dict[str, Any]]:
    return _russet(request).ledger_admin.ledger_report(since=since, service=service)


@router.get(
    "/ledger/subjects/{identifier}", summary="What Apple was told about a device or person, when and why"
)
def ledger_subject(request: Request, _: Caller, identifier: str) -> dict[str, Any]:
    return _russet(request).ledger_admin.ledger_subject(identifier)


@router.get("/connections", summary="Connections to Apple's services")
def list_connections(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).ledger_admin.connections()


class DisconnectRequest(ApiModel):
    purge: bool = Field(False, description="Also delete every datum obtained from or tied to the connection")


@router.post(
    "/connections/{service}/{name}/disconnect",
    summary="Stop traffic to a connection, destroy its credentials, optionally purge; returns the receipt",
)
def disconnect(
    request: Request, _: Caller, service: str, name: str, body: DisconnectRequest
) -> dict[str, Any]:
    return _russet(request).ledger_admin.disconnect(service, name, purge=body.purge)


@router.get("/connections/receipts", summary="Receipts of past disconnects and purges")
def receipts(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).ledger_admin.receipts()
