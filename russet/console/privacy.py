"""Console pages for the privacy officer (issue #16): the ledger laid out as "Data Intune sends to
Apple" with its chart over time (SVG drawn by the template, no script) and retention per service;
a subject's right-of-access export (page, JSON, PDF) and its erasure.

Every action calls `russet.ledger_privacy` as `russet/api/ledger.py` does, with the same inputs.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.apple import documents
from russet.apple.admin import parse_since
from russet.apple.report import TABLE_COLUMNS
from russet.console.common import (
    Admin,
    Flash,
    Form,
    Refusal,
    Signed,
    attempt,
    call,
    checked,
    done,
    page,
)
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/ledger", include_in_schema=False)
SERVICES = ["apns", "abm", "vpp", "activationlock"]


def _report(request: Request, since: str, service: str, days: int) -> dict[str, Any]:
    return call(
        lambda: _russet(request).ledger_privacy.table(
            since=parse_since(since.strip() or None), service=service or None, days=max(1, min(days, 366))
        )
    )


def _table_page(
    request: Request,
    admin: Admin,
    since: str = "",
    service: str = "",
    days: int = 30,
    status: int = 200,
    flash: Flash | None = None,
) -> HTMLResponse:
    report = _report(request, since, service, days)
    query = urlencode({"since": since, "service": service, "days": days})
    return page(
        request,
        "ledger_table.html",
        admin,
        status,
        flash=flash,
        report=report,
        columns=TABLE_COLUMNS,
        chart=documents.chart_geometry(report["timeline"]),
        since=since,
        service=service,
        days=days,
        services=SERVICES,
        query=query,
    )


@router.get("/table")
def table(
    request: Request, admin: Signed, since: str = "", service: str = "", days: int = 30
) -> HTMLResponse:
    return _table_page(request, admin, since, service, days)


@router.get("/table.csv")
def table_csv(
    request: Request, admin: Signed, since: str = "", service: str = "", days: int = 30
) -> Response:
    report = _report(request, since, service, days)
    return Response(
        documents.table_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="russet-ledger-table.csv"'},
    )


@router.get("/table.pdf")
def table_pdf(
    request: Request, admin: Signed, since: str = "", service: str = "", days: int = 30
) -> Response:
    report = _report(request, since, service, days)
    return Response(
        documents.table_pdf(report),
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="russet-ledger-table.pdf"'},
    )


@router.post("/retention")
def set_retention(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    service = form.get("service", "")
    try:
        days_text = form.get("days", "").strip()
        if not days_text.isdigit():
            raise Refusal(Flash("error", f"days {days_text!r}: expected a whole number of days"), 400)
        policy = attempt(
            _russet(request).ledger_privacy.set_retention, service, int(days_text), by=admin.name
        )
    except Refusal as refused:
        return _table_page(request, admin, status=refused.status, flash=refused.flash)
    return done(
        request,
        "/console/ledger/table",
        f"{policy['service_name']}: ledger detail kept {policy['detail_days']} days, then only counts.",
    )


@router.get("/subject")
def subject(request: Request, admin: Signed, q: str = "") -> HTMLResponse:
    export = call(_russet(request).ledger_privacy.subject, q) if q.strip() else None
    return page(request, "ledger_subject.html", admin, q=q, export=export, quoted=quote(q, safe=""))


@router.get("/subject.json")
def subject_json(request: Request, admin: Signed, q: str = "") -> Response:
    export = call(_russet(request).ledger_privacy.subject, q)
    return Response(
        json.dumps(export, indent=2),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="russet-subject-export.json"'},
    )


@router.get("/subject.pdf")
def subject_pdf(request: Request, admin: Signed, q: str = "") -> Response:
    export = call(_russet(request).ledger_privacy.subject, q)
    return Response(
        documents.subject_pdf(export),
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="russet-subject-export.pdf"'},
    )


@router.post("/subject/erase")
def erase(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    q = form.get("q", "")
    try:
        if form.get("confirm") != "yes":
            raise Refusal(Flash("error", "tick the box to confirm the erasure"), 400)
        erased = attempt(
            _russet(request).ledger_privacy.erase,
            q,
            by=admin.name,
            reason=form.get("reason", "").strip() or None,
        )
    except Refusal as refused:
        export = call(_russet(request).ledger_privacy.subject, q) if q.strip() else None
        return page(
            request,
            "ledger_subject.html",
            admin,
            refused.status,
            flash=refused.flash,
            q=q,
            export=export,
            quoted=quote(q, safe=""),
        )
    cleared = erased["enrollment_people_cleared"]
    return done(
        request,
        "/console/ledger/subject",
        f"Erasure {erased['erasure']}: {erased['rows_folded_into_counts']} ledger rows became counts."
        + (f" {cleared} enrollment requests no longer name the person." if cleared else ""),
    )
