"""Request bodies read with a size limit, refused (413) as soon as they pass it.

Without this, the admin API and the console read any body whole before a route looks at it: a
300 MB unauthenticated POST costs 600 MB before the 413 or 422. `read_limited` is the one reader
that stops at the limit, whether the client declared a Content-Length or streams a chunked body;
the device routes read with `read_body` (with their own limits) and `BodyLimit` puts it in front
of the FastAPI app, with a limit per path prefix.

`DeviceRequestError` is the base of the device endpoints' refusals (MDM, SCEP, enrollment, Apps
and Books notifications), each with the HTTP status Apple's protocol calls for: here, below every
device adapter, so that none imports another's module for the bounded reader or its errors
(`russet/mdm/errors.py` adds the MDM protocol's own).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

KIB = 1024
MIB = 1024 * KIB

# Path prefix -> largest body accepted, first match wins (see README, "Request size limits").
# The API takes JSON: the largest is an ABM server token (.p7m, a few KB) or an Apps and Books
# token (.vpptoken, about 1 KB); 1 MiB leaves room for long device lists. Console forms are
# short text (sign-in, command form). Anything else served by the FastAPI app takes no body.
ADMIN_LIMITS: tuple[tuple[str, int], ...] = (
    # The profile library takes profiles up to 1 MiB (russet.library.upload), in a multipart form too.
    ("/api/v1/profiles", 1 * MIB + 64 * KIB),
    # Enterprise app packages (.ipa/.pkg) up to russet.apps.packages.MAX_PACKAGE_BYTES, in a form.
    ("/api/v1/apps/upload", 512 * MIB + 64 * KIB),
    ("/api/", 1 * MIB),
    # The console's profile upload and CSV import forms (multipart): a profile or a CSV up to 1 MiB.
    ("/console/profiles", 1 * MIB + 64 * KIB),
    ("/console/groups", 1 * MIB + 64 * KIB),
    ("/console", 64 * KIB),
)
OTHER_LIMIT = 64 * KIB


class BodyTooLarge(Exception):
    """The body is over the limit; nothing more of it was read."""


class BadContentLength(Exception):
    """The Content-Length header is not a number."""


async def read_limited(chunks: AsyncIterator[bytes], limit: int, declared: str | None) -> bytes:
    """The whole body from `chunks`, or BodyTooLarge as soon as it is known to exceed `limit`.

    `declared` is the Content-Length header, if any: a body declared too large is refused
    before any of it is read.
    """
    if declared is not None:
        if not declared.strip().isdigit():
            raise BadContentLength("Content-Length is not a number")
        if int(declared) > limit:
            raise BodyTooLarge(f"body of {int(declared)} bytes is over the {limit}-byte limit")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"body is over the {limit}-byte limit")
        parts.append(chunk)
    return b"".join(parts)


class DeviceRequestError(Exception):
    """A request Russet refuses; `reason` goes into the response body and the log."""

    status = 400

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadRequest(DeviceRequestError):
    """Malformed, oversized or incomplete input (400): the device retries, nothing is stored."""


class PayloadTooLarge(DeviceRequestError):
    status = 413


async def read_body(request: Request, limit: int) -> bytes:
    """A device endpoint's whole body, refused (413) as soon as it is known to exceed `limit`."""
    try:
        return await read_limited(request.stream(), limit, request.headers.get("content-length"))
    except BodyTooLarge as exc:
        raise PayloadTooLarge(str(exc)) from None
    except BadContentLength as exc:
        raise BadRequest(str(exc)) from None


async def _asgi_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


class BodyLimit:
    """ASGI middleware: reads each HTTP request's body under its path's limit, then hands the
    app the body already read. Over the limit it answers 413 itself and reads no further."""

    def __init__(
        self, app: ASGIApp, limits: Sequence[tuple[str, int]] = ADMIN_LIMITS, default: int = OTHER_LIMIT
    ) -> None:
        self.app = app
        self.limits = tuple(limits)
        self.default = default

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path.startswith(prefix):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        try:
            body = await read_limited(_asgi_chunks(receive), self.limit_for(scope["path"]), declared)
        except BodyTooLarge as exc:
            await _refuse(send, 413, str(exc))
            return
        except BadContentLength as exc:
            await _refuse(send, 400, str(exc))
            return
        except ClientDisconnect:
            return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when it comes

        await self.app(scope, replay, send)


async def _refuse(send: Send, status: int, reason: str) -> None:
    payload = json.dumps({"detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                (b"connection", b"close"),  # the rest of the body is never read
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
