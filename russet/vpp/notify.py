"""Apple's notifications for a location: `POST /vpp/notify/{location}` (§f.10).

A device-front route (not under /api/v1, no API key): Apple authenticates with the secret Russet
registered as `notificationAuthToken` (`Authorization: Bearer <secret>`; only its SHA-256 is
stored). A notification is applied once (its `notificationId` is kept) in one transaction, and
recorded in the ledger as data received from Apple. Any 2xx acknowledges it; a malformed one is
answered 400 and changes nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from russet.apple import bounded_json
from russet.apple.gateway import Call
from russet.mdm.errors import DeviceRequestError
from russet.mdm.http import read_body
from russet.runtime import Russet
from russet.storage.secretbox import SecretBox
from russet.vpp import installs
from russet.vpp.errors import ProtocolError
from russet.vpp.records import Notification, notification
from russet.vpp.store import NotYet, VppStore

log = logging.getLogger("russet.vpp")
MAX_BODY = 1024 * 1024  # a notification holds at most 100 items
PATH = "/vpp/notify/{location}"


def notification_url(public_url: str, name: str) -> str:
    return f"{public_url.rstrip('/')}/vpp/notify/{name}"


def parse_notification(body: bytes) -> Notification:
    """The notification in a request body, checked; ProtocolError for anything else."""
    try:
        decoded = bounded_json.loads(body, max_bytes=MAX_BODY)
    except ValueError as exc:
        raise ProtocolError(f"not JSON ({exc})") from None
    return notification(decoded)


def receive(russet: Russet, name: str, secret: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Check, record and apply one notification; returns the HTTP status and answer."""
    store = VppStore(
        russet.storage.engine, SecretBox.load(russet.settings.data_dir, russet.settings.master_key)
    )
    if not secret or not russet.connections.is_active("vpp", name) or not store.verify_secret(name, secret):
        # 403, not 401: nothing under the device prefixes answers 401 (on /mdm it unenrolls devices).
        return 403, {"detail": "unknown location or wrong notification secret"}
    try:
        note = parse_notification(body)
    except ProtocolError as exc:
        log.warning("Apps and Books %r: malformed notification refused: %s", name, exc)
        return 400, {"detail": f"malformed notification: {exc}"}
    russet.gateway.record(
        Call("vpp", name, "POST /vpp/notify (from Apple)", "Apple's news about licences, users or counts"),
        200,
        None,
        note.data,
    )
    try:
        summary = store.apply_notification(name, note)
    except NotYet as exc:
        log.info("Apps and Books %r: notification about event %s not known yet; Apple will retry", name, exc)
        return 503, {"detail": f"event {exc} is not known yet; deliver the notification again"}
    if summary is None:
        return 200, {"notification": note.notification_id, "duplicate": True}
    if note.notification_type == "ASSET_MANAGEMENT" and summary.get("applied"):
        installs.advance(russet)  # installs waiting for this licence can go on at once
    return 200, {"notification": note.notification_id, **summary}


def vpp_routes(russet: Russet) -> list[Route]:
    async def notify(request: Request) -> Response:
        name = request.path_params["location"]
        scheme, _, secret = request.headers.get("authorization", "").partition(" ")
        try:
            body = await read_body(request, MAX_BODY)
        except DeviceRequestError as exc:
            return JSONResponse({"detail": exc.reason}, status_code=exc.status)
        status, answer = await run_in_threadpool(
            receive, russet, name, secret.strip() if scheme.lower() == "bearer" else "", body
        )
        return JSONResponse(answer, status_code=status)

    return [Route(PATH, notify, methods=["POST"])]
