"""HTTP endpoints devices talk to: PUT /mdm/checkin and PUT /mdm/connect.

Kept as plain Starlette routes (no request models, no OpenAPI): this is the hot path, and
its input is Apple's plist protocol, not JSON. The body is read once, with a size cap, and
the same bytes serve signature verification, parsing and the stored result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import anyio
import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from russet.accesslog import DEVICE, Scope, note
from russet.bodylimit import read_body
from russet.mdm.channels import resolve_channel
from russet.mdm.declarative import JsonBody
from russet.mdm.errors import DeviceRequestError, UnrecognizedDevice
from russet.mdm.identity import Identity, IdentityVerifier
from russet.mdm.messages import parse_plist
from russet.mdm.service import MdmService

log = logging.getLogger("russet.mdm")

CHECKIN_CONTENT_TYPE = "application/x-apple-aspen-mdm-checkin"


# Device work is CPU-bound Python (signature checks, plists) plus short database calls: more
# threads than this only contend for the GIL and the database pool (sized to match).
DEVICE_THREADS = 16


def device_routes(
    mdm: MdmService,
    identities: IdentityVerifier,
    max_body_bytes: int,
    *,
    inline: bool = False,
    quiet_inline: bool = False,
) -> list[Route]:
    """/mdm/checkin and /mdm/connect: each request's identity is checked by `identities`, then its
    message handled by `mdm`; bodies over `max_body_bytes` are refused (413) while reading.

    `inline` handles each request on the event loop instead of a worker thread: right when the
    database never makes a request wait on the network or a disk flush (SQLite in WAL, commits
    without fsync), where the thread hop and the GIL hand-offs cost more than the work itself
    (measured, bench/README "Device requests on the event loop": SQLite 389 -> 579 round trips/s
    and 2.69 -> 1.70 ms of server CPU each, two workers). On PostgreSQL each commit waits for its
    WAL flush, which threads overlap: inline there answered 18-35% fewer requests (same table).

    `quiet_inline` (with `inline` off) still answers on the event loop the commonest request, an
    Idle connect that changes nothing (`MdmService.quiet_idle`): its identity check and plist are
    CPU work the GIL would not overlap anyway, and its one read is a round trip to a database on
    this host, cheaper than the thread hop it saves (measured here: a hop costs 140-180 us of CPU).
    Anything else goes to a worker thread as before, without checking the identity twice."""
    limit = max_body_bytes
    limiter: list[anyio.CapacityLimiter] = []  # made on first use: it needs the running loop

    def handle(kind: str, headers: Mapping[str, str], body: bytes, scope: Scope) -> bytes | None:
        identity = identities.identify(headers, body, unique=kind == "checkin")
        return answer(kind, identity, parse_plist(body), body, scope)

    def answer(kind: str, identity: Identity, msg: dict[str, Any], body: bytes, scope: Scope) -> bytes | None:
        if kind == "checkin":
            reply = mdm.check_in(identity, msg, body)
        else:
            reply = mdm.report(identity, msg, body)
        answered(msg, scope)
        return reply

    def answered(msg: dict[str, Any], scope: Scope) -> None:
        # The service accepted the identity for this device, so the log may name it.
        note(scope, DEVICE, lambda: resolve_channel(msg).device_id)

    async def in_thread(call: Callable[..., bytes | None], *args: Any) -> bytes | None:
        if not limiter:
            limiter.append(anyio.CapacityLimiter(DEVICE_THREADS))
        return await anyio.to_thread.run_sync(call, *args, limiter=limiter[0])

    def endpoint(kind: str) -> Callable[[Request], object]:
        async def serve(request: Request) -> Response:
            try:
                body = await read_body(request, limit)
                # A device whose CheckInURL equals its ServerURL sends check-ins here too.
                effective = kind
                if request.headers.get("content-type", "").startswith(CHECKIN_CONTENT_TYPE):
                    effective = "checkin"
                if inline:
                    reply = handle(effective, request.headers, body, request.scope)
                elif quiet_inline and effective == "connect":  # identifying a connect reads nothing
                    identity = identities.identify(request.headers, body, unique=False)
                    msg = parse_plist(body)
                    if mdm.quiet_idle(identity, msg):
                        answered(msg, request.scope)
                        reply = None
                    else:
                        reply = await in_thread(answer, effective, identity, msg, body, request.scope)
                else:
                    reply = await in_thread(handle, effective, request.headers, body, request.scope)
            except DeviceRequestError as exc:
                log.warning("%s refused (%d) from %s: %s", kind, exc.status, _peer(request), exc.reason)
                if isinstance(exc, UnrecognizedDevice):  # the one answer that unenrolls (on purpose)
                    return JSONResponse(exc.json_body(), status_code=exc.status)
                return PlainTextResponse(exc.reason + "\n", status_code=exc.status)
            if reply is None:
                return Response(status_code=200)  # zero bytes: "no more commands" (§b.1)
            if isinstance(reply, JsonBody):  # DeclarativeManagement answers in JSON (§a.4.7)
                return Response(reply, media_type="application/json")
            return Response(reply, media_type="application/xml; charset=UTF-8")

        return serve

    return [
        Route("/mdm/checkin", endpoint("checkin"), methods=["PUT"]),
        Route("/mdm/connect", endpoint("connect"), methods=["PUT"]),
    ]


def _peer(request: Request) -> str:
    return request.client.host if request.client else "?"
