"""The enrollment URLs: GET /mdm/enroll?token=... (OTA) and POST /mdm/enroll (ADE MachineInfo).

Plain Starlette routes beside /mdm/checkin and /mdm/connect. The ADE body is read with the same
size-capped reader, under a much smaller cap: a MachineInfo with its certificates is a few KB.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from russet.abm.profiles import ADE_ENROLLMENT_PATH
from russet.bodylimit import DeviceRequestError, read_body
from russet.enrollment.serving import EnrollmentRefused, ProfileServer, SoftwareUpdateRequired

log = logging.getLogger("russet.enrollment")

PROFILE_CONTENT_TYPE = "application/x-apple-aspen-config"
MAX_MACHINE_INFO_BYTES = 64 * 1024
# A profile carries a one-time SCEP challenge: no cache may keep or replay it.
_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Disposition": 'attachment; filename="enroll.mobileconfig"',
}


def enrollment_routes(server: ProfileServer, max_body_bytes: int) -> list[Route]:
    """Routes for the device router, answering through `server` (`EnrollmentService.profile_server`,
    which loads the device CA, so a bad RUSSET_ADE_CA_FILE stops the server at start)."""
    limit = min(MAX_MACHINE_INFO_BYTES, max_body_bytes)

    async def fetch_with_token(request: Request) -> Response:
        if request.method == "HEAD":  # Starlette routes HEAD with GET; a probe must not spend a use
            return Response(status_code=405, headers={"Allow": "GET, POST"})
        token = request.query_params.get("token")
        return await _answer(request, "OTA enrollment", server.for_token, token)

    async def fetch_with_machine_info(request: Request) -> Response:
        try:
            body = await read_body(request, limit)
        except DeviceRequestError as exc:
            log.warning("ADE enrollment refused (%d) from %s: %s", exc.status, _peer(request), exc.reason)
            return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
        return await _answer(request, "ADE enrollment", server.for_machine_info, body)

    return [
        Route(ADE_ENROLLMENT_PATH, fetch_with_token, methods=["GET"]),
        Route(ADE_ENROLLMENT_PATH, fetch_with_machine_info, methods=["POST"]),
    ]


async def _answer(request: Request, what: str, make: Callable[[Any], bytes], argument: Any) -> Response:
    try:
        profile = await anyio.to_thread.run_sync(make, argument)
    except SoftwareUpdateRequired as exc:  # Apple's error body: the device reads it as JSON
        log.warning("%s refused (%d) from %s: %s", what, exc.status, _peer(request), exc.reason)
        return JSONResponse(exc.body, status_code=exc.status, headers={"Cache-Control": "no-store"})
    except EnrollmentRefused as exc:
        log.warning("%s refused (%d) from %s: %s", what, exc.status, _peer(request), exc.reason)
        return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
    return Response(profile, media_type=PROFILE_CONTENT_TYPE, headers=_HEADERS)


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
