"""Apple's notifications for a location: `POST /vpp/notify/{location}` (§f.10), the device-facing
adapter of `VppService.receive_notification`.

A device-front route (not under /api/v1, no API key): Apple authenticates with the secret Russet
registered as `notificationAuthToken` (`Authorization: Bearer <secret>`; only its SHA-256 is
stored). A notification is applied once (its `notificationId` is kept) in one transaction, and
recorded in the ledger as data received from Apple. Any 2xx acknowledges it; a malformed one is
answered 400 and changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from russet.bodylimit import DeviceRequestError, read_body
from russet.kernel.errors import Invalid, Refused, RussetError, Unavailable
from russet.vpp.records import MAX_NOTIFICATION_BYTES as MAX_BODY

if TYPE_CHECKING:  # only the type: the runtime hands the service in
    from russet.vpp.service import VppService

log = logging.getLogger("russet.vpp")
PATH = "/vpp/notify/{location}"


# What each refusal of the service answers Apple (never 401: nothing under a device prefix does).
STATUSES: tuple[tuple[type[RussetError], int], ...] = ((Refused, 403), (Invalid, 400), (Unavailable, 503))


def receive(vpp: VppService, name: str, secret: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """One notification through the service; returns the HTTP status and answer."""
    try:
        return 200, vpp.receive_notification(name, secret, body)
    except RussetError as exc:
        for kind, status in STATUSES:
            if isinstance(exc, kind):
                return status, {"detail": str(exc)}
        raise


def vpp_routes(vpp: VppService) -> list[Route]:
    async def notify(request: Request) -> Response:
        name = request.path_params["location"]
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        try:
            body = await read_body(request, MAX_BODY)
        except DeviceRequestError as exc:
            return JSONResponse({"detail": exc.reason}, status_code=exc.status)
        status, answer = await run_in_threadpool(
            receive, vpp, name, secret.strip() if scheme.lower() == "bearer" else "", body
        )
        return JSONResponse(answer, status_code=status)

    return [Route(PATH, notify, methods=["POST"])]
