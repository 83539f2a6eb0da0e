"""Error kinds as HTTP answers: the one place the admin API and the console turn a
`russet.kernel.errors` kind into a status.

Services raise kinds, never statuses, so the REST API, the console and the CLI answer a case
the same way. Device endpoints do not use this: their statuses are Apple protocol facts
(`russet.mdm.errors`), and a device must never be answered 401.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from russet.kernel.errors import (
    Conflict,
    Invalid,
    NotFound,
    Refused,
    RussetError,
    TooLarge,
    Unavailable,
    UpstreamFailed,
    kind_of,
)

STATUS: dict[type[RussetError], int] = {
    Invalid: 400,
    Refused: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    UpstreamFailed: 502,
    Unavailable: 503,
}


def status_for(exc: RussetError) -> int:
    """The HTTP status for an error of this kind."""
    return STATUS[kind_of(exc)]


def headers_for(exc: RussetError) -> dict[str, str]:
    """Retry-After (seconds, at least 1) when an `Unavailable` knows when to try again."""
    if isinstance(exc, Unavailable) and exc.retry_at is not None:
        seconds = (exc.retry_at - datetime.now(UTC)).total_seconds()
        return {"Retry-After": str(max(1, math.ceil(seconds)))}
    return {}


def answer(exc: RussetError) -> JSONResponse:
    """The API's answer to a domain error: `{"detail": message}` with the kind's status."""
    return JSONResponse({"detail": str(exc)}, status_code=status_for(exc), headers=headers_for(exc))


def install(app: FastAPI) -> None:
    """Answer every RussetError an admin route lets through with its kind's status."""

    @app.exception_handler(RussetError)
    async def _russet_error(_: Request, exc: RussetError) -> JSONResponse:
        return answer(exc)
