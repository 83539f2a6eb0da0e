"""Admin REST API for what Russet tells Apple (`russet.ledger_admin`): the ledger's report and
subject view, and the connections to Apple with their disconnect, purge and receipts."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import Field

from russet.access.roles import Role
from russet.api.models import ApiModel
from russet.apple import documents
from russet.apple.admin import parse_since
from russet.web.deps import Caller, needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/api/v1", tags=["ledger"])
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_JSON = {"schema": {"type": "object"}}


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


@router.get(
    "/ledger/table",
    summary='The ledger laid out as "Data Intune sends to Apple": counts, first/last seen, differences',
    response_model=None,
)
def ledger_table(
    request: Request,
    _: Caller,
    since: str | None = None,
    service: str | None = None,
    days: int = Query(30, ge=1, le=366, description="Days in the timeline"),
    format: Literal["json", "csv", "pdf"] = "json",
) -> dict[str, Any] | Response:
    report = _russet(request).ledger_privacy.table(since=parse_since(since), service=service, days=days)
    if format == "csv":
        return Response(documents.table_csv(report), media_type="text/csv; charset=utf-8")
    if format == "pdf":
        return Response(documents.table_pdf(report), media_type="application/pdf")
    return report


@router.get(
    "/ledger/subjects/{identifier}/export",
    summary="Right-of-access export: who the subject is to Russet and every exchange with Apple about them",
    response_model=None,
    responses={
        200: {
            "content": {"application/json": _JSON, "application/pdf": _BINARY},
            "description": "JSON, or with `format=pdf` a PDF",
        }
    },
)
def ledger_subject_export(
    request: Request, _: Caller, identifier: str, format: Literal["json", "pdf"] = "json"
) -> dict[str, Any] | Response:
    data = _russet(request).ledger_privacy.subject(identifier)
    if format == "pdf":
        return Response(documents.subject_pdf(data), media_type="application/pdf")
    return data


class EraseRequest(ApiModel):
    reason: str | None = Field(None, max_length=500, description="Why (kept with the record of the erasure)")


@router.post(
    "/ledger/subjects/{identifier}/erase",
    summary="Erase one subject's ledger detail (the rows become per-day counts, totals unchanged) and "
    "the people found from the enrollment requests",
)
def ledger_subject_erase(
    request: Request, caller: Caller, identifier: str, body: EraseRequest
) -> dict[str, Any]:
    return _russet(request).ledger_privacy.erase(identifier, by=caller, reason=body.reason)


@router.get("/ledger/erasures", summary="Erasures done (when, by whom, how many rows; never about whom)")
def ledger_erasures(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).ledger_privacy.erasures()


@router.get("/ledger/retention", summary="Ledger retention per service and what the ledger holds")
def ledger_retention(request: Request, _: Caller) -> list[dict[str, Any]]:
    return _russet(request).ledger_privacy.retention_policies()


class RetentionRequest(ApiModel):
    days: int = Field(..., ge=0, le=36_500, description="Days of ledger detail kept; then only counts")


@router.put("/ledger/retention/{service}", summary="Keep this service's ledger detail N days, then counts")
def set_ledger_retention(
    request: Request, caller: Caller, service: str, body: RetentionRequest
) -> dict[str, Any]:
    return _russet(request).ledger_privacy.set_retention(service, body.days, by=caller)


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


class ReceiptCheck(ApiModel):
    receipt: dict[str, Any] = Field(..., description="The receipt as the disconnect returned it")


@router.post(
    "/connections/receipts/verify",
    summary="Check a disconnect/purge receipt: intact and signed under this Russet's CA (else 400, why)",
    dependencies=[needs(Role.AUDITOR)],  # a read, though a POST
)
def verify_receipt(request: Request, _: Caller, body: ReceiptCheck) -> dict[str, Any]:
    checked = _russet(request).ledger_admin.verify_receipt(json.dumps(body.receipt))
    return {
        "intact": True,
        "service": checked["service"],
        "connection": checked["connection"],
        "at": checked["at"],
    }
