"""The routes of sign-in during Setup Assistant (russet/enrollment/signin.py holds the flow):

- GET  /mdm/enroll/signin           the device's web view opens it with x-apple-aspen-deviceinfo:
                                    the sign-in page (password form, single sign-on button)
- POST /mdm/enroll/signin           the password form: the enrollment profile, or the page again
- GET  /mdm/enroll/signin/sso       to the OpenID Connect provider
- GET  /mdm/enroll/signin/callback  back from it: the enrollment profile, or the page saying why

The pending sign-in lives in a sealed cookie on /mdm/enroll/signin, HttpOnly, SameSite=Lax (the
provider's redirect back is a cross-site navigation), Secure when Russet is served over https.
Every refusal is an HTML page with the reason and a 4xx (never 401: a device unenrolls on it).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from russet.bodylimit import DeviceRequestError, read_body
from russet.enrollment.serving import EnrollmentRefused, SoftwareUpdateRequired
from russet.enrollment.signin import (
    CALLBACK_PATH,
    DEVICE_INFO_HEADER,
    PENDING_SECONDS,
    SIGNIN_PATH,
    SSO_PATH,
    PendingSignIn,
    SignInServer,
)

log = logging.getLogger("russet.enrollment")

PROFILE_CONTENT_TYPE = "application/x-apple-aspen-config"
COOKIE = "russet_enroll_signin"
MAX_FORM_BYTES = 8 * 1024  # an email and a password
_NO_STORE = {"Cache-Control": "no-store"}


def signin_routes(server: SignInServer, public_url: str) -> list[Route]:
    """Routes for the device router; `public_url` decides whether the cookie is Secure."""
    secure = public_url.startswith("https://")

    def with_cookie(response: Response, pending: PendingSignIn | None) -> Response:
        if pending is None:
            response.delete_cookie(COOKIE, path=SIGNIN_PATH, secure=secure, httponly=True, samesite="lax")
        else:
            response.set_cookie(
                COOKIE,
                server.seal(pending),
                max_age=PENDING_SECONDS,
                path=SIGNIN_PATH,
                secure=secure,
                httponly=True,
                samesite="lax",
            )
        return response

    def refused(request: Request, exc: EnrollmentRefused, pending: PendingSignIn | None) -> Response:
        log.warning("ADE sign-in refused (%d) from %s: %s", exc.status, _peer(request), exc.reason)
        if pending is None:
            return with_cookie(_page(exc.reason, None, False, exc.status), None)
        pending = PendingSignIn(pending.device, pending.csrf, pending.expires)  # a used flow is spent
        return with_cookie(_page(exc.reason, pending.csrf, server.sso_enabled(), exc.status), pending)

    async def start(request: Request) -> Response:
        if request.method == "HEAD":
            return Response(status_code=405, headers={"Allow": "GET, POST"})
        try:
            pending = await anyio.to_thread.run_sync(server.begin, request.headers.get(DEVICE_INFO_HEADER))
        except SoftwareUpdateRequired as exc:  # Apple's error body: Setup Assistant reads it as JSON
            log.warning("ADE sign-in refused (%d) from %s: %s", exc.status, _peer(request), exc.reason)
            return JSONResponse(exc.body, status_code=exc.status, headers=_NO_STORE)
        except EnrollmentRefused as exc:
            return refused(request, exc, None)
        return with_cookie(_page(None, pending.csrf, server.sso_enabled(), 200), pending)

    async def password(request: Request) -> Response:
        try:
            body = await read_body(request, MAX_FORM_BYTES)
        except DeviceRequestError as exc:
            return refused(request, EnrollmentRefused(exc.status, exc.reason), None)
        try:
            pending = server.open(request.cookies.get(COOKIE))
        except EnrollmentRefused as exc:
            return refused(request, exc, None)
        form = _form(body)
        client = request.client.host if request.client else None
        return await _answer(
            request,
            lambda: server.with_password(
                pending, form.get("csrf"), form.get("email", ""), form.get("password", ""), client
            ),
            lambda exc: refused(request, exc, pending),
            lambda response: with_cookie(response, None),
        )

    async def sso(request: Request) -> Response:
        if request.method == "HEAD":  # Starlette routes HEAD with GET: a probe must not start a flow
            return Response(status_code=405, headers={"Allow": "GET"})
        try:
            pending = server.open(request.cookies.get(COOKIE))
            url, flowing = await anyio.to_thread.run_sync(server.sso_start, pending)
        except EnrollmentRefused as exc:
            return refused(request, exc, None)
        return with_cookie(RedirectResponse(url, 303, headers=_NO_STORE), flowing)

    async def callback(request: Request) -> Response:
        if request.method == "HEAD":  # nor spend the code, or hand out a profile to a probe
            return Response(status_code=405, headers={"Allow": "GET"})
        try:
            pending = server.open(request.cookies.get(COOKIE))
        except EnrollmentRefused as exc:
            return refused(request, exc, None)
        params = {k: v for k, v in request.query_params.items() if k in ("code", "state", "error")}
        return await _answer(
            request,
            lambda: server.sso_finish(pending, params),
            lambda exc: refused(request, exc, pending),
            lambda response: with_cookie(response, None),
        )

    return [
        Route(SIGNIN_PATH, start, methods=["GET"]),
        Route(SIGNIN_PATH, password, methods=["POST"]),
        Route(SSO_PATH, sso, methods=["GET"]),
        Route(CALLBACK_PATH, callback, methods=["GET"]),
    ]


async def _answer(
    request: Request,
    make: Callable[[], bytes],
    on_refused: Callable[[EnrollmentRefused], Response],
    done: Callable[[Response], Response],
) -> Response:
    try:
        profile = await anyio.to_thread.run_sync(make)
    except EnrollmentRefused as exc:
        return on_refused(exc)
    headers = {**_NO_STORE, "Content-Disposition": 'attachment; filename="enroll.mobileconfig"'}
    return done(Response(profile, media_type=PROFILE_CONTENT_TYPE, headers=headers))


def _form(body: bytes) -> dict[str, str]:
    try:
        fields: dict[str, Any] = parse_qs(body.decode(), max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in fields.items() if v}


def _page(error: str | None, csrf: str | None, sso: bool, status: int) -> HTMLResponse:
    """The sign-in page: the reason of a refusal, the password form and the sign-on button while a
    sign-in is under way, or only the reason when it must start again from Setup Assistant."""
    parts = ["<h1>Sign in to enroll this device</h1>"]
    if error:
        parts.append(f'<p class="error" role="alert">{html.escape(error)}</p>')
    if csrf is not None:
        if sso:
            parts.append(f'<p><a id="sso" href="{SSO_PATH}">Sign in with your organisation</a></p>')
        parts.append(
            f'<form method="post" action="{SIGNIN_PATH}">'
            f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">'
            '<label>Email <input name="email" type="email" autocomplete="username" required></label>'
            '<label>Password <input name="password" type="password" autocomplete="current-password" '
            "required></label>"
            '<button type="submit">Sign in</button></form>'
        )
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Sign in</title><style>body{font-family:-apple-system,sans-serif;max-width:28em;"
        "margin:2em auto;padding:0 1em}label{display:block;margin:.8em 0}input{width:100%;"
        "font-size:1.1em}.error{color:#a00}button{font-size:1.1em}</style></head><body>"
        + "".join(parts)
        + "</body></html>"
    )
    return HTMLResponse(page, status_code=status, headers=_NO_STORE)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
