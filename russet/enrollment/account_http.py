"""Account-driven enrollment's device routes: discovery, the enrollment URLs and the sign-in page.

Plain Starlette routes on the device router (russet/app.py DeviceFront sends /mdm/ and the
well-known path here). Bodies are read with the size-capped reader; answers are never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from russet.bodylimit import DeviceRequestError, read_body
from russet.enrollment.account import (
    CALLBACK_PATH,
    FLOW_SECONDS,
    SIGN_IN_PATH,
    WELL_KNOWN_PATH,
    AccountEnrollment,
    NeedsSignIn,
)
from russet.enrollment.http import PROFILE_CONTENT_TYPE
from russet.enrollment.serving import EnrollmentRefused

log = logging.getLogger("russet.enrollment")

# The device's enrollment request (a signed description of itself) is a few KB; nothing of it is
# kept: a User Enrollment device is not identified by its hardware.
MAX_REQUEST_BYTES = 64 * 1024
FLOW_COOKIE = "russet_account_sign_in"
_NO_STORE = {"Cache-Control": "no-store"}


def account_routes(accounts: AccountEnrollment, max_body_bytes: int) -> list[Route]:
    limit = min(MAX_REQUEST_BYTES, max_body_bytes)
    secure = accounts.public_url.startswith("https://")

    async def discovery(request: Request) -> Response:
        q = request.query_params
        return await _answer(
            request,
            "account-driven discovery",
            lambda: JSONResponse(
                accounts.discover(q.get("user-identifier"), q.get("model-family")), headers=_NO_STORE
            ),
        )

    async def enroll(request: Request) -> Response:
        try:
            await read_body(request, limit)  # bounded, then dropped: nothing of it is trusted or kept
        except DeviceRequestError as exc:
            log.warning(
                "account-driven enrollment refused (%d) from %s: %s", exc.status, _peer(request), exc.reason
            )
            return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
        mode = request.path_params["mode"]
        authorization = request.headers.get("authorization")
        return await _answer(
            request,
            "account-driven enrollment",
            lambda: Response(
                accounts.enroll(mode, authorization),
                media_type=PROFILE_CONTENT_TYPE,
                headers={**_NO_STORE, "Content-Disposition": 'attachment; filename="enroll.mobileconfig"'},
            ),
        )

    async def sign_in(request: Request) -> Response:
        def start() -> Response:
            url, flow = accounts.start_sign_in(request.query_params.get("mode"))
            page = RedirectResponse(url, 303, headers=_NO_STORE)
            # SameSite=Lax: the provider's redirect back is a cross-site navigation.
            page.set_cookie(
                FLOW_COOKIE,
                flow,
                max_age=FLOW_SECONDS,
                path="/mdm/account",
                secure=secure,
                httponly=True,
                samesite="lax",
            )
            return page

        return await _answer(request, "account-driven sign-in", start)

    async def callback(request: Request) -> Response:
        def finish() -> Response:
            params = {k: v for k, v in request.query_params.items() if k in ("code", "state", "error")}
            target = accounts.finish_sign_in(request.cookies.get(FLOW_COOKIE), params)
            page = RedirectResponse(target, 303, headers=_NO_STORE)
            page.delete_cookie(FLOW_COOKIE, path="/mdm/account", secure=secure, httponly=True, samesite="lax")
            return page

        return await _answer(request, "account-driven sign-in", finish)

    return [
        Route(WELL_KNOWN_PATH, discovery, methods=["GET"]),
        Route(SIGN_IN_PATH, sign_in, methods=["GET"]),
        Route(CALLBACK_PATH, callback, methods=["GET"]),
        Route("/mdm/account/{mode:str}", enroll, methods=["POST"]),
    ]


async def _answer(request: Request, what: str, make: Callable[[], Any]) -> Response:
    try:
        response: Response = await anyio.to_thread.run_sync(make)
    except NeedsSignIn as exc:
        # Apple's account-driven protocol: 401 with the Bearer challenge, before any enrollment.
        # The only device 401 Russet sends (check-in and connect never do: devices unenroll).
        log.info("%s: challenge sent to %s (%s)", what, _peer(request), exc.reason)
        return PlainTextResponse(
            exc.reason + "\n", status_code=401, headers={**_NO_STORE, "WWW-Authenticate": exc.challenge}
        )
    except EnrollmentRefused as exc:
        log.warning("%s refused (%d) from %s: %s", what, exc.status, _peer(request), exc.reason)
        return PlainTextResponse(exc.reason + "\n", status_code=exc.status, headers=_NO_STORE)
    return response


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
