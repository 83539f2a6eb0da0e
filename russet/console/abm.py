"""Console pages for Apple Business / School Manager connections (issue #19 item 5): the list
with each token's expiry (amber from 30 days, red from 7), adding a connection (its key pair and
the certificate to upload to ABM/ASM, then the server token file), "Sync now" with a status
page that refreshes itself until the sync is done, and the connection's ADE enrollment profiles:
defining one (Apple's fields as JSON, as the API takes them, the default flag and a blueprint),
choosing the default profile for newly added devices, and assigning serial numbers to one (or
removing their assignment), with Apple's answer counted.

Every call goes to `russet.abm` (AbmService) as `russet/api/abm.py` does. The calls that reach
Apple are coroutines run on the server's event loop, where the gateway keeps its connections, so
those handlers are `async`. A sync started here runs as a task of that loop (the page must not
wait minutes for a full listing); its outcome is kept in this process until the next one, and
its progress is what the service records anyway (phase, devices stored, the connection's lease).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.access.roles import Role
from russet.apple import bounded_json
from russet.console.common import (
    Admin,
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
    expiry_class,
    listed,
    page,
    refusal,
)
from russet.kernel.errors import RussetError
from russet.runtime import Russet
from russet.web.deps import needs
from russet.web.deps import russet_of as _russet

log = logging.getLogger("russet.console")
router = APIRouter(prefix="/console/abm", include_in_schema=False)
REFRESH_SECONDS = 2
MAX_PROFILE_CHARS = 16 * 1024  # Apple's profile fields are a few hundred bytes
MAX_SERIALS = 5000  # a form is at most 64 KiB anyway; the service sends Apple 1000 at a time
PROFILE_EXAMPLE = '{\n  "profile_name": "Staff iPads",\n  "is_supervised": true\n}'


def _url(name: str) -> str:
    return f"/console/abm/{quote(name, safe='')}"


def _syncs(request: Request) -> dict[str, asyncio.Task[dict[str, Any]]]:
    syncs: dict[str, asyncio.Task[dict[str, Any]]] | None = getattr(request.app.state, "abm_syncs", None)
    if syncs is None:
        syncs = request.app.state.abm_syncs = {}
    return syncs


def _list(request: Request, admin: Admin, status: int = 200, *, flash: Flash | None = None) -> HTMLResponse:
    shown = call(_russet(request).abm.list_connections)
    for c in shown:
        c["expiry_class"] = expiry_class(c["access_token_expiry"])
    return page(request, "abm.html", admin, status, flash=flash, connections=shown)


@router.get("")
def connections(request: Request, admin: Signed) -> HTMLResponse:
    return _list(request, admin)


@router.post("", dependencies=[needs(Role.ADMIN)])
def create(request: Request, admin: Signed, form: Form) -> Response:
    """A new connection: its key pair, and the certificate the admin uploads to ABM/ASM."""
    checked(admin, form)
    name = form.get("name", "").strip()
    try:
        attempt(_russet(request).abm.create, name)
    except Refusal as refused:
        return _list(request, admin, refused.status, flash=refused.flash)
    return done(
        request,
        _url(name),
        f"ABM connection {name!r} created: upload its certificate to ABM/ASM, then load the server token.",
    )


def sync_state(request: Request, name: str) -> dict[str, Any]:
    """Where this process's last console sync of `name` is: running, done (the report) or failed."""
    task = _syncs(request).get(name)
    if task is None:
        return {"state": "none"}
    if not task.done():
        return {"state": "running"}
    return task.result()


def _show(
    request: Request,
    admin: Admin,
    name: str,
    status: int = 200,
    *,
    flash: Flash | None = None,
    form: dict[str, str] | None = None,
    outcome: dict[str, Any] | None = None,
) -> HTMLResponse:
    shown = call(_russet(request).abm.show, name)
    listed = call(_russet(request).abm.list_profiles, name)
    shown["expiry_class"] = expiry_class(shown["access_token_expiry"])
    run = sync_state(request, name)
    return page(
        request,
        "abm_connection.html",
        admin,
        status,
        flash=flash,
        c=shown,
        run=run,
        devices=sum(shown["profile_statuses"].values()),
        refresh=REFRESH_SECONDS if run["state"] == "running" or shown["busy_with"] == "sync" else None,
        profiles=listed["profiles"],
        form=form or {"profile": PROFILE_EXAMPLE},
        outcome=outcome,
    )


@router.get("/{name}")
def connection(request: Request, admin: Signed, name: str) -> HTMLResponse:
    return _show(request, admin, name)


@router.post("/{name}/token", dependencies=[needs(Role.ADMIN)])
async def load_token(request: Request, admin: Signed, parts: Upload, name: str) -> Response:
    """The server token file (.p7m) downloaded from ABM/ASM: decrypted, stored sealed, connected."""
    checked_upload(admin, parts)
    data = parts.get("token", b"")
    try:
        if not data:
            raise Refusal(Flash("error", "choose the server token file (.p7m) downloaded from ABM/ASM"), 400)
        try:
            loaded = await _russet(request).abm.load_token(name, data)
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(_show, request, admin, name, refused.status, flash=refused.flash)
    notes = [n for n in (loaded["warning"], loaded["account_error"]) if n]
    return done(
        request,
        _url(name),
        f"Server token loaded; it expires {loaded['access_token_expiry']}."
        + "".join(f" {n}." for n in notes),
    )


async def _sync(russet: Russet, name: str) -> dict[str, Any]:
    """One sync as a task: its report, or why it failed (logged when unexpected)."""
    try:
        report = await russet.abm.sync_now(name)
    except RussetError as exc:
        return {"state": "failed", "error": str(exc)}
    except Exception:
        log.exception("console sync of ABM connection %r failed", name)
        return {"state": "failed", "error": "the sync failed unexpectedly; the server log says why"}
    return {"state": "done", "report": report}


@router.post("/{name}/sync", dependencies=[needs(Role.ADMIN)])
async def sync(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Start a sync and go to the connection's page, which shows its progress."""
    checked(admin, form)
    russet = _russet(request)
    try:
        await asyncio.to_thread(attempt, russet.abm.client_for, name)  # unknown, no token, expired
    except Refusal as refused:
        return await asyncio.to_thread(_show, request, admin, name, refused.status, flash=refused.flash)
    syncs = _syncs(request)
    running = syncs.get(name)
    if running is not None and not running.done():
        return done(request, _url(name), "A sync of this connection is already running.")
    syncs[name] = asyncio.create_task(_sync(russet, name))
    return done(request, _url(name), "Sync started.")


def _profile(text: str) -> Any:
    """The profile's JSON object as typed (bounded in size and nesting); the service checks fields."""
    try:
        return bounded_json.loads(text, max_bytes=MAX_PROFILE_CHARS)
    except ValueError as exc:  # not JSON, or beyond the size and nesting bounds
        raise Refusal(Flash("error", f"the profile is not JSON: {exc}"), 400) from None


@router.post("/{name}/profiles", dependencies=[needs(Role.ADMIN)])
async def define_profile(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Define an ADE enrollment profile at Apple (checked first), as POST /api/v1/abm/{name}/profiles."""
    checked(admin, form)
    blueprint = form.get("blueprint", "").strip() or None
    try:
        spec = _profile(form.get("profile", ""))
        try:
            made = await _russet(request).abm.define_profile(
                name,
                spec,
                default=form.get("default") == "on",
                blueprint=blueprint,
                sign_in=form.get("sign_in") == "on",
            )
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(
            _show, request, admin, name, refused.status, flash=refused.flash, form=dict(form)
        )
    return done(
        request, _url(name), f"Profile {made['profile']['profile_name']!r} defined: {made['profile_uuid']}."
    )


@router.post("/{name}/assign", dependencies=[needs(Role.ADMIN)])
async def assign(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Assign the serials to a profile (or, with action=remove, remove their assignment), as the
    API's POST .../profiles/{uuid}/devices and DELETE .../profiles/devices; Apple's answer shown."""
    checked(admin, form)
    abm = _russet(request).abm
    remove = form.get("action") == "remove"
    try:
        serials = listed(form.get("serials", ""), "serial numbers", MAX_SERIALS)
        try:
            if remove:
                outcome = await abm.remove_profile(name, serials)
            else:
                outcome = await abm.assign_profile(name, form.get("profile_uuid", ""), serials)
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(
            _show, request, admin, name, refused.status, flash=refused.flash, form=dict(form)
        )
    counts = ", ".join(f"{n} {result}" for result, n in sorted(outcome["counts"].items()))
    verb = "Removal" if remove else "Assignment"
    flash = Flash(
        "error" if outcome["error"] else "ok",
        f"{verb}: {counts}." + (f" {outcome['error']}." if outcome["error"] else ""),
    )
    return await asyncio.to_thread(_show, request, admin, name, flash=flash, outcome=outcome)


@router.post("/{name}/default-profile", dependencies=[needs(Role.ADMIN)])
def default_profile(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """The profile the next syncs give newly added devices (or none), as PUT .../default-profile."""
    checked(admin, form)
    chosen = form.get("profile_uuid", "") or None
    try:
        attempt(_russet(request).abm.set_default_profile, name, chosen)
    except Refusal as refused:
        return _show(request, admin, name, refused.status, flash=refused.flash)
    return done(
        request,
        _url(name),
        f"Newly added devices get profile {chosen}." if chosen else "Newly added devices get no profile.",
    )
