"""Console pages for Apps and Books (issue #19 item 5): the locations with their content token's
expiry (amber from 30 days, red from 7), adding one by uploading its content token (.vpptoken)
and renewing that token, a location's assets with their licence counts and its people, "Sync
now", registering a person, and an asset's licences (who holds one, in which state) with a form
that assigns or takes back licences for serial numbers and people.

Every call goes to `russet.vpp` (VppService) as `russet/api/vpp.py` does. The calls that reach
Apple are coroutines run on the server's event loop, where the gateway keeps its connections, so
those handlers are `async`; the reads for the pages run in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from russet.access.roles import Role
from russet.console.common import (
    Admin,
    ConsoleError,
    Flash,
    Form,
    Refusal,
    Signed,
    Upload,
    call,
    checked,
    checked_upload,
    done,
    expiry_class,
    listed,
    page,
    refusal,
    text_part,
)
from russet.kernel.errors import RussetError
from russet.vpp.errors import TakeoverNeeded
from russet.web.deps import needs
from russet.web.deps import russet_of as _russet

router = APIRouter(prefix="/console/vpp", include_in_schema=False)
MAX_ADAM_ID_CHARS = 64
MAX_SUBJECTS = 5000  # what one form names; the service refuses more than it accepts per request
TAKE_OVER = "Take the location over"  # the checkbox that confirms a take-over from another MDM


def _url(name: str) -> str:
    return f"/console/vpp/{quote(name, safe='')}"


def _list(
    request: Request, admin: Admin, status: int = 200, *, flash: Flash | None = None, name: str = ""
) -> HTMLResponse:
    shown = call(_russet(request).vpp.list_locations)
    for location in shown:
        location["expiry_class"] = expiry_class(location["token_expires_at"])
    return page(request, "vpp.html", admin, status, flash=flash, locations=shown, name=name)


@router.get("")
def locations(request: Request, admin: Signed) -> HTMLResponse:
    return _list(request, admin)


def _show(
    request: Request, admin: Admin, name: str, status: int = 200, *, flash: Flash | None = None
) -> HTMLResponse:
    vpp = _russet(request).vpp
    shown = call(vpp.show, name)
    shown["expiry_class"] = expiry_class(shown["token_expires_at"])
    return page(
        request,
        "vpp_location.html",
        admin,
        status,
        flash=flash,
        loc=shown,
        assets=call(vpp.assets, name)["assets"],
        users=call(vpp.list_users, name)["users"],
    )


@router.get("/{name}")
def location(request: Request, admin: Signed, name: str) -> HTMLResponse:
    return _show(request, admin, name)


def _licences(
    request: Request,
    admin: Admin,
    name: str,
    adam_id: str,
    status: int = 200,
    *,
    flash: Flash | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    if len(adam_id) > MAX_ADAM_ID_CHARS:
        raise ConsoleError("adam_id is an App Store id", 400)
    vpp = _russet(request).vpp
    held = call(vpp.list_licences, name, adam_id=adam_id or None)["licences"]
    asset = next((a for a in call(vpp.assets, name)["assets"] if a["adam_id"] == adam_id), None)
    return page(
        request,
        "vpp_licences.html",
        admin,
        status,
        flash=flash,
        name=name,
        adam_id=adam_id,
        asset=asset,
        licences=held,
        form=form or {},
    )


@router.get("/{name}/licences")
def licences(request: Request, admin: Signed, name: str, adam_id: str = "") -> HTMLResponse:
    """The licences of one asset (or of every asset): who holds each and in which state."""
    return _licences(request, admin, name, adam_id)


@router.post("/{name}/licences", dependencies=[needs(Role.ADMIN)])
async def change_licences(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Assign an asset's licences to devices and people, or (action=unassign) take them back,
    as POST and DELETE /api/v1/vpp/{name}/licences; Apple answers later, by notification."""
    checked(admin, form)
    adam_id = form.get("adam_id", "").strip()
    vpp = _russet(request).vpp
    take_back = form.get("action") == "unassign"
    try:
        serials = listed(form.get("serials", ""), "serial numbers", MAX_SUBJECTS)
        people = listed(form.get("users", ""), "people", MAX_SUBJECTS)
        change = vpp.unassign if take_back else vpp.assign
        try:
            sent = await change(
                name, adam_id, serials=serials, users=people, pricing=form.get("pricing") or None
            )
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(
            _licences, request, admin, name, adam_id, refused.status, flash=refused.flash, form=dict(form)
        )
    verb = "Taking back" if take_back else "Assigning"
    events = len(sent["events"])
    message = f"{verb} {sent['requested']} licences: sent to Apple in {events} events; Apple answers later."
    if sent.get("skipped"):
        message += f" {len(sent['skipped'])} skipped (already so)."
    if sent["error"]:
        message += f" {sent['error']}."
    return done(request, f"{_url(name)}/licences?adam_id={quote(adam_id, safe='')}", message)


@router.post("/{name}/users", dependencies=[needs(Role.ADMIN)])
async def create_user(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Register a person for user-based licences, as POST /api/v1/vpp/{name}/users."""
    checked(admin, form)
    email = form.get("email", "").strip() or None
    managed = form.get("managed_apple_id", "").strip() or None
    try:
        try:
            made = await _russet(request).vpp.create_user(name, email=email, managed_apple_id=managed)
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(_show, request, admin, name, refused.status, flash=refused.flash)
    return done(
        request,
        _url(name),
        f"Registering {email or managed}: client user id {made['client_user_id']}; Apple answers later.",
    )


async def _add(request: Request, name: str, parts: dict[str, bytes]) -> dict[str, Any]:
    """Load the content token for `name` (new or renewed), or raise the refusal to show."""
    data = parts.get("token", b"")
    if not data:
        raise Refusal(
            Flash("error", "choose the content token file (.vpptoken) downloaded from ABM/ASM"), 400
        )
    try:
        return await _russet(request).vpp.add(name, data, take_over=parts.get("take_over") == b"on")
    except TakeoverNeeded as exc:
        refused = refusal(exc)
        text = f"{refused.flash.text}. On this form: tick {TAKE_OVER!r} and load the token again"
        raise Refusal(Flash("error", text), refused.status) from None
    except RussetError as exc:
        raise refusal(exc) from None


def _added(request: Request, added: dict[str, Any]) -> Response:
    notes = [n for n in (added["warning"], added["sync_error"]) if n]
    if added["took_over_from"]:
        notes.append(f"taken over from {added['took_over_from'].get('name') or 'another MDM'}")
    return done(
        request,
        _url(added["name"]),
        f"Content token loaded for {added['location_name'] or added['name']}; it expires "
        f"{added['token_expires_at']}." + "".join(f" {n}." for n in notes),
    )


@router.post("", dependencies=[needs(Role.ADMIN)])
async def add(request: Request, admin: Signed, parts: Upload) -> Response:
    """A new location: its content token, stored sealed; Russet becomes its MDM and reads its assets."""
    checked_upload(admin, parts)
    name = text_part(parts, "name").strip()
    try:
        added = await _add(request, name, parts)
    except Refusal as refused:
        return await asyncio.to_thread(_list, request, admin, refused.status, flash=refused.flash, name=name)
    return _added(request, added)


@router.post("/{name}/token", dependencies=[needs(Role.ADMIN)])
async def renew(request: Request, admin: Signed, parts: Upload, name: str) -> Response:
    """A location's new content token (the yearly renewal), through the same service call."""
    checked_upload(admin, parts)
    try:
        await asyncio.to_thread(call, _russet(request).vpp.show, name)  # an unknown name is a 404 page
        added = await _add(request, name, parts)
    except Refusal as refused:
        return await asyncio.to_thread(_show, request, admin, name, refused.status, flash=refused.flash)
    return _added(request, added)


@router.post("/{name}/sync", dependencies=[needs(Role.ADMIN)])
async def sync(request: Request, admin: Signed, form: Form, name: str) -> Response:
    """Read the location's assets from Apple now (a few pages; the page waits for it)."""
    checked(admin, form)
    try:
        try:
            report = await _russet(request).vpp.sync_now(name)
        except RussetError as exc:
            raise refusal(exc) from None
    except Refusal as refused:
        return await asyncio.to_thread(_show, request, admin, name, refused.status, flash=refused.flash)
    message = (
        f"Synced: {report['assets']} assets in {report['pages']} pages "
        f"({report['added']} added, {report['removed']} removed) in {report['seconds']} s."
    )
    return done(request, _url(name), message + (f" {report['warning']}." if report["warning"] else ""))
