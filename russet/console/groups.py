"""Console pages for device groups (issue #13): the list (keyset pages), creating static and smart
groups with a "matches N devices" preview of the query, a group's members (keyset pages), its
edit form, adding and removing members, CSV import and delete.

Every action calls `russet.groups` (GroupService) as `russet/api/groups.py` does, with the same
inputs; a refusal is shown on the form it came from (see `russet.console.common`).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.console.common import (
    PAGE_SIZE,
    Admin,
    Fields,
    Flash,
    Form,
    Refusal,
    Signed,
    Upload,
    attempt,
    call,
    checked,
    checked_upload,
    done,
    page,
    text_part,
)
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/groups", include_in_schema=False)
PREVIEW_LISTED = 20
_SEPARATORS = re.compile(r"[\s,;]+")


def identifiers(text: str) -> list[str]:
    """UDIDs or serial numbers typed one a line (or separated by commas or spaces)."""
    return [i for i in _SEPARATORS.split(text) if i]


def _url(name: str) -> str:
    return f"/console/groups/{quote(name, safe='')}"


def _list(
    request: Request,
    admin: Admin,
    after: str | None = None,
    status: int = 200,
    *,
    flash: Flash | None = None,
    form: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    found = call(_russet(request).groups.page, limit=PAGE_SIZE, after=after)
    next_url = f"/console/groups?{urlencode({'after': found['next']})}" if found["next"] else None
    return page(
        request,
        "groups.html",
        admin,
        status,
        flash=flash,
        groups=found["groups"],
        after=after,
        next_url=next_url,
        form=form or {"kind": "static"},
        preview=preview,
    )


def _show(
    request: Request,
    admin: Admin,
    name: str,
    after: str | None = None,
    status: int = 200,
    *,
    flash: Flash | None = None,
    form: dict[str, str] | None = None,
    preview: dict[str, Any] | None = None,
) -> HTMLResponse:
    group = call(_russet(request).groups.show, name, limit=PAGE_SIZE, after=after)
    next_url = f"{_url(name)}?{urlencode({'after': group['next']})}" if group["next"] else None
    edit = {"name": group["name"], "description": group["description"] or "", "query": group["query"] or ""}
    return page(
        request,
        "group.html",
        admin,
        status,
        flash=flash,
        group=group,
        url=_url(group["name"]),
        after=after,
        next_url=next_url,
        form={**edit, **(form or {})},
        preview=preview,
    )


def _preview(request: Request, query: str) -> dict[str, Any]:
    return attempt(_russet(request).groups.preview, query, limit=PREVIEW_LISTED)


@router.get("")
def groups(request: Request, admin: Signed, after: str | None = None) -> HTMLResponse:
    return _list(request, admin, after)


@router.post("")
def create(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    kind = form.get("kind", "static")
    query = form.get("query", "").strip() or None
    try:
        if form.get("action") == "preview":
            return _list(request, admin, form=form, preview=_preview(request, query or ""))
        group = attempt(
            _russet(request).groups.create,
            form.get("name", "").strip(),
            query=query if kind == "smart" else None,
            description=form.get("description", "").strip() or None,
            kind=kind,
        )
    except Refusal as refused:
        return _list(request, admin, status=refused.status, flash=refused.flash, form=form)
    return done(
        request,
        _url(group["name"]),
        f"Group {group['name']!r} created ({group['kind']}, {group['member_count']} members).",
    )


@router.get("/{name}")
def show(request: Request, admin: Signed, name: str, after: str | None = None) -> HTMLResponse:
    return _show(request, admin, name, after)


@router.post("/{name}/edit")
def edit(request: Request, admin: Signed, form: Form, name: str) -> Response:
    checked(admin, form)
    service = _russet(request).groups
    current = call(service.show, name, limit=1)
    query = form.get("query", "").strip()
    try:
        if form.get("action") == "preview":
            return _show(request, admin, name, form=form, preview=_preview(request, query))
        group = attempt(
            service.update,
            name,
            new_name=form.get("name", "").strip() or None,
            query=query if current["kind"] == "smart" else None,
            description=form.get("description", "").strip(),
        )
    except Refusal as refused:
        return _show(request, admin, name, status=refused.status, flash=refused.flash, form=form)
    return done(
        request, _url(group["name"]), f"Group {group['name']!r} saved ({group['member_count']} members)."
    )


@router.post("/{name}/members")
def members(request: Request, admin: Signed, form: Form, name: str) -> Response:
    checked(admin, form)
    service = _russet(request).groups
    devices = identifiers(form.get("devices", ""))
    removing = form.get("action") == "remove"
    try:
        if removing:
            result = attempt(service.remove_members, name, devices)
        else:
            result = attempt(service.add_members, name, devices)
    except Refusal as refused:
        return _show(request, admin, name, status=refused.status, flash=refused.flash, form=_keep(form))
    verb = f"removed {result['removed']}" if removing else f"added {result['added']}"
    return done(request, _url(name), f"{verb.capitalize()}; the group has {result['members']} members.")


def _keep(form: Fields) -> dict[str, str]:
    """What the admin typed into the members form, shown again beside the refusal."""
    return {"devices": form.get("devices", "")}


@router.post("/{name}/import")
def import_csv(request: Request, admin: Signed, parts: Upload, name: str) -> Response:
    checked_upload(admin, parts)
    data = parts.get("file") or text_part(parts, "csv").encode()
    try:
        result = attempt(
            _russet(request).groups.import_csv, name, data, replace=text_part(parts, "replace") == "on"
        )
    except Refusal as refused:
        return _show(request, admin, name, status=refused.status, flash=refused.flash)
    return done(
        request,
        _url(name),
        f"Imported {result['rows']} rows: added {result['added']}, removed {result['removed']}; "
        f"the group has {result['members']} members.",
    )


@router.post("/{name}/delete")
def delete(request: Request, admin: Signed, form: Form, name: str) -> Response:
    checked(admin, form)
    try:
        result = attempt(_russet(request).groups.delete, name)
    except Refusal as refused:
        return _show(request, admin, name, status=refused.status, flash=refused.flash)
    return done(request, "/console/groups", f"Group {result['deleted']!r} deleted.")
