"""Console pages for the connections to Apple (issue #19 item 5): the list, disconnecting one,
and purging one, which asks for the connection's name typed as a confirmation. Either action
ends on its receipt: the JSON as signed, the per-table counts before and after, and whether its
signature verifies under this Russet's CA.

Both call `russet.ledger_admin`, as `russet/api/ledger.py` does; a refusal is shown on the list.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.access.roles import Role
from russet.console.common import Admin, Flash, Form, Refusal, Signed, attempt, checked, page, render
from russet.kernel.errors import RussetError
from russet.web.deps import needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/connections", include_in_schema=False)


def _list(request: Request, admin: Admin, status: int = 200, *, flash: Flash | None = None) -> HTMLResponse:
    ledger_admin = _russet(request).ledger_admin
    return page(
        request,
        "connections.html",
        admin,
        status,
        flash=flash,
        connections=ledger_admin.connections(),
        receipts=ledger_admin.receipts(),
    )


@router.get("")
def connections(request: Request, admin: Signed) -> HTMLResponse:
    return _list(request, admin)


def verdict(request: Request, receipt: dict[str, Any]) -> dict[str, Any]:
    """Whether the receipt verifies (intact, signed under this Russet's CA), and if not why."""
    try:
        _russet(request).ledger_admin.verify_receipt(json.dumps(receipt))
    except RussetError as exc:
        return {"ok": False, "reason": str(exc)}
    return {"ok": True, "reason": None}


@router.post("/{service}/{name}/disconnect", dependencies=[needs(Role.ADMIN)])
def disconnect(request: Request, admin: Signed, form: Form, service: str, name: str) -> Response:
    """Disconnect, or with `purge` also delete the connection's data. A purge needs the
    connection's name typed into `confirm` (exactly); otherwise nothing is done."""
    checked(admin, form)
    purge = form.get("purge") == "on"
    if purge and form.get("confirm", "") != name:
        message = f"to purge {service} {name!r}, type its name exactly; nothing was done"
        return _list(request, admin, 400, flash=Flash("error", message))
    try:
        receipt = attempt(_russet(request).ledger_admin.disconnect, service, name, purge=purge)
    except Refusal as refused:
        return _list(request, admin, refused.status, flash=refused.flash)
    return render(
        "receipt.html",
        admin,
        receipt=receipt,
        tables=receipt.get("tables", {}),
        verdict=verdict(request, receipt),
    )
