"""What every console page shares: templates, the signed-in admin, forms (CSRF, size, multipart),
flash messages, and the one place a domain error becomes what the admin sees.

A page that acts posts a form; the handler calls the same service as the API. On success it
redirects with a flash message (kept for one page in a sealed, short-lived cookie); on a domain
error (`RussetError`) it renders the form again with what was typed, the error as a flash
message and the API's status for that error (`russet.web.errors.status_for`): `refusal` below
is the only place that mapping is made for forms.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs, quote

import jinja2
from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from russet.access.roles import Role
from russet.console import session as sessions
from russet.kernel.errors import RussetError
from russet.storage.secretbox import SecretBox, SecretError
from russet.web import multipart
from russet.web.deps import audit_note, check_params, role_of
from russet.web.deps import refusal as refusal_text
from russet.web.deps import russet_of as _russet
from russet.web.errors import status_for

PAGE_SIZE = 50
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 1024 * 1024 + 64 * 1024  # bodylimit's console upload paths allow as much
HERE = Path(__file__).parent
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
FLASH_COOKIE = "russet_flash"
FLASH_PURPOSE = "console-flash"
FLASH_SECONDS = 120
MAX_FLASH_CHARS = 2000
AMBER_DAYS = 30  # an Apple certificate or token is shaded amber from 30 days before it expires,
RED_DAYS = 7  # and red from 7 (issue #19 item 5), as the expiry webhooks warn

templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every {{ }} is HTML-escaped; nothing in the templates is marked safe
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["path"] = lambda value: quote(str(value), safe="")
templates.filters["pretty"] = lambda value: (
    value if isinstance(value, str) else json.dumps(value, indent=2, sort_keys=True, default=str)
)


class NeedsLogin(Exception):
    """No live session: the browser is sent to the login form."""


class ConsoleError(Exception):
    """Shown to the admin as an error page with this status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Admin:
    name: str
    session: sessions.Session
    role: Role = Role.ADMIN
    actor: str = ""

    def may(self, role: str) -> bool:
        """For templates: whether this person's role allows what needs `role` (admin, operator...)."""
        return self.role.allows(Role.parse(role))


@dataclass(frozen=True)
class Flash:
    """One message shown at the top of the next page: `kind` is "ok" or "error"."""

    kind: str
    text: str


class Fields(dict[str, str]):
    """A form's fields, the first value of each name; `lists` keeps every value (checkboxes)."""

    def __init__(self, lists: dict[str, list[str]]) -> None:
        super().__init__({k: v[0] for k, v in lists.items() if v})
        self.lists = lists

    def getlist(self, name: str) -> list[str]:
        return self.lists.get(name, [])


def box_of(request: Request) -> SecretBox:
    box: SecretBox | None = getattr(request.app.state, "console_box", None)
    if box is None:  # the same master key that seals every other secret, under its own purpose label
        settings = _russet(request).settings
        box = request.app.state.console_box = SecretBox.load(settings.data_dir, settings.master_key)
    return box


def public_url(request: Request) -> str:
    return _russet(request).settings.public_url


def _admin(request: Request) -> Admin:
    """The signed-in person, whose role allows this page or action (`russet.web.deps.role_of`:
    the route's `needs`, else auditor for pages and admin for actions); 403 otherwise."""
    session = sessions.load(box_of(request), request)
    if session is None or not session.signed_in:
        raise NeedsLogin
    access = _russet(request).access
    if session.user_id is not None:
        principal = access.user_principal(session.user_id)
    else:
        principal = access.principal_of_hash(session.key_hash or "")
    if principal is None:  # key revoked or user removed since login
        raise NeedsLogin
    audit_note(request.scope, actor=principal.actor, surface="console")
    route = request.scope.get("route")
    needed = role_of(route) if isinstance(route, APIRoute) else Role.ADMIN
    if not principal.role.allows(needed):
        raise ConsoleError(refusal_text(principal, needed, "this page or action"), 403)
    try:  # the API's checks of query and path values (NUL, length) before any reaches the database
        check_params(request)
    except HTTPException as exc:
        raise ConsoleError(str(exc.detail), exc.status_code) from None
    return Admin(principal.name, session, principal.role, principal.actor)


def _fields(body: bytes) -> Fields:
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise ConsoleError("the form is not UTF-8") from None
    lists = parse_qs(text, keep_blank_values=True, strict_parsing=False)
    if any("\x00" in k or any("\x00" in v for v in vs) for k, vs in lists.items()):
        raise ConsoleError("the form holds a NUL character")
    return Fields(lists)


async def _form(request: Request) -> Fields:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ConsoleError("the form is too large", 413)
    return _fields(body)


async def _upload(request: Request) -> dict[str, bytes]:
    """A multipart form's parts by name (a file input's part is its content), or a plain form's
    fields encoded, so a form without a file still works."""
    body = await request.body()
    if len(body) > MAX_UPLOAD_BYTES:
        raise ConsoleError("the form is too large", 413)
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        return {k: v.encode() for k, v in _fields(body).items()}
    try:
        return multipart.parts(body, content_type)
    except RussetError as exc:
        raise ConsoleError(str(exc), status_for(exc)) from None


def listed(text: str, what: str, most: int) -> list[str]:
    """Identifiers typed or pasted into a form (serial numbers, client user ids): separated by
    spaces, commas, semicolons or lines; more than `most` is a 400 naming `what`."""
    found = [s for s in re.split(r"[\s,;]+", text) if s]
    if len(found) > most:
        raise Refusal(Flash("error", f"name at most {most} {what} at a time"), 400)
    return found


def text_part(parts: dict[str, bytes], name: str) -> str:
    """A text field of a multipart form (refused when not UTF-8 or holding NUL)."""
    try:
        value = parts.get(name, b"").decode()
    except UnicodeDecodeError:
        raise ConsoleError(f"the form's {name} is not UTF-8") from None
    if "\x00" in value:
        raise ConsoleError(f"the form's {name} holds a NUL character")
    return value


def checked(admin: Admin, form: dict[str, str]) -> None:
    if not admin.session.csrf_ok(form.get("csrf")):
        raise ConsoleError("the form's CSRF token is missing or stale; reload the page and try again", 403)


def checked_upload(admin: Admin, parts: dict[str, bytes]) -> None:
    checked(admin, {"csrf": parts.get("csrf", b"").decode("utf-8", "replace")})


Signed = Annotated[Admin, Depends(_admin)]
Form = Annotated[Fields, Depends(_form)]
Upload = Annotated[dict[str, bytes], Depends(_upload)]


def render(
    name: str, admin: Admin | None, status: int = 200, /, *, flashes: tuple[Flash, ...] = (), **context: Any
) -> HTMLResponse:
    html = templates.get_template(name).render(
        admin=admin, csrf=admin.session.csrf if admin else "", flashes=flashes, **context
    )
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def page(
    request: Request,
    name: str,
    admin: Admin,
    status: int = 200,
    /,
    *,
    flash: Flash | None = None,
    **context: Any,
) -> HTMLResponse:
    """`render` with the flash message left by the previous action (then forgotten) and `flash`."""
    carried = _read_flash(request)
    shown = tuple(f for f in (carried, flash) if f is not None)
    response = render(name, admin, status, flashes=shown, **context)
    if carried is not None:
        response.delete_cookie(FLASH_COOKIE, path="/console", httponly=True, samesite="strict")
    return response


def done(request: Request, target: str, message: str) -> RedirectResponse:
    """After a successful action: go to `target`, which shows `message` once."""
    response = RedirectResponse(target, 303)
    sealed = box_of(request).seal(
        json.dumps({"k": "ok", "t": message[:MAX_FLASH_CHARS]}).encode(), FLASH_PURPOSE
    )
    response.set_cookie(
        FLASH_COOKIE,
        base64.urlsafe_b64encode(sealed).decode(),
        max_age=FLASH_SECONDS,
        path="/console",
        secure=sessions.secure(request, public_url(request)),
        httponly=True,
        samesite="strict",
    )
    return response


def _read_flash(request: Request) -> Flash | None:
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return None
    try:
        data = json.loads(box_of(request).open(base64.urlsafe_b64decode(raw.encode()), FLASH_PURPOSE))
        return Flash(str(data["k"]), str(data["t"])[:MAX_FLASH_CHARS])
    except (SecretError, binascii.Error, ValueError, KeyError, TypeError):
        return None


class Refusal(Exception):
    """An action's domain error, as the admin sees it: the message and the API's status."""

    def __init__(self, flash: Flash, status: int) -> None:
        super().__init__(flash.text)
        self.flash = flash
        self.status = status


T = TypeVar("T")


def refusal(exc: RussetError) -> Refusal:
    """The one mapping of a domain error to a form's answer: its words, the API's status."""
    return Refusal(Flash("error", str(exc)), status_for(exc))


def attempt(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run an action; its domain error becomes a `Refusal` the handler shows on the form."""
    try:
        return fn(*args, **kwargs)
    except RussetError as exc:
        raise refusal(exc) from None


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A read for a page, with its error turned into the console's error page (the API's status)."""
    try:
        return fn(*args, **kwargs)
    except RussetError as exc:
        raise ConsoleError(str(exc), status_for(exc)) from None


def expiry_class(expiry: str | None, now: datetime | None = None) -> str:
    """The CSS class for a certificate or token expiring at `expiry` (ISO): red under 7 days
    (and once expired), amber under 30, so an admin sees what to renew before devices notice."""
    if not expiry:
        return ""
    left = datetime.fromisoformat(expiry).astimezone(UTC) - (now or datetime.now(UTC))
    if left.days < RED_DAYS:
        return "expiry-red"
    return "expiry-amber" if left.days < AMBER_DAYS else ""
