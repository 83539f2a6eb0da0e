"""Console pages for declarative device management (issue #14): the declarations (kind, type,
identifier, server token, what each is assigned to), one declaration with its fleet view (declared
vs reported: "312 devices active", "12 failed: reason", the OS versions its devices report),
creating one, editing its payload, assigning it and deleting it, and the software-update fleet
view (what each device runs, the version it was told to take and by when, whether it did).

Every action calls `russet.declarations` (DeclarativeService) as the API does
(`russet/api/declarations.py`); a refusal (Apple's schema's words, a blueprint that lists it)
is shown on the form again with the API's status.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.console.common import (
    Admin,
    Fields,
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
from russet.console.groups import identifiers
from russet.kernel.errors import Invalid
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/declarations", include_in_schema=False)
updates_router = APIRouter(prefix="/console/software-updates", include_in_schema=False)
DEVICES_SHOWN = 200  # devices listed on a declaration's page (the counts cover all of them)
MAX_PAYLOAD_CHARS = 60_000  # the console's forms are 64 KiB


def _payload(text: str) -> dict[str, Any]:
    if len(text) > MAX_PAYLOAD_CHARS:
        raise Invalid(f"payload: at most {MAX_PAYLOAD_CHARS} characters here (larger ones: the API)")
    try:
        payload = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise Invalid(f"payload: not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Invalid("payload: a JSON object (the declaration's Payload)")
    return payload


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.get("")
def declarations(request: Request, admin: Signed) -> HTMLResponse:
    return _list(request, admin)


def _list(
    request: Request,
    admin: Admin,
    form: dict[str, str] | None = None,
    status: int = 200,
    flash: Flash | None = None,
) -> HTMLResponse:
    service = _russet(request).declarations
    rows = call(service.list_declarations)["declarations"]
    fleet = call(service.summary)
    return page(
        request,
        "declarations.html",
        admin,
        status,
        flash=flash,
        declarations=rows,
        os_versions=sorted(fleet["os_versions"].items(), key=lambda kv: -kv[1]),
        states={d["identifier"]: d for d in fleet["declarations"]},
        form=form or {},
    )


@router.post("")
def create(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    service = _russet(request).declarations
    try:
        payload = attempt(_payload, form.get("payload", ""))
        made = attempt(
            service.create,
            form.get("type", "").strip(),
            payload,
            identifier=form.get("identifier", "").strip() or None,
            created_by=admin.name,
        )
    except Refusal as refused:
        return _list(request, admin, dict(form), refused.status, refused.flash)
    return done(
        request, f"/console/declarations/{made['identifier']}", f"Declaration {made['identifier']!r} created."
    )


def _page(
    request: Request,
    admin: Admin,
    identifier: str,
    status: int = 200,
    flash: Flash | None = None,
    **form: Any,
) -> HTMLResponse:
    service = _russet(request).declarations
    shown = call(service.show, identifier)
    fleet = call(service.declaration_status, identifier)
    return page(
        request,
        "declaration.html",
        admin,
        status,
        flash=flash,
        declaration=shown,
        fleet=fleet,
        devices=fleet["by_device"][:DEVICES_SHOWN],
        payload_text=form.get("payload", json.dumps(shown["payload"], indent=2, sort_keys=True)),
        targets=form.get("targets", {}),
    )


@router.get("/{identifier}")
def show(request: Request, admin: Signed, identifier: str) -> HTMLResponse:
    return _page(request, admin, identifier)


@router.post("/{identifier}")
def update(request: Request, admin: Signed, form: Form, identifier: str) -> Response:
    checked(admin, form)
    service = _russet(request).declarations
    try:
        payload = attempt(_payload, form.get("payload", ""))
        saved = attempt(service.update, identifier, payload, created_by=admin.name)
    except Refusal as refused:
        return _page(
            request, admin, identifier, refused.status, refused.flash, payload=form.get("payload", "")
        )
    message = f"Version {saved['version']} saved." if saved["changed"] else "Nothing changed."
    return done(request, f"/console/declarations/{identifier}", message)


def _targets(form: Fields) -> dict[str, list[str]]:
    return {"devices": identifiers(form.get("devices", "")), "groups": _lines(form.get("groups", ""))}


@router.post("/{identifier}/assignments")
def assignments(request: Request, admin: Signed, form: Form, identifier: str) -> Response:
    """`action=assign` gives the declaration to the devices and groups typed; `unassign` takes it back."""
    checked(admin, form)
    service = _russet(request).declarations
    targets = _targets(form)
    try:
        if form.get("action") == "unassign":
            result = attempt(service.unassign, identifier, **targets)
            message = f"{result['removed']} assignments removed"
        else:
            result = attempt(service.assign, identifier, **targets)
            message = f"{result['added']} assignments added"
    except Refusal as refused:
        typed = {"devices": form.get("devices", ""), "groups": form.get("groups", "")}
        return _page(request, admin, identifier, refused.status, refused.flash, targets=typed)
    message += f"; {result['commanded']} devices told (DeclarativeManagement)."
    return done(request, f"/console/declarations/{identifier}", message)


@router.post("/{identifier}/delete")
def delete(request: Request, admin: Signed, form: Form, identifier: str) -> Response:
    checked(admin, form)
    try:
        gone = attempt(_russet(request).declarations.delete, identifier)
    except Refusal as refused:
        return _page(request, admin, identifier, refused.status, refused.flash)
    return done(
        request,
        "/console/declarations",
        f"Declaration {identifier!r} deleted; {gone['commanded']} devices told to drop it.",
    )


@updates_router.get("")
def software_updates(request: Request, admin: Signed) -> HTMLResponse:
    fleet = call(_russet(request).declarations.software_updates)
    return page(request, "software_updates.html", admin, rows=fleet["devices"], summary=fleet["summary"])
