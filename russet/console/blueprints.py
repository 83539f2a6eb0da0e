"""Console pages for blueprints (issue #13): the list, creating and editing one (library
profiles, settings, app refs, declarations, include/exclude groups by name), delete, and
"reconcile now": a dry run listing what would be queued (and each conflict) before the real pass.

Every action calls `russet.blueprints` (BlueprintService) with the `BlueprintSpec` the API builds
(`russet/api/blueprints.py`); groups are shown and typed by name, stored by id (looked up with
`russet.groups`).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.blueprints.service import BlueprintSpec, ProfileRef
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
from russet.runtime import Russet
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/blueprints", include_in_schema=False)
PLAN_SHOWN = 200  # devices listed in a dry run's table (the service lists up to 1000)
MAX_LINES = 1000
_LINES = re.compile(r"\s*[\r\n]+\s*")


def _lines(text: str) -> list[str]:
    """One entry a line (group names may hold spaces and commas)."""
    found = [line for line in _LINES.split(text.strip()) if line]
    if len(found) > MAX_LINES:
        raise Invalid(f"at most {MAX_LINES} lines in a list")
    return found


def _ident(ident: str) -> int | str:
    """A blueprint is named by id or by name (names are never only digits), as in the API."""
    return int(ident) if ident.isdigit() and len(ident) < 19 else ident


def _group_ids(russet: Russet, what: str, names: list[str]) -> tuple[int, ...]:
    known = russet.groups.lookup(names=names)
    missing = [n for n in names if n not in known]
    if missing:
        raise Invalid(f"scope {what}: no group named " + ", ".join(repr(m) for m in missing[:10]))
    return tuple(known[n] for n in names)


def _spec(russet: Russet, form: Fields) -> BlueprintSpec:
    """The form as the API's BlueprintSpec; Invalid naming a bad field."""
    profiles = []
    for ref in form.getlist("profile"):
        pinned = form.get(f"version:{ref}", "").strip()
        if pinned and not (pinned.isdigit() and 1 <= int(pinned) <= 2**31 - 1):
            raise Invalid(f"profile {ref!r}: version must be a positive number, or empty for the latest")
        profiles.append(ProfileRef(ref, int(pinned) if pinned else None))
    return BlueprintSpec(
        name=form.get("name", "").strip(),
        description=form.get("description", "").strip(),
        profiles=tuple(profiles),
        device_name=form.get("device_name", "").strip() or None,
        time_zone=form.get("time_zone", "").strip() or None,
        apps=tuple(_lines(form.get("apps", ""))),
        declarations=tuple(form.getlist("declaration")),
        include=_group_ids(russet, "include", _lines(form.get("include", ""))),
        exclude=_group_ids(russet, "exclude", _lines(form.get("exclude", ""))),
    )


def _as_form(russet: Russet, blueprint: dict[str, Any]) -> dict[str, Any]:
    """A stored blueprint as the form shows it: groups by name, pinned versions by profile."""
    scope = blueprint["scope"]
    names = {i: n for n, i in russet.groups.lookup(ids=[*scope["include"], *scope["exclude"]]).items()}
    return {
        "name": blueprint["name"],
        "description": blueprint["description"],
        "profiles": [p["ref"] for p in blueprint["profiles"]],
        "versions": {
            p["ref"]: "" if p["version"] == "latest" else str(p["version"]) for p in blueprint["profiles"]
        },
        "device_name": blueprint["settings"]["device_name"] or "",
        "time_zone": blueprint["settings"]["time_zone"] or "",
        "apps": "\n".join(blueprint["apps"]),
        "declarations": list(blueprint.get("declarations", [])),
        "include": "\n".join(names.get(i, f"(deleted group {i})") for i in scope["include"]),
        "exclude": "\n".join(names.get(i, f"(deleted group {i})") for i in scope["exclude"]),
    }


def _typed(form: Fields) -> dict[str, Any]:
    """What the admin typed, shown again beside a refusal."""
    profiles = form.getlist("profile")
    return {
        **{
            k: form.get(k, "")
            for k in ("name", "description", "device_name", "time_zone", "apps", "include", "exclude")
        },
        "profiles": profiles,
        "versions": {ref: form.get(f"version:{ref}", "") for ref in profiles},
        "declarations": form.getlist("declaration"),
    }


def _editor(
    request: Request,
    admin: Admin,
    blueprint: dict[str, Any] | None,
    form: dict[str, Any] | None = None,
    status: int = 200,
    *,
    flash: Flash | None = None,
) -> HTMLResponse:
    russet = _russet(request)
    library = call(russet.library.list_profiles)
    if form is None:
        form = _as_form(russet, blueprint) if blueprint else {"profiles": [], "versions": {}}
    names = [p["name"] for p in library]
    extra = [ref for ref in form.get("profiles", []) if ref not in names]  # named by identifier, or gone
    declared = call(russet.declarations.list_declarations)["declarations"]
    return page(
        request,
        "blueprint.html",
        admin,
        status,
        flash=flash,
        blueprint=blueprint,
        form=form,
        library=library,
        extra_refs=extra,
        declarations=declared,
    )


@router.get("")
def blueprints(request: Request, admin: Signed) -> HTMLResponse:
    russet = _russet(request)
    rows = call(russet.blueprints.list_blueprints)
    ids = {i for b in rows for i in (*b["include"], *b["exclude"])}
    names = {i: n for n, i in russet.groups.lookup(ids=ids).items()} if ids else {}
    return page(request, "blueprints.html", admin, blueprints=rows, group_names=names)


@router.get("/new")
def new(request: Request, admin: Signed) -> HTMLResponse:
    return _editor(request, admin, None)


@router.post("")
def create(request: Request, admin: Signed, form: Form) -> Response:
    checked(admin, form)
    russet = _russet(request)
    try:
        spec = attempt(_spec, russet, form)
        made = attempt(russet.blueprints.create, spec, created_by=admin.name)
    except Refusal as refused:
        return _editor(request, admin, None, _typed(form), refused.status, flash=refused.flash)
    return done(request, f"/console/blueprints/{made['id']}", f"Blueprint {made['name']!r} created.")


@router.post("/reconcile")
def reconcile(request: Request, admin: Signed, form: Form) -> Response:
    """ "Reconcile now": `action=preview` plans only (dry run) and shows it with a button to run
    it; `action=run` runs the pass and says what it queued."""
    checked(admin, form)
    russet = _russet(request)
    devices = identifiers(form.get("devices", "")) or None
    retry = form.get("retry_failed") == "on"
    dry_run = form.get("action") != "run"
    try:
        result = attempt(
            russet.blueprints.reconcile,
            devices,
            dry_run=dry_run,
            retry_failed=retry,
            created_by=f"reconcile:{admin.name}"[:100],
        )
    except Refusal as refused:
        return page(
            request, "reconcile.html", admin, refused.status, flash=refused.flash, result=None, form=form
        )
    if dry_run:
        return page(
            request, "reconcile.html", admin, result=result, shown=result["plan"][:PLAN_SHOWN], form=form
        )
    queued = ", ".join(f"{n} {kind}" for kind, n in sorted(result["commands"].items())) or "nothing"
    message = f"Reconciled {result['devices']} devices: queued {queued}."
    if result["deferred"]:
        message += f" {result['deferred']} left for a later pass (commands in flight)."
    if result["devices_with_conflicts"]:
        message += f" {result['devices_with_conflicts']} devices have conflicts."
    if result["errors"]:
        message += " Errors: " + "; ".join(result["errors"][:5])
    return done(request, "/console/blueprints", message)


@router.get("/{ident}")
def show(request: Request, admin: Signed, ident: str) -> HTMLResponse:
    return _editor(request, admin, call(_russet(request).blueprints.get, _ident(ident)))


@router.post("/{ident}")
def update(request: Request, admin: Signed, form: Form, ident: str) -> Response:
    checked(admin, form)
    russet = _russet(request)
    current = call(russet.blueprints.get, _ident(ident))
    try:
        spec = attempt(_spec, russet, form)
        saved = attempt(russet.blueprints.update, current["id"], spec)
    except Refusal as refused:
        return _editor(request, admin, current, _typed(form), refused.status, flash=refused.flash)
    return done(request, f"/console/blueprints/{saved['id']}", f"Blueprint {saved['name']!r} saved.")


@router.post("/{ident}/delete")
def delete(request: Request, admin: Signed, form: Form, ident: str) -> Response:
    checked(admin, form)
    russet = _russet(request)
    current = call(russet.blueprints.get, _ident(ident))
    try:
        gone = attempt(russet.blueprints.delete, current["id"])
    except Refusal as refused:
        return _editor(request, admin, current, None, refused.status, flash=refused.flash)
    return done(
        request,
        "/console/blueprints",
        f"Blueprint {gone['name']!r} deleted; the next pass removes what it installed.",
    )
